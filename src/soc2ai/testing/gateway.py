"""A gateway test harness: a real ledger under a temp dir, two fake upstreams, keys, an app factory.

Used by the gateway tests, the instrumentation tests and the benchmark::

    with FakeUpstream(name="up") as up, FakeUpstream(name="backup") as backup:
        h = Harness(tmp_path, up, backup)
        app, log, keys = h.app(h.config())
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soc2ai.config import Config, parse_config
from soc2ai.gateway.app import create_app
from soc2ai.gateway.keys import KeyStore
from soc2ai.ledger import AuditLog
from soc2ai.ledger.keys import generate_keys
from soc2ai.testing.upstream import FakeUpstream


def gateway_toml(tmp: Path, upstreams: dict[str, str], models: dict[str, list[str]], gateway: str = "",
                 tables: str = "") -> str:
    """A soc2ai.toml for tests: ledger and keys under ``tmp``, the given providers and aliases.

    ``gateway`` holds extra ``key = value`` lines of ``[gateway]``; ``tables`` extra tables at the end.
    """
    lines = ["[ledger]", f'store = "sqlite:///{tmp}/audit.db"', f'keys_dir = "{tmp}/keys"',
             f'spool_dir = "{tmp}/spool"', "batch_ms = 2", "", "[gateway]", f'keys_db = "{tmp}/keys.db"', gateway]
    for name, url in upstreams.items():
        lines += [f"[gateway.providers.{name}]", 'kind = "openai_compatible"', f'base_url = "{url}/v1"',
                  "timeout_s = 2", "connect_timeout_s = 1"]
    lines.append("[gateway.models]")
    lines += [f'"{alias}" = [{", ".join(repr(t).replace(chr(39), chr(34)) for t in chain)}]'
              for alias, chain in models.items()]
    lines.append(tables)
    return "\n".join(lines) + "\n"


@dataclass
class Harness:
    """One test's gateway world."""

    tmp: Path
    up: FakeUpstream
    backup: FakeUpstream
    logs: list[AuditLog] = field(default_factory=list)

    def config(self, models: dict[str, list[str]] | None = None, gateway: str = "", tables: str = "") -> Config:
        """Config with providers ``up`` and ``backup`` and (by default) alias ``m`` → up, then backup."""
        models = models or {"m": ["up:model-a", "backup:model-b"], "solo": ["up:model-a"]}
        text = gateway_toml(self.tmp, {"up": self.up.url, "backup": self.backup.url}, models, gateway, tables)
        return parse_config(text, root=self.tmp)

    def log(self, config: Config) -> AuditLog:
        """A real SQLite ledger."""
        if not (self.tmp / "keys" / "signing.key").exists():
            generate_keys(self.tmp / "keys", "test")
        log = AuditLog.open(config)
        self.logs.append(log)
        return log

    def keys(self, config: Config, log: AuditLog | None) -> KeyStore:
        """The key store of this config."""
        return KeyStore(config.path(config.gateway.keys_db), log=log, refresh_s=0)

    def app(self, config: Config, **kwargs: Any) -> tuple[Any, AuditLog, KeyStore]:
        """``(app, log, keystore)`` with screening off unless a pipeline is given."""
        log = kwargs.pop("log", None) or self.log(config)
        keys = self.keys(config, log)
        kwargs.setdefault("pipeline", None)
        return create_app(config, log=log, keys=keys, **kwargs), log, keys


def inference_records(log: AuditLog) -> list[dict[str, Any]]:
    """Every durable inference record body."""
    log.flush()
    return [e.body for e in log.entries(kind="inference") if e.body is not None]


def records_of(log: AuditLog, kind: str) -> list[dict[str, Any]]:
    """Every durable record body of ``kind``."""
    log.flush()
    return [e.body for e in log.entries(kind=kind) if e.body is not None]

