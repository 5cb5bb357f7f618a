"""Config errors and CLI failures are one clear line with the right exit code, never a traceback."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from soc2ai.cli import _register, app
from soc2ai.config import parse_config
from soc2ai.errors import ConfigError

_register()
runner = CliRunner()

SINKS = """[project]
name = "x"

[[monitor.sinks]]
name = "a"
type = "jsonl"
path = "a.jsonl"

[[monitor.sinks]]
name = "b"
type = "jsonl"
path = "b.jsonl"
bogus = 1
"""


def test_config_error_in_the_second_array_table_names_its_line() -> None:
    """A bad field in the second [[monitor.sinks]] is reported at its own line, not the first sink's."""
    with pytest.raises(ConfigError) as exc:
        parse_config(SINKS, source="soc2ai.toml")
    assert exc.value.field == "monitor.sinks.1.bogus" and exc.value.line == 13


def test_config_error_in_a_subtable_of_an_array_element_names_its_line() -> None:
    """[monitor.sinks.headers] belongs to the [[monitor.sinks]] just above it."""
    text = ('[[monitor.sinks]]\nname = "a"\ntype = "webhook"\nurl = "http://127.0.0.1:1/a"\n'
            '[monitor.sinks.headers]\nX-A = "1"\n\n'
            '[[monitor.sinks]]\nname = "b"\ntype = "webhook"\nurl = "http://127.0.0.1:1/b"\n'
            '[monitor.sinks.headers]\nX-B = 2\n')
    with pytest.raises(ConfigError) as exc:
        parse_config(text, source="soc2ai.toml")
    assert exc.value.field == "monitor.sinks.1.headers.X-B" and exc.value.line == 13


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project scaffolded by `soc2ai init`."""
    root = tmp_path_factory.mktemp("cli") / "p"
    result = runner.invoke(app, ["init", str(root), "--name", "p"])
    assert result.exit_code == 0, result.output
    return root


@pytest.mark.parametrize("args", [["log", "prove", "0", "--out"], ["log", "checkpoint", "--export"],
                                  ["vendors", "report", "--out"]], ids=["prove", "checkpoint", "vendors"])
def test_unwritable_output_path_is_a_clear_error(project: Path, tmp_path: Path, args: list[str]) -> None:
    """An output file in a missing directory is one error line naming it and exit 2, not a traceback."""
    target = tmp_path / "missing-dir" / "out.txt"
    result = runner.invoke(app, [*args, str(target), "-c", str(project / "soc2ai.toml")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, OSError)
    assert str(target) in result.output.replace("\n", "")


def test_error_messages_keep_their_square_brackets(tmp_path: Path) -> None:
    """Error text is printed as text: a `[table]` it names is not swallowed as console markup."""
    cfg = tmp_path / "soc2ai.toml"
    cfg.write_text('[gateway]\nmodels = { chat = ["nope:gpt"] }\n')
    result = runner.invoke(app, ["check", "-c", str(cfg)])
    assert result.exit_code == 2
    assert "[gateway.providers]" in result.output.replace("\n", "")


def test_incident_text_is_shown_verbatim(project: Path) -> None:
    """Titles and actions with square brackets are shown as typed (and never crash the console);
    `incidents show` shows the severity."""
    cfg = ["-c", str(project / "soc2ai.toml")]
    new = runner.invoke(app, ["incidents", "new", "--title", "[urgent] key leak", "--severity", "high",
                              "--description", "see [/b] log", "--actor", "me", "--json", *cfg])
    assert new.exit_code == 0, new.output
    inc = orjson.loads(new.output)["id"]
    upd = runner.invoke(app, ["incidents", "update", inc, "--action", "rotated [/] key", "--actor", "me", *cfg])
    assert upd.exit_code == 0, upd.output
    out = " ".join(upd.output.split())
    assert "[high] [urgent] key leak" in out and "see [/b] log" in out and "rotated [/] key" in out
    listed = runner.invoke(app, ["incidents", "list", *cfg])
    assert listed.exit_code == 0 and "[urgent]" in listed.output


def test_change_titles_are_shown_verbatim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit subject with square brackets appears in the change sample table as written."""
    import subprocess
    from datetime import UTC, datetime

    from soc2ai.cli._common import console

    monkeypatch.setattr(console, "_width", 250)  # one table row per line

    root = tmp_path / "repo"
    assert runner.invoke(app, ["init", str(root), "--name", "r"]).exit_code == 0
    ident = ["-c", "user.name=alice", "-c", "user.email=alice@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*ident, "commit", "-q", "-m", "[PROJ-2] fix [/] it"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    day = datetime.now(UTC).date().isoformat()
    result = runner.invoke(app, ["changes", "sample", "--since", day, "--until", day, "--seed", "s",
                                 "-c", str(root / "soc2ai.toml"), "--repo", str(root)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # unreviewed: an exception
    assert "[PROJ-2] fix [/] it" in result.output, result.output


def test_log_tail_shows_record_fields_verbatim(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model id with square brackets is shown as stored (and does not crash the table)."""
    from soc2ai.cli._common import console
    from soc2ai.config import load_config
    from soc2ai.ledger import AuditLog

    monkeypatch.setattr(console, "_width", 250)
    with AuditLog.open(load_config(project / "soc2ai.toml")) as log:
        log.log_inference(user_id="u", model_id="ft:[/]acme", prompt="p", response="r")
        log.flush()
    result = runner.invoke(app, ["log", "tail", "-n", "1", "-c", str(project / "soc2ai.toml")])
    assert result.exit_code == 0, result.output
    assert "ft:[/]acme" in result.output


def test_verify_json_against_a_bad_checkpoint_prints_json(project: Path, tmp_path: Path) -> None:
    """`log verify --json --against FILE` with a file that is no signed checkpoint: exit 1, and stdout
    is still the JSON verdict a script parses."""
    bad = tmp_path / "cp.txt"
    bad.write_text("not a checkpoint\n")
    result = runner.invoke(app, ["log", "verify", "--json", "--against", str(bad), "-c", str(project / "soc2ai.toml")])
    assert result.exit_code == 1
    out = orjson.loads(result.stdout)
    assert out["ok"] is False and "checkpoint" in out["error"]


@pytest.mark.parametrize("command", ["population", "sample"])
def test_change_period_ending_before_it_starts_is_a_usage_error(tmp_path: Path, command: str) -> None:
    """`changes population|sample --since D2 --until D1` (swapped dates) in a git project: exit 2 naming
    both options, not a ValueError traceback."""
    import subprocess

    root = tmp_path / "repo"
    assert runner.invoke(app, ["init", str(root), "--name", "r"]).exit_code == 0
    ident = ["-c", "user.name=alice", "-c", "user.email=alice@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*ident, "commit", "-q", "-m", "PROJ-1 setup"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    extra = ["--seed", "s"] if command == "sample" else []
    result = runner.invoke(app, ["changes", command, "--since", "2026-11-30", "--until", "2026-11-01", *extra,
                                 "-c", str(root / "soc2ai.toml"), "--repo", str(root)])
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, ValueError)
    assert "--until (2026-11-01) is before --since (2026-11-30)" in " ".join(result.output.split())


@pytest.mark.parametrize("args", [["create", "--role", "bogus", "--user", "x"],
                                  ["create", "--role", "inference", "--user", "x", "--classification", "secret"],
                                  ["create", "--role", "inference", "--user", "x", "--expires", "2001-01-01"],
                                  ["revoke", "nope"]], ids=["role", "classification", "expires", "revoke"])
def test_keys_argument_mistakes_name_the_argument_not_a_config_file(project: Path, args: list[str]) -> None:
    """A wrong --role, --classification, --expires or key id is a usage error (exit 2) about that argument,
    not a "config error" pointing at a file that has nothing wrong with it."""
    result = runner.invoke(app, ["keys", *args, "-c", str(project / "soc2ai.toml")])
    out = result.output.replace("\n", "")
    assert result.exit_code == 2, out
    assert "<config>" not in out and "Traceback" not in out
    assert any(word in out for word in ("unknown role 'bogus'", "unknown classification 'secret'",
                                        "--expires '2001-01-01' is in the past", "no API key with id 'nope'"))
