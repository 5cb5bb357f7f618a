"""Qdrant through qdrant-client (local mode ``QdrantClient(path=...)``, or a server URL).

Find = payload subject field and identifier fields (exact match), lineage ids, and a ``MatchText``
filter on the text field for each identifier (confirmed as whole tokens, ignoring case as MatchText does).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from soc2ai.data.connectors._match import first_hit
from soc2ai.data.connectors.interface import LABEL_FIELD, Census, Expiry, Location, Subject, verify_by_find
from soc2ai.data.settings import LABELS, ConnectorSettings
from soc2ai.errors import ConnectorError

EXPIRES_FIELD = "soc2ai_expires_at"
PAGE = 10_000


def _point_id(item_id: str) -> int | str:
    return int(item_id) if item_id.isdigit() else item_id


class QdrantConnector:
    """Every (or the listed) collection of one Qdrant store."""

    type = "qdrant"

    def __init__(self, settings: ConnectorSettings, *, root: Path, client: Any = None) -> None:
        self.name = settings.name
        self._s = settings
        self.notes: list[str] = []
        try:
            from qdrant_client import QdrantClient, models
        except ImportError as exc:  # pragma: no cover - extra installed in CI
            raise ConnectorError("the Qdrant connector needs the 'vectors' extra") from exc
        self._m = models
        path = (root / (settings.path or "")).resolve()
        if client is None and not path.is_dir():
            raise ConnectorError(f"{self.name}: Qdrant directory {path} does not exist")
        try:
            self._q = client or QdrantClient(path=str(path))
        except Exception as exc:  # local mode raises RuntimeError when another process holds the lock
            raise ConnectorError(f"{self.name}: cannot open Qdrant at {path} ({exc})") from exc

    def _collections(self) -> list[str]:
        return self._s.collections or [c.name for c in self._q.get_collections().collections]

    def _scroll(self, collection: str, flt: Any, payload: bool | list[str]) -> Iterator[Any]:
        offset = None
        while True:
            points, offset = self._q.scroll(collection, scroll_filter=flt, limit=PAGE, offset=offset,
                                            with_payload=payload, with_vectors=False)
            yield from points
            if offset is None:
                return

    def find(self, subject: Subject) -> list[Location]:
        """Points by subject/identifier payload, lineage ids, and identifiers in the text field."""
        m = self._m
        self.notes = []
        out: list[Location] = []
        ids = [subject.id, *subject.refs]
        idents = [v for _, v in subject.identifiers]
        exact = [m.FieldCondition(key=self._s.subject_field, match=m.MatchAny(any=ids))]
        if self._s.discovery and idents:
            exact += [m.FieldCondition(key=f, match=m.MatchAny(any=idents)) for f in self._s.identifier_fields]
        for col in self._collections():
            found: dict[str, str] = {}
            for p in self._scroll(col, m.Filter(should=exact), False):
                found[str(p.id)] = "subject"
            known = sorted(subject.known_ids(self.name, col))
            if known:
                for p in self._q.retrieve(col, ids=[_point_id(k) for k in known], with_payload=False):
                    found.setdefault(str(p.id), "lineage")
            if self._s.discovery:
                for needle in subject.needles():
                    flt = m.Filter(must=[m.FieldCondition(key=self._s.text_field, match=m.MatchText(text=needle))])
                    for p in self._scroll(col, flt, [self._s.text_field]):
                        text = str((p.payload or {}).get(self._s.text_field, ""))
                        if str(p.id) not in found and first_hit(text, [needle]):
                            found[str(p.id)] = "discovery"
            out += [Location(self.name, col, rid, how) for rid, how in sorted(found.items())]
        return out

    def export(self, locations: Sequence[Location]) -> Iterator[dict[str, Any]]:
        """Payloads (vectors left out)."""
        by_col: dict[str, list[int | str]] = {}
        for loc in locations:
            by_col.setdefault(loc.collection, []).append(_point_id(loc.item_id))
        for col, ids in by_col.items():
            for p in self._q.retrieve(col, ids=ids, with_payload=True):
                yield {"collection": col, "id": str(p.id), "payload": p.payload}

    def delete(self, subject: Subject, locations: Sequence[Location]) -> int:
        """Delete points by id."""
        by_col: dict[str, list[int | str]] = {}
        for loc in locations:
            by_col.setdefault(loc.collection, []).append(_point_id(loc.item_id))
        n = 0
        try:
            for col, ids in by_col.items():
                present = [p.id for p in self._q.retrieve(col, ids=ids, with_payload=False)]
                if present:
                    self._q.delete(col, points_selector=self._m.PointIdsList(points=present), wait=True)
                    n += len(present)
        except Exception as exc:
            raise ConnectorError(f"{self.name}: delete failed ({exc})") from exc
        return n

    def verify_deleted(self, subject: Subject) -> None:
        """Raise if a fresh find still sees points of the subject."""
        verify_by_find(self, subject)

    def expire(self, expiry: Expiry, *, dry_run: bool) -> dict[str, int]:
        """Delete points whose ``soc2ai_expires_at`` payload has passed."""
        m = self._m
        counts: dict[str, int] = {}
        flt = m.Filter(must=[m.FieldCondition(key=EXPIRES_FIELD, range=m.Range(lt=expiry.now_s))])
        for col in self._collections():
            doomed = []
            for p in self._scroll(col, flt, [LABEL_FIELD]):
                label = str((p.payload or {}).get(LABEL_FIELD) or "unlabelled")
                counts[label] = counts.get(label, 0) + 1
                doomed.append(p.id)
            if doomed and not dry_run:
                self._q.delete(col, points_selector=m.PointIdsList(points=doomed), wait=True)
        return counts

    def census(self) -> list[Census]:
        """Points and unlabelled points per collection."""
        m = self._m
        out = []
        for col in self._collections():
            total = self._q.count(col, exact=True).count
            labelled = self._q.count(col, count_filter=m.Filter(must=[m.FieldCondition(
                key=LABEL_FIELD, match=m.MatchAny(any=list(LABELS)))]), exact=True).count
            out.append(Census(self.name, col, int(total), int(total - labelled)))
        return out

    def close(self) -> None:
        """Close the client (releases the local-mode lock)."""
        self._q.close()
