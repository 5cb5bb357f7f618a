"""Prompt registry: file layout, headers, content hashes, sandboxed strict rendering, diffs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from soc2ai.errors import ConfigError, PolicyViolation, UsageError
from soc2ai.governance.prompts import PromptRegistry, body_hash_of_file, parse_ref


def _tpl(status: str = "current", variables: str = "[name]", body: str = "Hello {{ name }}!\n") -> str:
    return f"---\nowner: a@example.com\nstatus: {status}\nvariables: {variables}\n---\n{body}"


def _registry(tmp_path: Path, files: dict[str, str]) -> PromptRegistry:
    for rel, text in files.items():
        path = tmp_path / "prompts" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return PromptRegistry.load(tmp_path / "prompts")


def test_versions_and_current(tmp_path: Path) -> None:
    """`get(name)` returns the highest version whose status is current, skipping deprecated ones."""
    reg = _registry(
        tmp_path, {"greet/v1.txt": _tpl(), "greet/v2.md": _tpl(), "greet/v3.jinja": _tpl("deprecated")}
    )
    assert [t.ref for t in reg.list()] == ["greet@v1", "greet@v2", "greet@v3"]
    assert reg.get("greet").ref == "greet@v2"
    assert reg.get("greet", 3).status == "deprecated"
    assert reg.get("greet@v1").version == 1


def test_content_hash_is_sha256_of_body(tmp_path: Path) -> None:
    """The content hash covers exactly the rendered body, so the ledger hash identifies the text."""
    reg = _registry(tmp_path, {"greet/v1.txt": _tpl()})
    expected = "sha256:" + hashlib.sha256(b"Hello {{ name }}!\n").hexdigest()
    assert reg.get("greet").content_hash == expected


def test_render_records_ref_and_hash(tmp_path: Path) -> None:
    """Rendering substitutes variables and returns the ref and hash for the ledger."""
    reg = _registry(tmp_path, {"greet/v1.txt": _tpl()})
    out = reg.render("greet", {"name": "Ada"})
    assert out.text == "Hello Ada!\n"
    assert out.ref == "greet@v1"
    assert out.content_hash == reg.get("greet").content_hash


def test_missing_and_unknown_variables(tmp_path: Path) -> None:
    """Missing variables and variables the template does not declare are both errors."""
    reg = _registry(tmp_path, {"greet/v1.txt": _tpl()})
    with pytest.raises(ConfigError, match="missing variables"):
        reg.render("greet", {})
    with pytest.raises(ConfigError, match="unknown variables"):
        reg.render("greet", {"name": "a", "extra": "b"})


def test_strict_undefined_attribute(tmp_path: Path) -> None:
    """An undefined attribute is an error, not a silently empty string."""
    reg = _registry(tmp_path, {"greet/v1.txt": _tpl(body="Hi {{ name.first }}\n")})
    with pytest.raises(ConfigError):
        reg.render("greet", {"name": "plain string"})


def test_sandbox_blocks_unsafe_access(tmp_path: Path) -> None:
    """The sandbox refuses attribute walks to Python internals."""
    reg = _registry(tmp_path, {"evil/v1.txt": _tpl(body="{{ name.__class__.__mro__ }}\n")})
    with pytest.raises(PolicyViolation, match="unsafe"):
        reg.render("evil", {"name": "x"})


def test_sandbox_blocks_unsafe_call(tmp_path: Path) -> None:
    """Calling an unsafe method is a policy violation."""
    reg = _registry(tmp_path, {"evil/v1.txt": _tpl(variables="[items]", body="{{ items.append(1) }}\n")})
    with pytest.raises(PolicyViolation):
        reg.render("evil", {"items": []})


def test_undeclared_variable_in_template_is_load_error(tmp_path: Path) -> None:
    """A template that uses a variable its header does not declare fails at load, naming the file."""
    with pytest.raises(ConfigError) as exc:
        _registry(tmp_path, {"greet/v1.txt": _tpl(variables="[]")})
    assert exc.value.field == "variables"
    assert exc.value.file is not None and exc.value.file.endswith("v1.txt")


def test_header_errors_name_line_and_field(tmp_path: Path) -> None:
    """A bad status value names the header field and its line in the file."""
    with pytest.raises(ConfigError) as exc:
        _registry(tmp_path, {"greet/v1.txt": _tpl(status="live")})
    assert exc.value.field == "status"
    # "---" is line 1, owner line 2, status line 3 of the file.
    assert exc.value.line == 3


def test_missing_header(tmp_path: Path) -> None:
    """A template without a header is rejected."""
    with pytest.raises(ConfigError, match="missing header"):
        _registry(tmp_path, {"greet/v1.txt": "Hello\n"})


def test_template_syntax_error_line(tmp_path: Path) -> None:
    """A Jinja syntax error reports the line within the whole file (header included)."""
    with pytest.raises(ConfigError) as exc:
        _registry(tmp_path, {"greet/v1.txt": _tpl(body="ok {{ name }}\n{% if %}\n")})
    assert exc.value.line == 7


def test_bad_file_names(tmp_path: Path) -> None:
    """Files that are not v<N>.txt|md|jinja are rejected; duplicates of a version too."""
    with pytest.raises(ConfigError, match="unexpected file"):
        _registry(tmp_path, {"greet/latest.txt": _tpl()})
    with pytest.raises(ConfigError, match="two files"):
        _registry(tmp_path / "b", {"greet/v1.txt": _tpl(), "greet/v1.md": _tpl()})


def test_missing_dir_and_unknown_names(tmp_path: Path) -> None:
    """A missing prompts dir is an error; unknown names and versions too; all-deprecated has no current."""
    with pytest.raises(ConfigError, match="not found"):
        PromptRegistry.load(tmp_path / "nope")
    reg = _registry(tmp_path, {"old/v1.txt": _tpl("deprecated")})
    with pytest.raises(ConfigError, match="unknown prompt"):
        reg.get("greet")
    with pytest.raises(ConfigError, match="unknown prompt version"):
        reg.get("old", 2)
    with pytest.raises(ConfigError, match="no current version"):
        reg.get("old")


def test_diff_and_parse_ref(tmp_path: Path) -> None:
    """diff shows the changed body lines between two versions; refs parse strictly."""
    reg = _registry(tmp_path, {"greet/v1.txt": _tpl(), "greet/v2.txt": _tpl(body="Hi {{ name }}.\n")})
    text = reg.diff("greet@v1", "greet@v2")
    assert "-Hello {{ name }}!" in text and "+Hi {{ name }}." in text
    assert parse_ref("greet@v12") == ("greet", 12)
    # A caller's argument, not a file: a UsageError with no "<config>:" location, naming the reference.
    with pytest.raises(UsageError) as exc:
        parse_ref("Greet@latest")
    assert str(exc.value).startswith("invalid prompt reference 'Greet@latest'")


def test_header_lines_count_from_the_top_of_the_file(tmp_path: Path) -> None:
    """Unknown header keys and variable mismatches point at their own line of the file."""
    text = "---\nowner: a@example.com\nstatus: current\ndescription: d\nvariables: [name, extra]\n---\nHi {{ name }}\n"
    with pytest.raises(ConfigError) as exc:
        _registry(tmp_path, {"greet/v1.txt": text})
    assert exc.value.field == "variables" and exc.value.line == 5
    with pytest.raises(ConfigError) as exc:
        _registry(tmp_path, {"greet/v1.txt": _tpl().replace("status:", "onwer: x\nstatus:")})
    assert exc.value.field == "onwer" and exc.value.line == 3


def test_byte_order_mark_before_header(tmp_path: Path) -> None:
    """A template saved with a UTF-8 BOM is not "missing header"; the hash is the same as without."""
    d = tmp_path / "prompts" / "p"
    d.mkdir(parents=True)
    text = "---\nowner: o\nstatus: current\nvariables: [x]\n---\nHi {{ x }}\n"
    (d / "v1.txt").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (d / "v2.txt").write_text(text, encoding="utf-8")
    reg = PromptRegistry.load(tmp_path / "prompts")
    assert reg.get("p", 1).content_hash == reg.get("p", 2).content_hash
    assert body_hash_of_file((d / "v1.txt").read_bytes()) == reg.get("p", 1).content_hash


def test_registry_loads_from_a_string_path(tmp_path: Path) -> None:
    """``PromptRegistry.load("prompts")`` as the docs write it, not only with a Path."""
    (tmp_path / "greet").mkdir()
    (tmp_path / "greet" / "v1.txt").write_text("---\nowner: a@example.com\nstatus: current\nvariables: [name]\n---\nHello {{ name }}\n")
    assert PromptRegistry.load(str(tmp_path)).render("greet", {"name": "Ann"}).text.strip() == "Hello Ann"
