"""The prompt registry: versioned templates as files in git, rendered in a Jinja2 sandbox (CC8.1).

Layout: ``prompts/<name>/v<N>.(txt|md|jinja)``. Each file starts with a YAML header between ``---``
lines (owner, status ``current|deprecated``, description, variables), then the template body. The
content hash covers the body (what is rendered), so the ledger's ``template_hash`` identifies the text.
"""

from __future__ import annotations

import builtins
import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from soc2ai.errors import ConfigError, PolicyViolation, UsageError
from soc2ai.governance._yaml import RegisterModel, line_of, parse_yaml, validate

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
FILE_RE = re.compile(r"^v([1-9][0-9]{0,5})\.(txt|md|jinja)$")
REF_RE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_.-]{0,63})(?:@v(?P<version>[1-9][0-9]{0,5}))?$")
_HEADER = re.compile(r"\A---[ \t]*\r?\n(?P<header>.*?)^---[ \t]*\r?\n", re.DOTALL | re.MULTILINE)


class PromptHeader(RegisterModel):
    """The header block of a template file."""

    owner: str = Field(min_length=1)
    status: Literal["current", "deprecated"]
    description: str = ""
    variables: list[str] = Field(default_factory=list)
    ticket: str | None = None


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """One version of one template."""

    name: str
    version: int
    path: Path
    owner: str
    status: str
    description: str
    variables: tuple[str, ...]
    body: str
    content_hash: str
    ticket: str | None = None

    @property
    def ref(self) -> str:
        """``name@vN``: what the gateway records."""
        return f"{self.name}@v{self.version}"


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """A rendered template and the identity of what produced it."""

    ref: str
    content_hash: str
    text: str


def split_header(text: str) -> tuple[str, str, int] | None:
    """(header, body, header line count) or None when the file has no ``---`` header."""
    # Editors on Windows save UTF-8 with a byte-order mark; it is not part of the header (or the body).
    text = text.removeprefix("\ufeff")
    m = _HEADER.match(text)
    if not m:
        return None
    return m.group("header"), text[m.end() :], text[: m.end()].count("\n")


def body_hash(body: str) -> str:
    """``sha256:<hex>`` of the template body (UTF-8)."""
    return "sha256:" + hashlib.sha256(body.encode("utf-8")).hexdigest()


def body_hash_of_file(data: bytes) -> str | None:
    """Body hash of raw template file bytes (None when it is not a template file)."""
    try:
        parts = split_header(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    return body_hash(parts[1]) if parts else None


class PromptRefError(UsageError):
    """A malformed prompt reference given by a caller (a command argument, an API request's ``template``):
    no file is at fault, so the message carries no ``<config>:`` location."""


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``"name@v3"`` -> ("name", 3); ``"name"`` -> ("name", None). Malformed -> :class:`PromptRefError`."""
    m = REF_RE.match(ref.strip())
    if not m:
        raise PromptRefError(f"invalid prompt reference {ref!r} (expected name or name@vN, e.g. support_reply@v2)")
    return m.group("name"), int(m.group("version")) if m.group("version") else None


def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # Prompts are plain text: no HTML autoescaping; undefined variables are errors, not blanks; the
    # immutable sandbox also forbids templates from mutating the caller's lists and dicts.
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


def load_template(path: Path, name: str, version: int, env: Any) -> tuple[PromptTemplate, Any]:
    """Parse one template file; errors name the file, line and field."""
    from jinja2 import TemplateSyntaxError, meta

    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=file) from exc
    parts = split_header(text)
    if parts is None:
        raise ConfigError(
            "missing header: the file must start with a '---' YAML block (owner, status)", file=file, line=1
        )
    header_text, body, header_lines = parts
    # The header starts on the file's second line (after "---"): a leading newline makes YAML marks,
    # and so every reported line, count from the top of the file.
    data, node = parse_yaml("\n" + header_text, file)
    if not isinstance(data, dict):
        raise ConfigError(
            "the header must be a mapping (owner, status, description, variables)", file=file, line=2
        )
    header = validate(PromptHeader, data, node, file)
    try:
        ast = env.parse(body)
        compiled = env.from_string(body)
    except TemplateSyntaxError as exc:
        raise ConfigError(
            f"template syntax error: {exc.message}", file=file, line=(exc.lineno or 0) + header_lines
        ) from exc
    used = meta.find_undeclared_variables(ast)
    declared = set(header.variables)
    if used - declared:
        raise ConfigError(
            f"template uses undeclared variables {sorted(used - declared)}",
            file=file,
            line=line_of(node, ("variables",)),
            field="variables",
        )
    if declared - used:
        raise ConfigError(
            f"declared variables not used by the template: {sorted(declared - used)}",
            file=file,
            line=line_of(node, ("variables",)),
            field="variables",
        )
    tpl = PromptTemplate(
        name=name,
        version=version,
        path=path,
        owner=header.owner,
        status=header.status,
        description=header.description,
        variables=tuple(header.variables),
        body=body,
        content_hash=body_hash(body),
        ticket=header.ticket,
    )
    return tpl, compiled


class PromptRegistry:
    """All templates under a prompts directory, loaded and validated up front."""

    def __init__(self, root: Path, templates: dict[tuple[str, int], tuple[PromptTemplate, Any]]) -> None:
        self.root = root
        self._templates = templates

    @classmethod
    def load(cls, prompts_dir: str | Path) -> PromptRegistry:
        """Load every ``<name>/v<N>.<ext>``; a missing directory is an error (fail closed)."""
        prompts_dir = Path(prompts_dir)
        if not prompts_dir.is_dir():
            raise ConfigError(
                "prompts directory not found (run `soc2ai init`)",
                file=str(prompts_dir),
                field="governance.prompts_dir",
            )
        env = _environment()
        templates: dict[tuple[str, int], tuple[PromptTemplate, Any]] = {}
        for sub in sorted(p for p in prompts_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if not NAME_RE.match(sub.name):
                raise ConfigError("invalid prompt name (lowercase letters, digits, . _ -)", file=str(sub))
            for f in sorted(sub.iterdir()):
                if f.name.startswith(".") or f.name.lower().startswith("readme"):
                    continue
                m = FILE_RE.match(f.name)
                if not m:
                    raise ConfigError(
                        "unexpected file: template files are named v<N>.txt|md|jinja", file=str(f)
                    )
                version = int(m.group(1))
                if (sub.name, version) in templates:
                    raise ConfigError(f"two files for {sub.name}@v{version}", file=str(f))
                templates[(sub.name, version)] = load_template(f, sub.name, version, env)
        return cls(prompts_dir, templates)

    def list(self) -> list[PromptTemplate]:
        """Every template version, by name then version."""
        return [self._templates[k][0] for k in sorted(self._templates)]

    def names(self) -> builtins.list[str]:
        """Distinct template names."""
        return sorted({name for name, _ in self._templates})

    def versions(self, name: str) -> builtins.list[PromptTemplate]:
        """All versions of ``name``, oldest first."""
        return [t for t in self.list() if t.name == name]

    def current(self, name: str) -> PromptTemplate | None:
        """The highest version whose status is ``current`` (None when every version is deprecated)."""
        live = [t for t in self.versions(name) if t.status == "current"]
        return live[-1] if live else None

    def get(self, name: str, version: int | None = None) -> PromptTemplate:
        """A version of a template (``None`` = current). Unknown -> ConfigError."""
        if "@" in name and version is None:
            name, version = parse_ref(name)
        if version is None:
            if not self.versions(name):
                raise ConfigError(f"unknown prompt {name!r}", file=str(self.root), field=name)
            tpl = self.current(name)
            if tpl is None:
                raise ConfigError(
                    f"prompt {name!r} has no current version (all deprecated)",
                    file=str(self.root),
                    field=name,
                )
            return tpl
        entry = self._templates.get((name, version))
        if entry is None:
            raise ConfigError(f"unknown prompt version {name}@v{version}", file=str(self.root), field=name)
        return entry[0]

    def render(self, name: str, variables: dict[str, Any], version: int | None = None) -> RenderedPrompt:
        """Render in the sandbox; missing or undeclared variables are errors."""
        from jinja2 import UndefinedError
        from jinja2.exceptions import SecurityError

        tpl = self.get(name, version)
        compiled = self._templates[(tpl.name, tpl.version)][1]
        missing = [v for v in tpl.variables if v not in variables]
        extra = sorted(set(variables) - set(tpl.variables))
        if missing:
            raise ConfigError(f"{tpl.ref}: missing variables {missing}", file=str(tpl.path), field=missing[0])
        if extra:
            raise ConfigError(f"{tpl.ref}: unknown variables {extra}", file=str(tpl.path), field=extra[0])
        try:
            text = compiled.render(**variables)
        except SecurityError as exc:
            raise PolicyViolation(f"{tpl.ref}: template tried an unsafe operation: {exc}") from exc
        except UndefinedError as exc:
            if "unsafe" in (exc.message or ""):
                raise PolicyViolation(
                    f"{tpl.ref}: template tried an unsafe operation: {exc.message}"
                ) from exc
            raise ConfigError(f"{tpl.ref}: {exc.message}", file=str(tpl.path)) from exc
        return RenderedPrompt(ref=tpl.ref, content_hash=tpl.content_hash, text=text)

    def diff(self, a: str, b: str) -> str:
        """Unified diff between two refs' bodies."""
        ta, tb = self.get(*parse_ref(a)), self.get(*parse_ref(b))
        return "".join(
            difflib.unified_diff(
                ta.body.splitlines(keepends=True),
                tb.body.splitlines(keepends=True),
                fromfile=ta.ref,
                tofile=tb.ref,
            )
        )
