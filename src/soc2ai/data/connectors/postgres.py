"""An embeddings table in PostgreSQL, in the pgvector layout.

Expected columns: ``id`` (any type, compared as text), ``embedding`` (``vector`` with pgvector, or a
float array), ``<text_field>`` text, ``metadata`` jsonb, ``<subject_field>`` text. The SQL here never
names the embedding column, so it works the same whatever the vector type is. Export leaves the
embedding out (it is derived from the text and unreadable to a person); delete removes the row with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from soc2ai.data.connectors._match import first_hit, like_escape
from soc2ai.data.connectors.interface import LABEL_FIELD, Census, Expiry, Location, Subject, verify_by_find
from soc2ai.data.settings import ConnectorSettings
from soc2ai.errors import ConnectorError

EXPIRES_FIELD = "soc2ai_expires_at"


class PostgresConnector:
    """One embeddings table."""

    type = "postgres"

    def __init__(self, settings: ConnectorSettings) -> None:
        self.name = settings.name
        self._s = settings
        self.notes: list[str] = []
        try:
            import psycopg
            from psycopg import sql
        except ImportError as exc:  # pragma: no cover - extra installed in CI
            raise ConnectorError("the PostgreSQL connector needs the 'postgres' extra") from exc
        self._sql = sql
        self._errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        try:
            self._conn = psycopg.connect(settings.url or "", autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            raise ConnectorError(f"{self.name}: PostgreSQL unreachable ({exc})") from exc
        parts = settings.table.split(".")
        self._table = sql.Identifier(*parts)
        self._subject = sql.Identifier(settings.subject_field)
        self._text = sql.Identifier(settings.text_field)

    def _q(self, template: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        query = self._sql.SQL(template).format(t=self._table, subj=self._subject, txt=self._text)
        try:
            cur = self._conn.execute(query, params)
            return list(cur.fetchall()) if cur.description else []
        except self._errors as exc:
            raise ConnectorError(f"{self.name}: {exc}") from exc

    def find(self, subject: Subject) -> list[Location]:
        """Rows by subject column or metadata, lineage ids, and identifiers in text or metadata."""
        self.notes = []
        ids = [subject.id, *subject.refs]
        found: dict[str, str] = {}
        for (rid,) in self._q("SELECT id::text FROM {t} WHERE {subj} = ANY(%s) OR metadata->>%s = ANY(%s)",
                              (ids, self._s.subject_field, ids)):
            found[rid] = "subject"
        known = sorted(subject.known_ids(self.name, self._s.table))
        if known:
            for (rid,) in self._q("SELECT id::text FROM {t} WHERE id::text = ANY(%s)", (known,)):
                found.setdefault(rid, "lineage")
        if self._s.discovery:
            needles = subject.needles()
            patterns = ["%" + like_escape(n) + "%" for n in needles]
            rows = self._q("SELECT id::text, coalesce({txt}, ''), coalesce(metadata::text, '') FROM {t}"
                           " WHERE {txt} ILIKE ANY(%s) OR metadata::text ILIKE ANY(%s)", (patterns, patterns))
            lowered = [n.lower() for n in needles]
            for rid, text, meta in rows:
                if first_hit(text.lower(), lowered) or first_hit(meta.lower(), lowered):
                    found.setdefault(rid, "discovery")
        return [Location(self.name, self._s.table, rid, how) for rid, how in sorted(found.items())]

    def export(self, locations: Sequence[Location]) -> Iterator[dict[str, Any]]:
        """Id, text, metadata and subject of each row (not the embedding)."""
        ids = [loc.item_id for loc in locations]
        for rid, text, meta, subj in self._q("SELECT id::text, {txt}, metadata, {subj} FROM {t}"
                                             " WHERE id::text = ANY(%s)", (ids,)):
            yield {"table": self._s.table, "id": rid, "text": text, "metadata": meta, "subject": subj}

    def delete(self, subject: Subject, locations: Sequence[Location]) -> int:
        """DELETE the rows (embedding included)."""
        ids = [loc.item_id for loc in locations]
        if not ids:
            return 0
        rows = self._q("DELETE FROM {t} WHERE id::text = ANY(%s) RETURNING 1", (ids,))
        return len(rows)

    def verify_deleted(self, subject: Subject) -> None:
        """Raise if a fresh find still sees rows of the subject."""
        verify_by_find(self, subject)

    def expire(self, expiry: Expiry, *, dry_run: bool) -> dict[str, int]:
        """Delete rows whose metadata ``soc2ai_expires_at`` has passed."""
        cond = "metadata->>%s ~ '^[0-9]+$' AND (metadata->>%s)::bigint < %s"
        args = (EXPIRES_FIELD, EXPIRES_FIELD, expiry.now_s)
        counts = {str(label or "unlabelled"): int(n) for label, n in self._q(
            "SELECT metadata->>%s, count(*) FROM {t} WHERE " + cond + " GROUP BY 1", (LABEL_FIELD, *args))}  # noqa: S608
        if not dry_run and counts:
            self._q("DELETE FROM {t} WHERE " + cond, args)  # noqa: S608
        return counts

    def census(self) -> list[Census]:
        """Rows, and rows whose metadata has no label."""
        ((total, unlabelled),) = self._q(
            "SELECT count(*), count(*) FILTER (WHERE metadata IS NULL OR NOT (metadata ? %s)) FROM {t}",
            (LABEL_FIELD,))
        return [Census(self.name, self._s.table, int(total), int(unlabelled))]

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
