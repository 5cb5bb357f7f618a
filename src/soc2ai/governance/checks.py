"""``CheckResult``: one line of a check (governance checks and ``soc2ai check`` readiness lines)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

OK = "OK"
WARN = "WARN"
FAIL = "FAIL"
STATUSES = (OK, WARN, FAIL)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check outcome: which check, which TSC criterion, OK/WARN/FAIL, why, and what to do."""

    check_id: str
    criterion: str
    status: str
    message: str
    remedy: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def worst(results: Iterable[CheckResult]) -> str:
    """The most severe status among ``results`` (OK when empty)."""
    statuses = {r.status for r in results}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else OK
