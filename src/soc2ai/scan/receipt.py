"""Scan receipts: a dataset-gate run recorded in the ledger as a ``ScanRecord`` (PI1.4, C1.1).

The model registry can require a passing receipt for a fine-tuning dataset: :func:`find_receipt`
looks one up by dataset hash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soc2ai.config import Config
    from soc2ai.scan.dataset import DatasetReport


def receipt_record(report: DatasetReport, *, actor: str = "") -> Any:
    """The ``ScanRecord`` for a report (no matched values, only counts and hashes)."""
    from soc2ai.ledger.records import ScanRecord

    attrs: dict[str, Any] = {"bytes": report.bytes, "fields_scanned": report.fields_scanned,
                             "records_with_findings": report.records_with_findings,
                             "malformed": report.error_count, "allow_malformed": report.allow_malformed}
    if actor:
        attrs["actor"] = actor
    return ScanRecord(dataset_hash=report.dataset_hash, path=",".join(report.paths), passed=report.passed,
                      records_scanned=report.records, counts=dict(sorted(report.counts.items())),
                      scanners=dict(sorted(report.scanners.items())), attrs=attrs)


def write_receipt(report: DatasetReport, config: Config | str, *, actor: str = "") -> str:
    """Append the receipt to the ledger (opened from ``config``) and return the record id."""
    from soc2ai.ledger import AuditLog

    log = AuditLog.open(config)
    try:
        rid: str = log.append(receipt_record(report, actor=actor))
        log.flush(timeout=10.0)
    finally:
        log.close()
    return rid


def find_receipt(config: Config | str, dataset_hash: str, *, passed_only: bool = True) -> dict[str, Any] | None:
    """The latest receipt body for ``dataset_hash`` (passing ones only by default), or None."""
    from soc2ai.ledger import AuditLog

    found: dict[str, Any] | None = None
    log = AuditLog.open(config, read_only=True)
    try:
        for entry in log.entries(kind="scan"):
            body = entry.body
            if body and body.get("dataset_hash") == dataset_hash and (body.get("passed") or not passed_only):
                found = body
    finally:
        log.close()
    return found
