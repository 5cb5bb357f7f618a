"""LanceDB (embedded): tables with an ``id`` column, a vector column and flat metadata columns.

Filters are DataFusion SQL strings (LanceDB has no bound parameters), so every value is quoted with
:func:`sql_quote`. Discovery uses ``ILIKE`` as a coarse pre-filter (``_``/``%`` in a needle only widen
it) and confirms each candidate as a whole-token match in Python; both ignore case.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from soc2ai.data.connectors._match import first_hit, sql_quote
from soc2ai.data.connectors.interface import LABEL_FIELD, Census, Expiry, Location, Subject, verify_by_find
from soc2ai.data.settings import LABELS, ConnectorSettings
from soc2ai.errors import ConnectorError

EXPIRES_FIELD = "soc2ai_expires_at"


class LanceDBConnector:
    """Every (or the listed) table of one LanceDB directory."""

    type = "lancedb"

    def __init__(self, settings: ConnectorSettings, *, root: Path) -> None:
        self.name = settings.name
        self._s = settings
        self.notes: list[str] = []
        try:
            import lancedb
        except ImportError as exc:  # pragma: no cover - extra installed in CI
            raise ConnectorError("the LanceDB connector needs the 'vectors' extra") from exc
        path = (root / (settings.path or "")).resolve()
        if not path.is_dir():
            raise ConnectorError(f"{self.name}: LanceDB directory {path} does not exist")
        try:
            self._db = lancedb.connect(str(path))
        except Exception as exc:
            raise ConnectorError(f"{self.name}: cannot open LanceDB at {path} ({exc})") from exc

    def _tables(self) -> list[str]:
        if self._s.collections:
            return list(self._s.collections)
        names: list[str] = []
        token = None
        while True:
            resp = self._db.list_tables(page_token=token)
            names += list(resp.tables)
            token = resp.page_token
            if not token:
                return names

    @staticmethod
    def _lit(value: str, numeric: bool) -> str:
        if numeric:
            if not value.lstrip("-").isdigit():
                raise ConnectorError(f"non-numeric id {value!r} for an integer id column")
            return value
        return sql_quote(value)

    def _rows(self, tbl: Any, where: str, cols: list[str]) -> list[dict[str, Any]]:
        try:
            rows: list[dict[str, Any]] = (tbl.search().where(where, prefilter=True).select(cols)
                                          .limit(None).to_arrow().to_pylist())
        except Exception as exc:
            raise ConnectorError(f"{self.name}: query on {tbl.name} failed ({exc})") from exc
        return rows

    def _id_list(self, tbl: Any, ids: Sequence[str]) -> str:
        import pyarrow as pa

        numeric = pa.types.is_integer(tbl.schema.field("id").type)
        return ", ".join(self._lit(i, numeric) for i in ids)

    def find(self, subject: Subject) -> list[Location]:
        """Rows by subject/identifier columns, lineage ids, and identifiers in the text column."""
        self.notes = []
        out: list[Location] = []
        for name in self._tables():
            tbl = self._db.open_table(name)
            cols = set(tbl.schema.names)
            if "id" not in cols:
                self.notes.append(f"{name}: no id column; skipped")
                continue
            found: dict[str, str] = {}
            clauses = []
            if self._s.subject_field in cols:
                vals = ", ".join(sql_quote(v) for v in [subject.id, *subject.refs])
                clauses.append(f"{self._s.subject_field} IN ({vals})")
            idents = [v for _, v in subject.identifiers]
            if self._s.discovery and idents:
                vals = ", ".join(sql_quote(v) for v in idents)
                clauses += [f"{f} IN ({vals})" for f in self._s.identifier_fields if f in cols]
            if clauses:
                for row in self._rows(tbl, " OR ".join(clauses), ["id"]):
                    found[str(row["id"])] = "subject"
            known = sorted(subject.known_ids(self.name, name))
            if known:
                for row in self._rows(tbl, f"id IN ({self._id_list(tbl, known)})", ["id"]):
                    found.setdefault(str(row["id"]), "lineage")
            text = self._s.text_field
            if self._s.discovery and text in cols:
                needles = subject.needles()
                like = " OR ".join(f"{text} ILIKE {sql_quote('%' + n + '%')}" for n in needles)
                for row in self._rows(tbl, like, ["id", text]):
                    if str(row["id"]) not in found and first_hit(str(row[text] or ""), needles):
                        found[str(row["id"])] = "discovery"
            out += [Location(self.name, name, rid, how) for rid, how in sorted(found.items())]
        return out

    def export(self, locations: Sequence[Location]) -> Iterator[dict[str, Any]]:
        """Rows without the vector column."""
        by_tbl: dict[str, list[str]] = {}
        for loc in locations:
            by_tbl.setdefault(loc.collection, []).append(loc.item_id)
        for name, ids in by_tbl.items():
            tbl = self._db.open_table(name)
            cols = [c for c in tbl.schema.names if c != "vector"]
            for row in self._rows(tbl, f"id IN ({self._id_list(tbl, ids)})", cols):
                yield {"table": name, **row}

    def delete(self, subject: Subject, locations: Sequence[Location]) -> int:
        """Delete rows by id."""
        by_tbl: dict[str, list[str]] = {}
        for loc in locations:
            by_tbl.setdefault(loc.collection, []).append(loc.item_id)
        n = 0
        for name, ids in by_tbl.items():
            tbl = self._db.open_table(name)
            cond = f"id IN ({self._id_list(tbl, ids)})"
            present = tbl.count_rows(cond)
            if present:
                try:
                    tbl.delete(cond)
                except Exception as exc:
                    raise ConnectorError(f"{self.name}: delete on {name} failed ({exc})") from exc
                n += present
        return n

    def verify_deleted(self, subject: Subject) -> None:
        """Raise if a fresh find still sees rows of the subject."""
        verify_by_find(self, subject)

    def expire(self, expiry: Expiry, *, dry_run: bool) -> dict[str, int]:
        """Delete rows whose ``soc2ai_expires_at`` column has passed."""
        counts: dict[str, int] = {}
        for name in self._tables():
            tbl = self._db.open_table(name)
            if EXPIRES_FIELD not in tbl.schema.names:
                continue
            cond = f"{EXPIRES_FIELD} < {int(expiry.now_s)}"
            cols = [LABEL_FIELD] if LABEL_FIELD in tbl.schema.names else ["id"]
            for row in self._rows(tbl, cond, cols):
                label = str(row.get(LABEL_FIELD) or "unlabelled")
                counts[label] = counts.get(label, 0) + 1
            if not dry_run and tbl.count_rows(cond):
                tbl.delete(cond)
        return counts

    def census(self) -> list[Census]:
        """Rows and unlabelled rows per table."""
        out = []
        for name in self._tables():
            tbl = self._db.open_table(name)
            total = tbl.count_rows()
            if LABEL_FIELD in tbl.schema.names:
                labels = ", ".join(sql_quote(v) for v in LABELS)
                labelled = tbl.count_rows(f"{LABEL_FIELD} IN ({labels})")
            else:
                labelled = 0
            out.append(Census(self.name, name, int(total), int(total - labelled)))
        return out

    def close(self) -> None:
        """Embedded LanceDB holds no connection."""
