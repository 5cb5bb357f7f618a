"""An embeddings table in PostgreSQL, in the pgvector layout.

Expected columns: ``id`` (any type, compared as text), ``embedding`` (``vector`` with pgvector, or a
float array), ``<text_field>`` text, ``metadata`` jsonb, ``<subject_field>`` text. The SQL here never
names the embedding column, so it works the same whatever the vector type is. Export leaves the
embedding out (it is derived from the text and unreadable to a person); delete removes the row with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson

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
        """One query: subject column or metadata subject (exact), lineage ids, identifier metadata fields
        (exact), and identifiers in the text column (``ILIKE``, confirmed as whole tokens here).

        Each condition can use an index when there is one: btree on the subject column and on ``id``, GIN
        on ``metadata`` (``@>``) and a pg_trgm GIN on the text column (``ILIKE``); without them the query
        is still a single sequential scan. Identifiers inside other metadata keys are not searched."""
        sql = self._sql
        self.notes = []
        ids = [subject.id, *subject.refs]
        exact: list[Any] = [sql.SQL("{} = ANY(%s)").format(self._subject)]
        params: list[Any] = [ids]
        for v in ids:
            exact.append(sql.SQL("metadata @> %s::jsonb"))
            params.append(orjson.dumps({self._s.subject_field: v}).decode())
        exact_sql = sql.SQL(" OR ").join(exact)
        meta: list[Any] = []
        meta_params: list[Any] = []
        text: list[Any] = []
        text_params: list[Any] = []
        if self._s.discovery:
            for _, v in subject.identifiers:
                for f in self._s.identifier_fields:
                    meta.append(sql.SQL("metadata @> %s::jsonb"))
                    meta_params.append(orjson.dumps({f: v}).decode())
            for n in subject.needles():
                text.append(sql.SQL("{} ILIKE %s").format(self._text))
                text_params.append("%" + like_escape(n) + "%")
        meta_sql = sql.SQL(" OR ").join(meta) if meta else sql.SQL("false")
        known = sorted(subject.known_ids(self.name, self._s.table))
        where = [sql.SQL("({})").format(exact_sql), sql.SQL("({})").format(meta_sql)]
        where_params = [*params, *meta_params]
        if text:
            where.append(sql.SQL("({})").format(sql.SQL(" OR ").join(text)))
            where_params += text_params
        if known:
            where.append(sql.SQL("id::text = ANY(%s)"))
            where_params.append(known)
        query = sql.SQL("SELECT id::text, ({exact}) AS exact, ({meta}) AS meta, coalesce({txt}::text, '')"
                        " FROM {t} WHERE {where}").format(
            exact=exact_sql, meta=meta_sql, txt=self._text, t=self._table, where=sql.SQL(" OR ").join(where))
        try:
            rows = self._conn.execute(query, [*params, *meta_params, *where_params]).fetchall()
        except self._errors as exc:
            raise ConnectorError(f"{self.name}: {exc}") from exc
        needles = subject.needles()
        known_set = set(known)
        out = []
        for rid, is_exact, is_meta, body in rows:
            if is_exact:
                how = "subject"
            elif rid in known_set:
                how = "lineage"
            elif is_meta or first_hit(body, needles):
                how = "discovery"
            else:
                continue  # ILIKE matched inside a longer token
            out.append(Location(self.name, self._s.table, rid, how))
        return sorted(out, key=lambda loc: loc.item_id)

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
