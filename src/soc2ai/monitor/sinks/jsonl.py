"""JSON lines sink: one alert per line to a file (fsynced) or to stdout (``path = "-"``)."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from soc2ai.monitor.sinks.interface import SinkError


def iso(ts_us: int) -> str:
    """RFC 3339 UTC with microseconds."""
    return datetime.fromtimestamp(ts_us / 1_000_000, tz=UTC).isoformat().replace("+00:00", "Z")


def generic_payload(alert: dict[str, Any], project: str) -> dict[str, Any]:
    """The generic JSON body (jsonl sink and webhook ``json`` format alike, as documented)."""
    return {"type": "soc2ai.alert", "project": project, "time": iso(alert["ts"]), **alert}


def json_line(alert: dict[str, Any], project: str) -> bytes:
    """The generic JSON payload as one line."""
    return orjson.dumps(generic_payload(alert, project), option=orjson.OPT_SORT_KEYS) + b"\n"


class JsonlSink:
    """Append alerts as JSON lines."""

    def __init__(self, name: str, path: str | Path, *, project: str = "soc2ai") -> None:
        self.name = name
        self.path = None if str(path) == "-" else Path(path)
        self.project = project

    def deliver(self, alert: dict[str, Any]) -> None:
        """Append one line (fsynced, so a delivered alert survives a crash)."""
        self.write_line(json_line(alert, self.project))

    def write_line(self, line: bytes) -> None:
        """Append raw bytes to the file (or stdout)."""
        if self.path is None:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise SinkError(f"{self.name}: cannot write {self.path}: {exc}") from exc

    def probe(self) -> None:
        """The file (or its directory) must be writable; nothing is written."""
        if self.path is None:
            return
        target = self.path if self.path.exists() else self.path.parent
        while not target.exists():
            target = target.parent
        if not os.access(target, os.W_OK):
            raise SinkError(f"{self.name}: {self.path} is not writable", retryable=False)

    def close(self) -> None:
        """Nothing held open."""
