"""Wiring from a :class:`Config` to the data layer's parts: lineage store, connectors, the ledger."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soc2ai.data.connectors import open_connector
from soc2ai.data.lineage import LineageStore, load_or_create_key
from soc2ai.errors import ConnectorError, Soc2AIError

if TYPE_CHECKING:
    from soc2ai.config import Config
    from soc2ai.data.connectors.interface import Connector
    from soc2ai.data.settings import ConnectorSettings
    from soc2ai.ledger import AuditLog


def lineage_url(config: Config) -> str:
    """The configured lineage store, else next to the ledger (same directory / same PostgreSQL database)."""
    if config.data.lineage_store:
        url = config.data.lineage_store
    else:
        store = config.ledger.store
        if not store.startswith("sqlite:///"):
            return store
        path = Path(store[len("sqlite:///"):])
        url = "sqlite:///" + str(path.parent / "lineage.db")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = "sqlite:///" + str(config.path(url[len("sqlite:///"):]))
    return url


def open_lineage(config: Config, *, clock: Callable[[], float] = time.time) -> LineageStore:
    """Open the lineage store with its subject key (under the ledger's keys dir)."""
    key = load_or_create_key(config.path(config.ledger.keys_dir) / "lineage.key")
    return LineageStore.open(lineage_url(config), key=key, clock=clock)


@dataclass
class Opened:
    """Connectors that opened, and the ones that could not be reached (name -> reason)."""

    connectors: list[Connector] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        """Close every opened connector."""
        for c in self.connectors:
            try:
                c.close()
            except Exception:  # noqa: S112 - closing is best effort; the work is already reported
                continue


def gateway_cache(config: Config) -> list[ConnectorSettings]:
    """The gateway's completion cache as a connector, when it is on (and not configured explicitly)."""
    cache = config.gateway.cache
    if not config.data.include_gateway_cache or cache.backend == "off":
        return []
    if any(c.name == "gateway-cache" for c in config.data.connectors):
        return []
    from soc2ai.data.settings import ConnectorSettings

    if cache.backend == "sqlite":
        if not config.path(cache.path).exists():
            return []  # nothing cached yet
        return [ConnectorSettings(name="gateway-cache", type="sqlite_cache", path=str(config.path(cache.path)))]
    return [ConnectorSettings(name="gateway-cache", type="redis", url=cache.redis_url)]


def open_connectors(config: Config, *, log: AuditLog | None = None,
                    factory: Callable[..., Any] = open_connector) -> Opened:
    """Open the ledger (when given and included) and every configured connector; never raises for one."""
    opened = Opened()
    if log is not None and config.data.include_ledger:
        from soc2ai.data.connectors.ledger import LedgerConnector

        opened.connectors.append(LedgerConnector(log, ledger_days=config.data.retention.ledger_days))
    for cs in [*config.data.connectors, *gateway_cache(config)]:
        try:
            opened.connectors.append(factory(cs, root=config.root))
        except Soc2AIError as exc:
            opened.unreachable[cs.name] = str(exc)
        except Exception as exc:  # a third-party client failing to start is "unreachable" too
            opened.unreachable[cs.name] = f"{cs.name}: {type(exc).__name__}: {exc}"
    return opened


def open_log(config: Config, *, read_only: bool = False) -> AuditLog | None:
    """The ledger, or None when ``include_ledger`` is off."""
    if not config.data.include_ledger:
        return None
    from soc2ai.ledger import AuditLog

    try:
        return AuditLog.open(config, read_only=read_only)
    except Soc2AIError:
        raise
    except Exception as exc:
        raise ConnectorError(f"ledger: cannot open ({exc})") from exc


@dataclass
class Workspace:
    """Everything a data command needs, opened from the config; close it when done."""

    opened: Opened
    lineage: LineageStore
    log: AuditLog | None

    def close(self) -> None:
        """Close connectors, lineage and the ledger (which drains its writer)."""
        self.opened.close()
        self.lineage.close()
        if self.log is not None:
            self.log.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_workspace(config: Config, *, write_log: bool) -> Workspace:
    """Open the ledger (a failure makes it an unreachable store, not a crash), lineage and connectors."""
    log: AuditLog | None = None
    ledger_error: str | None = None
    if config.data.include_ledger:
        try:
            log = open_log(config, read_only=not write_log)
        except Soc2AIError as exc:
            ledger_error = str(exc)
    lineage = open_lineage(config)
    opened = open_connectors(config, log=log)
    if ledger_error is not None:
        opened.unreachable["ledger"] = ledger_error
    return Workspace(opened, lineage, log)
