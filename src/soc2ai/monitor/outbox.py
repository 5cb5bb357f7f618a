"""The durable outbox and the dispatcher that drains it into sinks.

Every routed alert is written to ``<outbox>/<sink>/<ts>-<id>.json`` (temp file, fsync, rename) *before*
anyone is told it fired; one thread per sink delivers the files in order and deletes each once its sink
accepted it. A sink that is down keeps its files (retried with capped exponential backoff and jitter,
forever); a sink that rejects an alert for good (a 4xx) gets it moved to ``failed/`` and counted, so
the readiness check reports it. The caller only ever pays for the local file write.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from soc2ai.monitor.sinks.interface import Sink, SinkError

logger = logging.getLogger("soc2ai.monitor")


class Outbox:
    """Pending alerts per sink, one file each."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def _sink_dir(self, sink: str) -> Path:
        d = self.dir / sink
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        return d

    def put(self, sink: str, alert: dict[str, Any]) -> Path:
        """Persist one alert for one sink (idempotent: the same alert id is written once)."""
        d = self._sink_dir(sink)
        path = d / f"{int(alert['ts']):020d}-{alert['id']}.json"
        if path.exists():
            return path
        tmp = d / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, orjson.dumps(alert))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return path

    def pending(self, sink: str) -> list[Path]:
        """Files waiting for ``sink``, oldest first."""
        d = self.dir / sink
        if not d.is_dir():
            return []
        return sorted(p for p in d.iterdir() if p.suffix == ".json" and not p.name.startswith("."))

    def failed(self, sink: str) -> list[Path]:
        """Alerts ``sink`` rejected for good."""
        d = self.dir / sink / "failed"
        return sorted(d.glob("*.json")) if d.is_dir() else []

    def read(self, path: Path) -> dict[str, Any]:
        """The alert stored in ``path``."""
        data: dict[str, Any] = orjson.loads(path.read_bytes())
        return data

    def done(self, path: Path) -> None:
        """Delivered: forget it."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def park(self, path: Path, reason: str) -> None:
        """Rejected for good: keep it under ``failed/`` with the reason next to it."""
        failed = path.parent / "failed"
        failed.mkdir(exist_ok=True, mode=0o700)
        (failed / (path.stem + ".reason")).write_text(reason + "\n")
        os.replace(path, failed / path.name)

    def counts(self) -> dict[str, dict[str, int]]:
        """``{sink: {"pending": n, "failed": n}}`` for every sink directory present."""
        if not self.dir.is_dir():
            return {}
        return {d.name: {"pending": len(self.pending(d.name)), "failed": len(self.failed(d.name))}
                for d in sorted(self.dir.iterdir()) if d.is_dir()}


class _Worker(threading.Thread):
    def __init__(self, dispatcher: Dispatcher, sink: Sink) -> None:
        super().__init__(name=f"soc2ai-sink-{sink.name}", daemon=True)
        self.d = dispatcher
        self.sink = sink
        self.wake = threading.Event()
        self.idle = threading.Event()
        self.stats = {"delivered": 0, "retries": 0, "failed": 0}
        self.last_error: str | None = None

    def run(self) -> None:
        delay = self.d.retry_min_s
        while not self.d.stopping.is_set():
            self.wake.clear()
            files = self.d.outbox.pending(self.sink.name)
            if not files:
                self.idle.set()
                self.wake.wait(1.0)
                continue
            self.idle.clear()
            for path in files:
                if self.d.stopping.is_set():
                    return
                try:
                    alert = self.d.outbox.read(path)
                except FileNotFoundError:
                    continue
                except (OSError, ValueError) as exc:
                    self.d.outbox.park(path, f"unreadable: {exc}")
                    continue
                try:
                    self.sink.deliver(alert)
                except SinkError as exc:
                    self.last_error = str(exc)
                    if not exc.retryable:
                        self.stats["failed"] += 1
                        self.d.outbox.park(path, str(exc))
                        logger.warning("sink %s rejected alert %s: %s", self.sink.name, alert.get("id"), exc)
                        continue
                    self.stats["retries"] += 1
                    # Jitter so many watchers do not hammer a recovering endpoint in lockstep.
                    self.d.stopping.wait(delay * (0.5 + self.d.rng.random()))
                    delay = min(delay * 2, self.d.retry_max_s)
                    break  # keep order: retry the same (oldest) file first
                except Exception as exc:  # a buggy sink must not kill delivery for good
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self.stats["retries"] += 1
                    self.d.stopping.wait(delay)
                    delay = min(delay * 2, self.d.retry_max_s)
                    break
                else:
                    self.d.outbox.done(path)
                    self.stats["delivered"] += 1
                    self.last_error = None
                    delay = self.d.retry_min_s


class Dispatcher:
    """Route alerts to sinks through the outbox; one delivery thread per sink."""

    def __init__(self, outbox: Outbox, sinks: Iterable[Sink], *,
                 route: Callable[[dict[str, Any]], list[str]] | None = None,
                 retry_min_s: float = 0.5, retry_max_s: float = 60.0, rng: random.Random | None = None) -> None:
        self.outbox = outbox
        self.sinks = {s.name: s for s in sinks}
        self.route = route or (lambda alert: list(self.sinks))
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.rng = rng or random.Random()  # noqa: S311 - backoff jitter, not security
        self.stopping = threading.Event()
        self._workers: dict[str, _Worker] = {}

    def start(self) -> Dispatcher:
        """Start one delivery thread per sink (also drains what an earlier run left in the outbox)."""
        for name, sink in self.sinks.items():
            if name not in self._workers:
                w = _Worker(self, sink)
                self._workers[name] = w
                w.start()
        return self

    def submit(self, alert: dict[str, Any]) -> list[str]:
        """Persist ``alert`` for each routed sink and wake their threads; returns the sink names."""
        names = [n for n in self.route(alert) if n in self.sinks]
        for name in names:
            self.outbox.put(name, alert)
            worker = self._workers.get(name)
            if worker is not None:
                worker.idle.clear()
                worker.wake.set()
        return names

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every sink's outbox is empty (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(not self.outbox.pending(n) for n in self.sinks):
                return True
            for w in self._workers.values():
                w.wake.set()
            time.sleep(0.01)
        return all(not self.outbox.pending(n) for n in self.sinks)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per sink: delivered, retries, failed (this process), pending and parked (on disk), last error."""
        counts = self.outbox.counts()
        out: dict[str, dict[str, Any]] = {}
        for name in self.sinks:
            w = self._workers.get(name)
            c = counts.get(name, {"pending": 0, "failed": 0})
            out[name] = {**(w.stats if w else {"delivered": 0, "retries": 0, "failed": 0}),
                         "pending": c["pending"], "parked": c["failed"],
                         "last_error": w.last_error if w else None}
        return out

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what can be delivered within ``timeout``, stop the threads, close the sinks."""
        if self._workers:
            self.flush(timeout)
        self.stopping.set()
        for w in self._workers.values():
            w.wake.set()
            w.join(timeout=2.0)
        for sink in self.sinks.values():
            try:
                sink.close()
            except Exception:  # closing is best effort; the outbox already holds anything undelivered
                logger.debug("closing sink %s failed", sink.name, exc_info=True)
