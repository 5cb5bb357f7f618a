"""The ``Sink`` protocol every alert destination implements, and its error.

A sink delivers one alert payload (the generic dict of :meth:`Alert.to_dict`) in its own format. It
raises :class:`SinkError` on failure; ``retryable`` says whether the dispatcher should try again later
(transport errors, 5xx, 429) or park the alert as failed (a 4xx that will never succeed).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from soc2ai.errors import Soc2AIError


class SinkError(Soc2AIError):
    """A sink could not deliver (or, for :meth:`Sink.probe`, is not reachable)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        self.retryable = retryable
        super().__init__(message)


@runtime_checkable
class Sink(Protocol):
    """One alert destination. Implementations are used from a single dispatcher thread."""

    name: str

    def deliver(self, alert: dict[str, Any]) -> None:
        """Send one alert; raise SinkError when it did not arrive."""
        ...

    def probe(self) -> None:
        """Send a test event (or check the destination is writable); raise SinkError when unreachable."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


def test_event(project: str, ts: int) -> dict[str, Any]:
    """The alert-shaped payload sinks send when probed by ``soc2ai check``."""
    return {
        "id": f"probe-{ts}", "rule": "soc2ai.readiness.probe", "kind": "probe", "severity": "LOW",
        "response": "log", "message": f"soc2ai readiness probe from {project} (no action needed)",
        "ts": ts, "group": "*", "records": [], "details": {"test": True}, "repeats": 0,
        "incident_id": None, "description": "Sink reachability test",
    }
