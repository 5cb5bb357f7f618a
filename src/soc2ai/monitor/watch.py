"""Follow the ledger from a stored cursor (``soc2ai alerts watch``) and replay files (``alerts test``).

Exactly-once across restarts: the cursor and the engine state (windows, baselines, dedup) are saved
together in one file, atomically (temp file, fsync, rename), right after the alerts of a record were
written to the outbox, and every ``checkpoint_every`` records otherwise. A crash between the outbox
write and the cursor save re-evaluates at most those records; their alerts get the same deterministic
ids, so the outbox does not deliver them twice.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from soc2ai.errors import ConfigError, SpoolError
from soc2ai.monitor.engine import Alert, RuleEngine
from soc2ai.monitor.monitor import Monitor


@dataclass(slots=True)
class WatchState:
    """Where the watcher is in the ledger and what its rules remember."""

    cursor: int = 0
    engine: dict[str, Any] | None = None

    @classmethod
    def load(cls, path: Path) -> WatchState:
        """Read the state file (a missing file starts from the beginning)."""
        try:
            data = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return cls()
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"cursor file is unreadable: {exc}", file=str(path)) from exc
        if not isinstance(data, dict) or not isinstance(data.get("cursor"), int) or data["cursor"] < 0:
            raise ConfigError("cursor file has no valid 'cursor'", file=str(path), field="cursor")
        return cls(cursor=data["cursor"], engine=data.get("engine"))

    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves either the old or the new state, never a torn one."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, orjson.dumps({"cursor": self.cursor, "engine": self.engine}))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)


@dataclass(slots=True)
class WatchStats:
    """What one watch run did."""

    records: int = 0
    alerts: int = 0
    cursor: int = 0


def watch(monitor: Monitor, reader: Any, state_path: Path, *, follow: bool = True, poll_s: float = 0.2,
          stop: threading.Event | None = None, checkpoint_every: int = 1000,
          on_alert: Any = None) -> WatchStats:
    """Evaluate every ledger entry from the stored cursor on; with ``follow``, keep polling until ``stop``.

    ``reader`` is an ``AuditLog`` opened read-only (``entries(start=)`` yields ``Entry(idx, body)``).
    """
    stop = stop or threading.Event()
    state = WatchState.load(state_path)
    if state.engine:
        monitor.engine.restore(state.engine)
    stats = WatchStats(cursor=state.cursor)
    dirty = 0

    def save() -> None:
        state.engine = monitor.engine.state()
        state.save(state_path)

    while not stop.is_set():
        for entry in reader.entries(start=state.cursor):
            alerts: list[Alert] = []
            if entry.body is not None:  # pruned bodies keep their index but have nothing to evaluate
                failed = monitor.outbox_failures
                alerts = monitor.observe(entry.body)
                if monitor.outbox_failures != failed:
                    # An alert reached the ledger but not the sinks' outbox (disk full, permissions). Stop
                    # before the cursor passes its record: a restart evaluates it again (at least once).
                    raise SpoolError(f"alert outbox unwritable ({monitor.last_error}); cursor kept at "
                                     f"{state.cursor}, record {entry.idx} is evaluated again on restart")
            state.cursor = entry.idx + 1
            stats.records += 1
            dirty += 1
            if alerts:
                stats.alerts += len(alerts)
                save()
                dirty = 0
                if on_alert is not None:
                    for a in alerts:
                        on_alert(a)
            elif dirty >= checkpoint_every:
                save()
                dirty = 0
            if stop.is_set():
                break
        if dirty:
            save()
            dirty = 0
        stats.cursor = state.cursor
        if not follow:
            break
        stop.wait(poll_s)
    return stats


class JsonLines:
    """Record bodies from a JSON-lines stream; a bad line raises ConfigError naming the line.

    Remembers the source and the line of the body it yielded last, so :func:`replay` can name the line
    of a record a rule could not evaluate.
    """

    def __init__(self, stream: IO[bytes], source: str) -> None:
        self.source = source
        self.line = 0
        self._lines = iter(stream)

    def __iter__(self) -> JsonLines:
        return self

    def __next__(self) -> dict[str, Any]:
        for raw in self._lines:
            self.line += 1
            line = raw.strip()
            if not line:
                continue
            try:
                body = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ConfigError(f"not JSON: {exc}", file=self.source, line=self.line) from exc
            if not isinstance(body, dict):
                raise ConfigError("each line must be a JSON object (a ledger record body)", file=self.source,
                                  line=self.line)
            return body
        raise StopIteration


def read_jsonl(stream: IO[bytes], *, source: str = "<stream>") -> JsonLines:
    """Record bodies from a JSON-lines stream; a bad line raises ConfigError naming the line."""
    return JsonLines(stream, source)


def replay(engine: RuleEngine, bodies: Iterator[dict[str, Any]]) -> tuple[int, list[Alert]]:
    """Evaluate a stream offline: (records seen, alerts that would fire). Nothing is recorded or sent.

    A record a rule cannot evaluate (a field of the wrong type) raises ConfigError naming it (file and
    line when ``bodies`` comes from :func:`read_jsonl`): a dry run must not report "nothing would fire"
    for records it could not judge.
    """
    count = 0
    fired: list[Alert] = []
    for body in bodies:
        count += 1
        errors = engine.stats["errors"]
        fired.extend(engine.evaluate(body))
        if engine.stats["errors"] != errors:
            src = bodies if isinstance(bodies, JsonLines) else None
            raise ConfigError(f"record {count}: {engine.last_error}", file=src.source if src else "<records>",
                              line=src.line if src else None)
    return count, fired
