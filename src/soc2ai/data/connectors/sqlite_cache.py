"""The gateway's embedded completion cache (SQLite ``completion_cache``, see soc2ai.gateway.cache).

Rows carry ``subject_ref`` (the ledger's keyed subject reference) and ``classification``; find = the
subject's refs + lineage-recorded hashes + a discovery scan of the cached responses for identifiers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from soc2ai.data.connectors._match import blob_hit, probes
from soc2ai.data.connectors.interface import Census, Expiry, Location, Subject, verify_by_find
from soc2ai.data.settings import ConnectorSettings
from soc2ai.errors import ConnectorError

TABLE = "completion_cache"


class SqliteCacheConnector:
    """One gateway cache file."""

    type = "sqlite_cache"

    def __init__(self, settings: ConnectorSettings, *, root: Path) -> None:
        self.name = settings.name
        self._s = settings
        self.notes: list[str] = []
        path = (root / (settings.path or "")).resolve()
        if not path.is_file():
            raise ConnectorError(f"{self.name}: cache file {path} does not exist")
        try:
            # Used by one thread at a time (DSAR runs each connector in its own worker thread).
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute(f"SELECT 1 FROM {TABLE} LIMIT 1")  # noqa: S608 - constant table name
        except sqlite3.Error as exc:
            raise ConnectorError(f"{self.name}: cannot read {path} ({exc})") from exc

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self._db.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise ConnectorError(f"{self.name}: {exc}") from exc

    def find(self, subject: Subject) -> list[Location]:
        """Rows by subject_ref, lineage hash, and identifiers in the cached response."""
        self.notes = []
        found: dict[str, str] = {}
        refs = list(subject.refs)
        if refs:
            marks = ",".join("?" * len(refs))
            for (h,) in self._q(f"SELECT hash FROM {TABLE} WHERE subject_ref IN ({marks})", refs):  # noqa: S608
                found[h] = "subject"
        known = sorted(subject.known_ids(self.name, TABLE))
        if known:
            marks = ",".join("?" * len(known))
            for (h,) in self._q(f"SELECT hash FROM {TABLE} WHERE hash IN ({marks})", known):  # noqa: S608
                found.setdefault(h, "lineage")
        if self._s.discovery:
            needles = subject.needles()
            raw = probes(needles)
            for h, resp in self._q(f"SELECT hash, response FROM {TABLE}"):  # noqa: S608
                blob = bytes(resp) if isinstance(resp, bytes | memoryview) else str(resp).encode()
                if h in found:
                    continue
                low = blob.lower()
                if any(n in low for n in raw) and blob_hit(blob, needles) is not None:
                    found[h] = "discovery"
        return [Location(self.name, TABLE, h, how) for h, how in sorted(found.items())]

    def export(self, locations: Sequence[Location]) -> Iterator[dict[str, Any]]:
        """Each cached response with its classification and timestamps."""
        for loc in locations:
            for h, cls, created, expires, resp in self._q(
                    f"SELECT hash, classification, created_us, expires_us, response FROM {TABLE}"  # noqa: S608
                    " WHERE hash = ?", (loc.item_id,)):
                text = bytes(resp).decode("utf-8", "replace") if isinstance(resp, bytes | memoryview) else resp
                yield {"hash": h, "classification": cls, "created_us": created, "expires_us": expires,
                       "response": text}

    def delete(self, subject: Subject, locations: Sequence[Location]) -> int:
        """DELETE the rows."""
        n = 0
        for loc in locations:
            cur = self._db.execute(f"DELETE FROM {TABLE} WHERE hash = ?", (loc.item_id,))  # noqa: S608
            n += max(int(cur.rowcount), 0)
        return n

    def verify_deleted(self, subject: Subject) -> None:
        """Raise if a fresh find still sees rows of the subject."""
        verify_by_find(self, subject)

    def expire(self, expiry: Expiry, *, dry_run: bool) -> dict[str, int]:
        """Rows past their ``expires_us`` (the gateway also sweeps them on write)."""
        now_us = expiry.now_s * 1_000_000
        counts = {str(c): int(n) for c, n in self._q(
            f"SELECT classification, count(*) FROM {TABLE} WHERE expires_us < ? GROUP BY 1", (now_us,))}  # noqa: S608
        if counts and not dry_run:
            self._db.execute(f"DELETE FROM {TABLE} WHERE expires_us < ?", (now_us,))  # noqa: S608
        return counts

    def census(self) -> list[Census]:
        """Rows, and rows without a classification."""
        ((total, unlabelled),) = self._q(
            f"SELECT count(*), sum(CASE WHEN coalesce(classification, '') = '' THEN 1 ELSE 0 END) FROM {TABLE}")  # noqa: S608
        return [Census(self.name, TABLE, int(total), int(unlabelled or 0))]

    def close(self) -> None:
        """Close the file."""
        self._db.close()
