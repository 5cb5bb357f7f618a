"""Where the governance files live for a given config, and what the gateway section declares."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
        root=config.root,
        prompts=config.path(g.prompts_dir),
        registers=registers,
        models=registers / "models.yaml",
        vendors=registers / "vendors.yaml",
        sources=registers / "data_sources.yaml",
        incidents=registers / "incidents",
        state=config.path(g.state_file),
        pr_export=config.path(g.pr_export) if g.pr_export else None,
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


@dataclass(frozen=True, slots=True)
class ConfiguredProvider:
    """An upstream the gateway sends data to, and the names a vendor entry may know it by."""

    name: str
    candidates: tuple[str, ...]


def _is_local(host: str) -> bool:
    """Self-hosted upstreams (loopback, private networks, .local) are not third-party vendors."""
    if host in ("localhost", "") or host.endswith((".local", ".localhost", ".internal")):
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return addr.is_loopback or addr.is_private or addr.is_link_local or addr.is_unspecified


def gateway_providers(config: Config) -> list[ConfiguredProvider]:
    """Third-party providers under ``[gateway.providers]``: table name, kind and host are candidates."""
    data = config.gateway.model_dump()
    table = data.get("providers")
    out: list[ConfiguredProvider] = []
    if isinstance(table, dict):
        for name, item in sorted(table.items()):
            candidates = [str(name)]
            if isinstance(item, dict):
                host = urlsplit(str(item.get("base_url") or "")).hostname or ""
                if item.get("base_url") and _is_local(host):
                    continue
                kind = item.get("kind")
                if isinstance(kind, str) and kind != "openai_compatible":
                    candidates.append("azure-openai" if kind == "azure" else kind)
                if host:
                    labels = host.split(".")
                    candidates.append(host)
                    if len(labels) >= 2:
                        candidates.append(labels[-2])  # api.together.xyz -> together
            out.append(ConfiguredProvider(str(name), tuple(candidates)))
    else:
        out.extend(ConfiguredProvider(n, (n,)) for n in _names(table, ("name", "provider", "kind")))
    return out
