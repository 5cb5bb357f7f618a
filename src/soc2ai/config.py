"""``soc2ai.toml``: the one configuration file, validated with pydantic.

This is the only module that reads environment variables (``SOC2AI_CONFIG``, ``SOC2AI_STORE``, and the
secrets named in the config through :func:`secret_from_env`).
Every validation error names the file, the line and the field.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from soc2ai._validation import error_location, error_message, first_error
from soc2ai.data.settings import DataSettings
from soc2ai.errors import ConfigError
from soc2ai.gateway.settings import GatewaySettings
from soc2ai.governance.settings import GovernanceSettings
from soc2ai.ledger.settings import LedgerSettings
from soc2ai.monitor.settings import MonitorSettings
from soc2ai.scan.settings import ScanSettings

DEFAULT_CONFIG_NAME = "soc2ai.toml"


class ProjectSettings(BaseModel):
    """Who this installation is; ``name`` becomes the ledger's checkpoint origin."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(default="soc2ai", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")


class Config(BaseModel):
    """The whole validated configuration. Paths inside are resolved against ``root``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    project: ProjectSettings = ProjectSettings()
    ledger: LedgerSettings = LedgerSettings()
    scan: ScanSettings = ScanSettings()
    gateway: GatewaySettings = GatewaySettings()
    governance: GovernanceSettings = GovernanceSettings()
    data: DataSettings = DataSettings()
    monitor: MonitorSettings = MonitorSettings()
    # Directory the file was loaded from; relative paths in the config are relative to it.
    root: Path = Field(default_factory=Path.cwd, exclude=True)
    source: str = Field(default="<defaults>", exclude=True)

    def path(self, value: str | Path) -> Path:
        """Resolve a configured path against the config file's directory."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]")


def _locate_line(text: str, loc: tuple[int | str, ...]) -> int | None:
    """Best-effort line number of a field path in TOML text (tomllib keeps no positions).

    Table headers are mapped to concrete paths, so ``monitor.sinks.1.url`` is looked for under the
    second ``[[monitor.sinks]]`` (and its sub-tables), not the first.
    """
    if not loc:
        return None
    lines = text.splitlines()
    target = tuple(str(k) for k in loc)
    arrays: dict[tuple[str, ...], int] = {}  # array-of-tables path -> index of its current element
    best_line, best_len, first_header = None, 0, len(lines)
    sections: list[tuple[int, tuple[str, ...]]] = []
    for n, line in enumerate(lines):
        m = _HEADER.match(line)
        if not m:
            continue
        first_header = min(first_header, n)
        keys = tuple(k.strip().strip("\"'") for k in m.group(2).split("."))
        if m.group(1) == "[[":
            arrays[keys] = arrays.get(keys, -1) + 1
        concrete: list[str] = []
        for i in range(len(keys)):
            concrete.append(keys[i])
            if keys[: i + 1] in arrays:
                concrete.append(str(arrays[keys[: i + 1]]))
        sections.append((n, tuple(concrete)))
    for n, path in sections:
        # An error on a whole array (no index in the target) points at its first element's header.
        bare = path[:-1] if path and path[-1].isdigit() and len(path) > len(target) else path
        if len(bare) > best_len and target[: len(bare)] == bare:
            best_line, best_len = n, len(bare)
    if best_line is None:
        # A section written only as sub-tables (`[gateway.models]`, no `[gateway]`): an error on the
        # section as a whole points at its first sub-table rather than at no line at all.
        under = [n for n, path in sections if path[: len(target)] == target]
        if under:
            return under[0] + 1
    rest = [k for k in target[best_len:] if not k.isdigit()]
    start = best_line if best_line is not None else -1
    if rest:
        key_re = re.compile(r"^\s*[\"']?" + re.escape(rest[0]) + r"[\"']?\s*[=.]")
        for n in range(start + 1, len(lines)):
            if _HEADER.match(lines[n]) or (best_line is None and n >= first_header):
                break
            if key_re.match(lines[n]):
                return n + 1
    return best_line + 1 if best_line is not None else None


def parse_config(text: str, *, source: str = "<string>", root: Path | None = None) -> Config:
    """Validate TOML text into a :class:`Config`; raise :class:`ConfigError` naming line and field."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(f"invalid TOML: {exc}", file=source,
                          line=int(m.group(1)) if m else None) from exc
    try:
        # Strict: TOML has real integers and booleans, so `port = "8787"` or `require_signed = "yes"`
        # is a typo to report, not a value to coerce (the register files are strict the same way).
        return Config.model_validate({**data, "root": root or Path.cwd(), "source": source}, strict=True)
    except ValidationError as exc:
        err, others = first_error(exc)
        # A cross-field check (an unknown provider in a chain, a duplicate sink name) raises a LocatedError
        # naming the entry at fault, as the register files do, not the section it validates.
        loc = error_location(err)
        msg = "expected a table" if err["type"] in _TABLE_TYPES else error_message(err)
        more = f" (and {others} more)" if others else ""
        raise ConfigError(msg + more, file=source, line=_locate_line(text, loc),
                          field=".".join(str(p) for p in loc)) from exc


_TABLE_TYPES = frozenset({"model_type", "model_attributes_type", "dict_type"})


def secret_from_env(name: str | None) -> str | None:
    """The value of the environment variable a config field names (e.g. a provider's ``api_key_env``)."""
    return os.environ.get(name) or None if name else None


def load_config(path: str | Path | None = None, *, required: bool = False) -> Config:
    """Load ``soc2ai.toml``: the given path, else ``$SOC2AI_CONFIG``, else ``./soc2ai.toml``.

    Without a file the defaults apply (embedded SQLite under ``.soc2ai/``), unless ``required``.
    ``$SOC2AI_STORE`` overrides ``ledger.store`` so CI can point the same config at PostgreSQL.
    """
    env_path = os.environ.get("SOC2AI_CONFIG")
    candidate = Path(path) if path is not None else Path(env_path) if env_path else Path(DEFAULT_CONFIG_NAME)
    if candidate.is_file():
        try:
            # utf-8-sig: a byte-order mark (Windows editors) is not an "invalid statement" on line 1.
            text = candidate.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read: {exc}", file=str(candidate)) from exc
        config = parse_config(text, source=str(candidate), root=candidate.resolve().parent)
    elif required or path is not None or env_path:
        raise ConfigError("file not found (run `soc2ai init` to create one)", file=str(candidate))
    else:
        config = Config()
    store = os.environ.get("SOC2AI_STORE")
    if store:
        config = config.model_copy(update={"ledger": config.ledger.model_copy(update={"store": store})})
    return config
