"""Where the governance files live for a given config, and what the gateway section declares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soc2ai.config import Config


@dataclass(frozen=True, slots=True)
class GovernancePaths:
    """Resolved paths of the prompt directory, registers and state file."""

    root: Path
    prompts: Path
    registers: Path
    models: Path
    vendors: Path
    sources: Path
    incidents: Path
    state: Path
    pr_export: Path | None


def paths(config: Config) -> GovernancePaths:
    """Resolve the ``[governance]`` paths against the config file's directory."""
    g = config.governance
    registers = config.path(g.registers_dir)
    return GovernancePaths(
        root=config.root, prompts=config.path(g.prompts_dir), registers=registers,
        models=registers / "models.yaml", vendors=registers / "vendors.yaml",
        sources=registers / "data_sources.yaml", incidents=registers / "incidents",
        state=config.path(g.state_file), pr_export=config.path(g.pr_export) if g.pr_export else None,
    )


def _names(value: Any, keys: tuple[str, ...]) -> list[str]:
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, list | tuple):
        out = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict):
                out.extend(str(item[k]) for k in keys if isinstance(item.get(k), str))
        return out
    return []


def gateway_names(config: Config, field: str) -> list[str]:
    """Names declared under ``[gateway].<field>`` (a table or a list of names/objects), if any.

    The gateway section is owned elsewhere; read it structurally so either shape works.
    """
    data = config.gateway.model_dump()
    if field not in data:
        return []
    keys = ("alias", "name") if field == "models" else ("name", "provider", "id")
    return sorted(set(_names(data[field], keys)))


def gateway_providers(config: Config) -> list[str]:
    """Provider names configured in the gateway (table keys, names, or ``provider`` kinds)."""
    data = config.gateway.model_dump()
    out: set[str] = set()
    for field in ("providers", "upstreams"):
        value = data.get(field)
        out.update(_names(value, ("name", "provider", "kind", "type")))
        if isinstance(value, dict):
            for item in value.values():
                if isinstance(item, dict):
                    out.update(str(item[k]) for k in ("provider", "kind", "type") if isinstance(item.get(k), str))
    return sorted(out)
