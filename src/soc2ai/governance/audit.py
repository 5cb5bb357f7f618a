"""``config_change`` ledger records for register and prompt changes (CC8.1).

The last-seen content hash of each register and template version is kept in a small state file, so
each call appends records only for what actually changed since the previous call.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Protocol

import orjson
import yaml

from soc2ai.errors import ConfigError
from soc2ai.ledger.records import ConfigChangeRecord, Record

REGISTERS = {
    "models.yaml": ("models", "alias"),
    "vendors.yaml": ("vendors", "name"),
    "data_sources.yaml": ("sources", "id"),
}


class _Appender(Protocol):
    def append(self, record: Record) -> str: ...


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _entries(data: bytes, list_key: str, id_key: str) -> dict[str, str]:
    """Per-entry hashes (for a readable diff summary); empty when the file does not parse."""
    try:
        doc = yaml.safe_load(data)
    except (yaml.YAMLError, ValueError, TypeError):  # PyYAML raises ValueError for 2025-02-29
        return {}
    items = doc.get(list_key) if isinstance(doc, dict) else None
    out: dict[str, str] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and id_key in item:
            out[str(item[id_key])] = _sha(orjson.dumps(item, default=str, option=orjson.OPT_SORT_KEYS))
    return out


def snapshot(config: Any) -> dict[str, dict[str, Any]]:
    """Current hashes: ``{target: {"hash": ..., "entries": {...}}}`` for registers and prompt versions."""
    from soc2ai.governance._paths import paths
    from soc2ai.governance.prompts import FILE_RE, body_hash_of_file

    p = paths(config)
    out: dict[str, dict[str, Any]] = {}
    for name, (list_key, id_key) in REGISTERS.items():
        f = p.registers / name
        if f.is_file():
            data = f.read_bytes()
            out[f"register:{name}"] = {"hash": _sha(data), "entries": _entries(data, list_key, id_key)}
    if p.prompts.is_dir():
        for f in sorted(p.prompts.glob("*/v*.*")):
            m = FILE_RE.match(f.name)
            if m:
                digest = body_hash_of_file(f.read_bytes()) or _sha(f.read_bytes())
                out[f"prompt:{f.parent.name}@v{m.group(1)}"] = {"hash": digest, "entries": {}}
    return out


def _summary(old: dict[str, Any] | None, new: dict[str, Any] | None) -> str:
    if old is None:
        return f"added ({len(new['entries'])} entries)" if new and new["entries"] else "added"
    if new is None:
        return "removed"
    before, after = old.get("entries", {}), new.get("entries", {})
    parts = []
    for label, keys in (
        ("added", sorted(after.keys() - before.keys())),
        ("changed", sorted(k for k in after.keys() & before.keys() if after[k] != before[k])),
        ("removed", sorted(before.keys() - after.keys())),
    ):
        if keys:
            parts.append(f"{label}: {', '.join(keys)}")
    return "; ".join(parts) or "content changed"


def _read_state(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"corrupt governance state file: {exc}", file=str(path)) from exc
    targets = data.get("targets") if isinstance(data, dict) else None
    if not isinstance(targets, dict):
        raise ConfigError("corrupt governance state file: no 'targets'", file=str(path))
    return targets


def _write_state(path: Path, targets: dict[str, dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(
        orjson.dumps({"v": 1, "targets": targets}, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    )
    os.replace(tmp, path)


def record_register_changes(log: _Appender, config: Any, *, actor: str = "") -> list[str]:
    """Append one ConfigChangeRecord per register/prompt added, changed or removed since last call."""
    from soc2ai.governance._paths import paths

    state_path = paths(config).state
    before = _read_state(state_path)
    now = snapshot(config)
    ids: list[str] = []
    for target in sorted(before.keys() | now.keys()):
        old, new = before.get(target), now.get(target)
        if old is not None and new is not None and old.get("hash") == new["hash"]:
            continue
        action = "add" if old is None else "remove" if new is None else "modify"
        ids.append(
            log.append(
                ConfigChangeRecord(
                    target=target,
                    action=action,
                    actor=actor,
                    summary=_summary(old, new),
                    content_hash=new["hash"] if new else None,
                    previous_hash=old.get("hash") if old else None,
                )
            )
        )
    if ids or before != now:
        _write_state(state_path, now)
    return ids


def config_change_index(entries: Any) -> dict[str, tuple[str, int]]:
    """content_hash -> (record id, ts) of the first ``config_change`` record carrying it (from log.entries)."""
    index: dict[str, tuple[str, int]] = {}
    for entry in entries:
        body = getattr(entry, "body", None)
        if isinstance(body, dict) and body.get("kind") == "config_change" and body.get("content_hash"):
            index.setdefault(str(body["content_hash"]), (str(body.get("id")), int(body.get("ts") or 0)))
    return index
