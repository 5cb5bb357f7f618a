"""Retention enforcement (C1.2) and the unlabelled-data check (C1.1).

``run_retention`` asks every connector to delete items whose ``soc2ai_expires_at`` (set at ingestion
from the label and content categories) has passed, and the ledger to prune inference bodies older than
``ledger_days`` (hashes and proofs stay). A real run appends one ``RetentionRecord`` with the counts
per store and label; a dry run only counts. ``census`` backs ``soc2ai data check``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from soc2ai.data.connectors.interface import Census, Expiry
from soc2ai.data.runtime import Opened
from soc2ai.errors import Soc2AIError

if TYPE_CHECKING:
    from soc2ai.data.settings import RetentionSettings
    from soc2ai.ledger import AuditLog


@dataclass
class RetentionReport:
    """What a retention run removed (or would remove), per store and label."""

    now_s: int
    dry_run: bool
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    receipt_id: str | None = None

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"now_s": self.now_s, "dry_run": self.dry_run, "total": self.total, "counts": self.counts,
                "errors": self.errors, "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
                "receipt_id": self.receipt_id}


def run_retention(opened: Opened, policy: RetentionSettings, *, log: AuditLog | None, dry_run: bool,
                  clock: Callable[[], float] = time.time) -> RetentionReport:
    """Enforce retention in every connector (the ledger included when it is among them)."""
    now = int(clock())
    report = RetentionReport(now, dry_run, errors=dict(opened.unreachable))
    for c in opened.connectors:
        t0 = time.perf_counter()
        try:
            report.counts[c.name] = c.expire(Expiry(now), dry_run=dry_run)
        except Soc2AIError as exc:
            report.errors[c.name] = str(exc)
        except Exception as exc:
            report.errors[c.name] = f"{type(exc).__name__}: {exc}"
        report.seconds[c.name] = time.perf_counter() - t0
    if not dry_run and log is not None:
        from soc2ai.ledger.records import RetentionRecord

        rec = RetentionRecord(action="delete", scope="data:" + ",".join(sorted(report.counts)),
                              cutoff_ts=now * 1_000_000, count=report.total,
                              attrs={"by_store": report.counts, "errors": sorted(report.errors),
                                     "label_days": dict(policy.label_days),
                                     "category_days": dict(policy.category_days),
                                     "ledger_days": policy.ledger_days})
        log.append(rec)
        log.flush()
        report.receipt_id = rec.id
    return report


@dataclass
class CheckReport:
    """``data check``: collections holding unlabelled items, and stores that could not be read."""

    census: list[Census]
    errors: dict[str, str]

    @property
    def unlabelled(self) -> int:
        return sum(c.unlabelled for c in self.census)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"unlabelled": self.unlabelled, "errors": self.errors,
                "collections": [{"store": c.connector, "collection": c.collection, "total": c.total,
                                 "unlabelled": c.unlabelled, "notes": c.notes} for c in self.census]}


def census(opened: Opened) -> CheckReport:
    """Totals and unlabelled counts for every collection of every connector."""
    out: list[Census] = []
    errors = dict(opened.unreachable)
    for c in opened.connectors:
        try:
            out += c.census()
        except Soc2AIError as exc:
            errors[c.name] = str(exc)
        except Exception as exc:
            errors[c.name] = f"{type(exc).__name__}: {exc}"
    return CheckReport(out, errors)
