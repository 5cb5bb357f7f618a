"""The ledger as a DSAR store: found through ``AuditLog.subject_refs``, deleted by crypto-shredding.

The ledger keeps only keyed hashes and a ``subject_ref`` per record; ``forget`` destroys the subject's
keys (and any retained encrypted payloads), so the records stay in the tree (proofs still verify) but can
no longer be linked to the person. One mechanism, one receipt: ``forget`` appends the ledger's own
``DsarRecord``. Retention drives ``prune`` (bodies dropped, leaf hashes kept, a ``RetentionRecord``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from soc2ai.data.connectors.interface import Census, Expiry, Location, Subject
from soc2ai.errors import ConnectorError, Soc2AIError, VerificationError

if TYPE_CHECKING:
    from soc2ai.ledger import AuditLog

INFERENCE_KINDS = ["inference"]


class LedgerConnector:
    """The audit log of this installation."""

    type = "ledger"

    def __init__(self, log: AuditLog, *, ledger_days: int = 365) -> None:
        self.name = "ledger"
        self._log = log
        self._days = ledger_days
        self.notes: list[str] = []
        self.last_forget: Any = None

    def find(self, subject: Subject) -> list[Location]:
        """One location per subject_ref (subject key) of the user, with the number of records it links."""
        self.notes = []
        try:
            refs = self._log.subject_refs(subject.id)
            out = []
            for ref in refs:
                n = self._log.store.count_subject_records([bytes.fromhex(ref)])
                out.append(Location(self.name, "subjects", ref, "ledger", f"{n} records"))
        except Soc2AIError as exc:
            raise ConnectorError(f"ledger: {exc}") from exc
        return out

    def records(self, refs: Sequence[str]) -> Iterator[dict[str, Any]]:
        """Record bodies carrying these subject refs (a full scan of the log)."""
        wanted = set(refs)
        for e in self._log.entries():
            if e.body is not None and e.body.get("subject_ref") in wanted:
                yield {"idx": e.idx, "record": e.body}

    def export(self, locations: Sequence[Location]) -> Iterator[dict[str, Any]]:
        """The subject's ledger records (hashes and metadata; content is never stored in clear)."""
        yield from self.records([loc.item_id for loc in locations])

    def delete(self, subject: Subject, locations: Sequence[Location]) -> int:
        """Crypto-shred the subject (``AuditLog.forget``); return the number of records made unlinkable."""
        try:
            result = self._log.forget(subject.id, actor="soc2ai dsar delete")
        except Soc2AIError as exc:
            raise ConnectorError(f"ledger: forget failed ({exc})") from exc
        self.last_forget = result
        return int(result.records)

    def verify_deleted(self, subject: Subject) -> None:
        """Raise while a subject key of the user still exists."""
        left = self._log.subject_refs(subject.id)
        if left:
            raise VerificationError(f"ledger: {len(left)} subject key(s) of the subject remain")

    def expire(self, expiry: Expiry, *, dry_run: bool) -> dict[str, int]:
        """Prune inference bodies older than ``ledger_days`` (a dry run counts them)."""
        cutoff_us = (expiry.now_s - self._days * 86_400) * 1_000_000
        if dry_run:
            n = sum(1 for e in self._log.entries(kind="inference") if e.body is not None and e.ts < cutoff_us)
        else:
            n = self._log.prune(cutoff_us, INFERENCE_KINDS, actor="soc2ai retention run")
        return {"inference": n} if n else {}

    def census(self) -> list[Census]:
        """Ledger records are classified by the gateway per record; report totals by kind."""
        counts = self._log.store.count_by_kind()
        return [Census(self.name, kind, n, 0) for kind, n in sorted(counts.items())]

    def close(self) -> None:
        """The log is owned by the caller."""
