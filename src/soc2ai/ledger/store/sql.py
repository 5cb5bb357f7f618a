"""SQL shared by the SQLite and PostgreSQL stores (one schema, one set of queries).

Queries are written with ``?`` placeholders; the PostgreSQL store rewrites them to ``%s``.
Derived columns (kind, ts, subject_ref, rid) duplicate fields of the canonical body so they can be
indexed; ``verify`` checks they agree with the body, so editing one is detected like any other edit.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from soc2ai.ledger.store.interface import Head, LeafRow, SealBatch

# 2: ledger_subject_spans replaces the index on ledger_leaves.subject_ref (stores at 1 are migrated by
# the first writer that opens them).
SCHEMA_VERSION = "2"
_LEAF_COLS = "SELECT idx, leaf_hash, body, kind, ts, subject_ref, rid FROM ledger_leaves"


def schema(blob: str, bigint: str) -> list[str]:
    """DDL for both engines; ``blob``/``bigint`` are the engine's type names."""
    return [
        "CREATE TABLE IF NOT EXISTS ledger_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS ledger_leaves (
            idx {bigint} PRIMARY KEY, leaf_hash {blob} NOT NULL, body {blob},
            kind TEXT NOT NULL, ts {bigint} NOT NULL, subject_ref {blob}, rid TEXT NOT NULL)""",
        "CREATE UNIQUE INDEX IF NOT EXISTS ledger_leaves_rid ON ledger_leaves (rid)",
        # Where each subject's records are: one row per subject per sealed batch (its first and last index
        # there, and how many), appended in index order. It replaces an index on ledger_leaves.subject_ref,
        # whose random inserts touched a page per subject per commit and cost the sealer about a quarter
        # of its time; lookups by subject (forget, DSAR counts) scan this small table instead.
        f"""CREATE TABLE IF NOT EXISTS ledger_subject_spans (
            first_idx {bigint} NOT NULL, subject_ref {blob} NOT NULL, last_idx {bigint} NOT NULL,
            n {bigint} NOT NULL)""",
        # Partial: verify reads every retention receipt before it starts, without scanning the table; the
        # sealer pays nothing for other kinds.
        "CREATE INDEX IF NOT EXISTS ledger_leaves_retention ON ledger_leaves (idx) WHERE kind = 'retention'",
        f"""CREATE TABLE IF NOT EXISTS ledger_nodes (
            level INTEGER NOT NULL, idx {bigint} NOT NULL, hash {blob} NOT NULL, PRIMARY KEY (level, idx))""",
        f"""CREATE TABLE IF NOT EXISTS ledger_checkpoints (
            size {bigint} PRIMARY KEY, note TEXT NOT NULL, created_us {bigint} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS ledger_head (
            id INTEGER PRIMARY KEY, size {bigint} NOT NULL, frontier {blob} NOT NULL, note TEXT)""",
        f"""CREATE TABLE IF NOT EXISTS ledger_subjects (
            subject_ref {blob} PRIMARY KEY, lookup {blob} NOT NULL, wrapped_key {blob} NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS ledger_subjects_lookup ON ledger_subjects (lookup)",
        f"CREATE TABLE IF NOT EXISTS ledger_payloads (rid TEXT PRIMARY KEY, sealed {blob} NOT NULL)",
    ]


def as_bytes(value: Any) -> bytes:
    # A hand-edited row may hold TEXT, INTEGER or REAL where we wrote a BLOB (SQLite is dynamically typed);
    # keep its text form so verification reports the edit (a mismatch) instead of crashing on it. Never
    # bytes(int): that would allocate that many zero bytes.
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return (value if isinstance(value, str) else str(value)).encode("utf-8", "surrogateescape")


def _int_or_none(value: Any) -> int | None:
    return value if type(value) is int else None


class SqlStore(abc.ABC):
    """Common implementation; subclasses supply connections, locking and placeholder style."""

    url: str
    log_id: str
    schema_version: int = 1

    # -- engine hooks ---------------------------------------------------------------------------
    @abc.abstractmethod
    def _reader(self) -> Any:
        """A connection for reads from the calling thread."""

    @abc.abstractmethod
    def _write_txn(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(cursor)`` in a write transaction holding the log's exclusive sealing lock."""

    # subject_ref as lowercase hex, computed by the engine: verify compares it with the body's field
    # without a bytes.fromhex per record.
    _REF_HEX = "CASE WHEN subject_ref IS NULL THEN NULL ELSE lower(hex(subject_ref)) END"

    def _q(self, sql: str) -> str:
        return sql

    def _iter_rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of a bounded query; engines that can stream override this."""
        return iter(self._fetchall(sql, params))

    def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self._reader()
        cur = conn.execute(self._q(sql), params)
        rows: list[tuple[Any, ...]] = cur.fetchall()
        return rows

    # -- creation -------------------------------------------------------------------------------
    def _init_meta(self, cur: Any, *, writable: bool = True) -> None:
        cur.execute(self._q("SELECT v FROM ledger_meta WHERE k = 'log_id'"))
        row = cur.fetchone()
        if row is None:
            self.log_id = uuid.uuid4().hex
            cur.execute(self._q("INSERT INTO ledger_meta (k, v) VALUES ('log_id', ?), ('schema', ?)"),
                        (self.log_id, SCHEMA_VERSION))
            cur.execute(self._q("INSERT INTO ledger_head (id, size, frontier, note) VALUES (1, 0, ?, NULL)"),
                        (b"",))
        else:
            self.log_id = row[0]
        cur.execute(self._q("SELECT v FROM ledger_meta WHERE k = 'schema'"))
        ver = cur.fetchone()
        self.schema_version = int(ver[0]) if ver else 1
        if self.schema_version < 2 and writable:
            self._migrate_to_2(cur)
            self.schema_version = 2

    def _migrate_to_2(self, cur: Any) -> None:
        """Spans for the records already stored (one per subject over its whole range), then drop the
        subject index they replace."""
        cur.execute(self._q("INSERT INTO ledger_subject_spans (first_idx, subject_ref, last_idx, n) "
                            "SELECT MIN(idx), subject_ref, MAX(idx), COUNT(*) FROM ledger_leaves "
                            "WHERE subject_ref IS NOT NULL GROUP BY subject_ref ORDER BY MIN(idx)"))
        cur.execute(self._q("DROP INDEX IF EXISTS ledger_leaves_subject"))
        cur.execute(self._q("UPDATE ledger_meta SET v = ? WHERE k = 'schema'"), (SCHEMA_VERSION,))

    # -- sealing --------------------------------------------------------------------------------
    @staticmethod
    def _head_from_row(row: tuple[Any, ...]) -> Head:
        size, frontier, note = int(row[0]), as_bytes(row[1]), row[2]
        return Head(size, [frontier[i:i + 32] for i in range(0, len(frontier), 32)], note)

    def seal(self, prepare: Callable[[Head], SealBatch]) -> SealBatch:
        def txn(cur: Any) -> SealBatch:
            cur.execute(self._q("SELECT size, frontier, note FROM ledger_head WHERE id = 1"))
            head = self._head_from_row(cur.fetchone())
            batch = prepare(head)
            self._insert_leaves(cur, batch.leaves)
            if batch.nodes:
                cur.executemany(self._q("INSERT INTO ledger_nodes (level, idx, hash) VALUES (?, ?, ?)"),
                                batch.nodes)
            if batch.spans:
                cur.executemany(self._q("INSERT INTO ledger_subject_spans (first_idx, subject_ref, last_idx, n) "
                                        "VALUES (?, ?, ?, ?)"), batch.spans)
            if batch.subjects:
                self._insert_subjects(cur, batch.subjects)
            if batch.payloads:
                cur.executemany(self._q("INSERT INTO ledger_payloads (rid, sealed) VALUES (?, ?)"),
                                batch.payloads)
            cp = batch.checkpoint
            cur.execute(self._q("INSERT INTO ledger_checkpoints (size, note, created_us) VALUES (?, ?, ?)"),
                        (cp.size, cp.note, batch.leaves[-1].ts if batch.leaves else 0))
            cur.execute(self._q("UPDATE ledger_head SET size = ?, frontier = ?, note = ? WHERE id = 1"),
                        (cp.size, b"".join(batch.frontier), cp.note))
            return batch

        result: SealBatch = self._write_txn(txn)
        return result

    def _insert_leaves(self, cur: Any, leaves: list[LeafRow]) -> None:
        cur.executemany(
            self._q("INSERT INTO ledger_leaves (idx, leaf_hash, body, kind, ts, subject_ref, rid) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)"),
            [(r.idx, r.leaf_hash, r.body, r.kind, r.ts, r.subject_ref, r.rid) for r in leaves])

    @abc.abstractmethod
    def _insert_subjects(self, cur: Any, rows: list[tuple[bytes, bytes, bytes]]) -> None:
        """Insert subject keys, ignoring ones already present."""

    # -- reads ----------------------------------------------------------------------------------
    def head(self) -> Head:
        rows = self._fetchall("SELECT size, frontier, note FROM ledger_head WHERE id = 1")
        return self._head_from_row(rows[0])

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        rows = self._fetchall("SELECT leaf_hash FROM ledger_leaves WHERE idx >= ? AND idx < ? ORDER BY idx",
                              (start, end))
        return [bytes(r[0]) for r in rows]

    def nodes(self, level: int, start: int, end: int) -> list[bytes]:
        rows = self._fetchall(
            "SELECT hash FROM ledger_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (level, start, end))
        return [bytes(r[0]) for r in rows]

    def all_nodes(self) -> dict[tuple[int, int], bytes]:
        # A row whose level or idx is not an integer (hand-edited) is left out: verify then finds the node
        # count wrong and names the first missing node instead of crashing.
        return {(lv, i): as_bytes(h) for lv, i, h in
                self._fetchall("SELECT level, idx, hash FROM ledger_nodes")
                if type(lv) is int and type(i) is int}

    def node_map(self, level: int, start: int, end: int) -> dict[int, bytes]:
        return {i: as_bytes(h) for i, h in self._fetchall(
            "SELECT idx, hash FROM ledger_nodes WHERE level = ? AND idx >= ? AND idx < ?", (level, start, end))
            if type(i) is int}

    def count_nodes(self) -> int:
        return int(self._fetchall("SELECT COUNT(*) FROM ledger_nodes")[0][0])

    def raw_leaves(self, start: int, end: int, batch: int = 20_000,
                   kind: str | None = None) -> Iterator[list[tuple[Any, ...]]]:
        """Rows (idx, leaf_hash, body, kind, ts, subject_ref, rid) in batches, unconverted (verify's fast path)."""
        where = " AND kind = ?" if kind else ""
        pos = start
        while pos < end:
            params: list[Any] = [pos, end, kind] if kind else [pos, end]
            rows = self._fetchall(f"{_LEAF_COLS} WHERE idx >= ? AND idx < ?{where} ORDER BY idx LIMIT {int(batch)}",
                                  params)
            if not rows:
                return
            yield rows
            pos = int(rows[-1][0]) + 1

    def retention_rows(self, end: int) -> list[tuple[int, Any, Any]]:
        # The literal (not a parameter) lets the planner use the partial index. Only rows inside the log
        # [0, end): a row at a negative index or past the head is never verified, so never trusted.
        return [(int(i), h, b) for i, h, b in self._fetchall(
            "SELECT idx, leaf_hash, body FROM ledger_leaves WHERE kind = 'retention' AND idx >= 0 AND idx < ? "
            "ORDER BY idx", (end,))]

    def stray_indexes(self, size: int) -> tuple[int | None, int | None]:
        # Two index lookups (MIN over the primary key), not a scan.
        row = self._fetchall("SELECT (SELECT MIN(idx) FROM ledger_leaves WHERE idx < 0), "
                             "(SELECT MIN(idx) FROM ledger_leaves WHERE idx >= ?)", (size,))[0]
        return _int_or_none(row[0]), _int_or_none(row[1])

    def verify_rows(self, start: int, end: int) -> Iterator[tuple[Any, ...]]:
        return self._iter_rows(f"SELECT idx, leaf_hash, body, kind, ts, {self._REF_HEX}, rid FROM ledger_leaves "  # noqa: S608
                               "WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end))

    def iter_leaves(self, start: int = 0, end: int | None = None, kind: str | None = None,
                    batch: int = 20_000) -> Iterator[LeafRow]:
        for rows in self.raw_leaves(start, end if end is not None else 2**62, batch, kind):
            for r in rows:
                yield LeafRow(int(r[0]), as_bytes(r[1]), None if r[2] is None else as_bytes(r[2]), str(r[3]),
                              int(r[4]), None if r[5] is None else as_bytes(r[5]), str(r[6]))

    def checkpoints(self) -> list[tuple[int, str]]:
        return [(int(s), n) for s, n in self._fetchall("SELECT size, note FROM ledger_checkpoints ORDER BY size")]

    def checkpoint_before(self, ts_us: int) -> tuple[int, str] | None:
        rows = self._fetchall("SELECT size, note FROM ledger_checkpoints WHERE created_us < ? AND size > 0 "
                              "ORDER BY size DESC LIMIT 1", (ts_us,))
        return (int(rows[0][0]), rows[0][1]) if rows else None

    def checkpoint_after(self, ts_us: int) -> tuple[int, str] | None:
        rows = self._fetchall("SELECT size, note FROM ledger_checkpoints WHERE created_us > ? "
                              "ORDER BY size LIMIT 1", (ts_us,))
        return (int(rows[0][0]), rows[0][1]) if rows else None

    def existing_ids(self, rids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(rids), 500):
            chunk = list(rids[i:i + 500])
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self._fetchall(
                f"SELECT rid FROM ledger_leaves WHERE rid IN ({marks})", chunk))  # noqa: S608 - placeholders only
        return found

    def sealed_ids(self, rids: Sequence[str]) -> dict[str, tuple[int, bytes]]:
        """id -> (idx, leaf_hash) of those ids already in the log."""
        found: dict[str, tuple[int, bytes]] = {}
        for i in range(0, len(rids), 500):
            chunk = list(rids[i:i + 500])
            marks = ",".join("?" * len(chunk))
            found.update((r, (int(x), as_bytes(h))) for r, x, h in self._fetchall(
                f"SELECT rid, idx, leaf_hash FROM ledger_leaves WHERE rid IN ({marks})", chunk))  # noqa: S608
        return found

    def find_rid(self, rid: str) -> int | None:
        rows = self._fetchall("SELECT idx FROM ledger_leaves WHERE rid = ?", (rid,))
        return int(rows[0][0]) if rows else None

    def subject_keys(self, lookup: bytes) -> list[tuple[bytes, bytes]]:
        return [(bytes(a), bytes(b)) for a, b in
                self._fetchall("SELECT subject_ref, wrapped_key FROM ledger_subjects WHERE lookup = ?", (lookup,))]

    def subject_key_by_ref(self, ref: bytes) -> bytes | None:
        rows = self._fetchall("SELECT wrapped_key FROM ledger_subjects WHERE subject_ref = ?", (ref,))
        return bytes(rows[0][0]) if rows else None

    def payload(self, rid: str) -> bytes | None:
        rows = self._fetchall("SELECT sealed FROM ledger_payloads WHERE rid = ?", (rid,))
        return bytes(rows[0][0]) if rows else None

    def count_subject_records(self, refs: Sequence[bytes]) -> int:
        sql = ("SELECT COUNT(*) FROM ledger_leaves WHERE subject_ref = ?" if self.schema_version < 2
               else "SELECT COALESCE(SUM(n), 0) FROM ledger_subject_spans WHERE subject_ref = ?")
        return sum(int(self._fetchall(sql, (r,))[0][0]) for r in refs)

    def count_by_kind(self) -> dict[str, int]:
        return {k: int(n) for k, n in self._fetchall("SELECT kind, COUNT(*) FROM ledger_leaves GROUP BY kind")}

    def max_pruned_idx(self) -> int:
        """Highest index whose body is gone (-1 when none)."""
        v = self._fetchall("SELECT MAX(idx) FROM ledger_leaves WHERE body IS NULL")[0][0]
        return -1 if v is None else int(v)

    def pruned_count(self) -> int:
        return int(self._fetchall("SELECT COUNT(*) FROM ledger_leaves WHERE body IS NULL")[0][0])

    # -- mutations outside sealing (forget, prune) ------------------------------------------------
    def delete_subject(self, lookup: bytes) -> list[bytes]:
        def txn(cur: Any) -> list[bytes]:
            cur.execute(self._q("SELECT subject_ref FROM ledger_subjects WHERE lookup = ?"), (lookup,))
            refs = [bytes(r[0]) for r in cur.fetchall()]
            # With spans, only the index ranges they name are read, never the whole log.
            sql = ("DELETE FROM ledger_payloads WHERE rid IN (SELECT rid FROM ledger_leaves WHERE subject_ref = ?)"
                   if self.schema_version < 2 else
                   "DELETE FROM ledger_payloads WHERE rid IN (SELECT l.rid FROM ledger_subject_spans s "
                   "JOIN ledger_leaves l ON l.idx BETWEEN s.first_idx AND s.last_idx AND l.subject_ref = s.subject_ref "
                   "WHERE s.subject_ref = ?)")
            for ref in refs:
                cur.execute(self._q(sql), (ref,))
            cur.execute(self._q("DELETE FROM ledger_subjects WHERE lookup = ?"), (lookup,))
            return refs

        refs: list[bytes] = self._write_txn(txn)
        return refs

    def prune(self, before_ts: int, kinds: Sequence[str] | None) -> int:
        def txn(cur: Any) -> int:
            # Retention receipts are never pruned: verify needs every receipt's count to account for the
            # missing bodies (a second prune that dropped the first receipt made the log unverifiable).
            where = "ts < ? AND body IS NOT NULL AND kind <> 'retention'"
            params: list[Any] = [before_ts]
            if kinds:
                where += " AND kind IN (" + ",".join("?" * len(kinds)) + ")"
                params.extend(kinds)
            # ``where`` is built from constants and placeholders only.
            sub = f"SELECT rid FROM ledger_leaves WHERE {where}"  # noqa: S608
            cur.execute(self._q(f"DELETE FROM ledger_payloads WHERE rid IN ({sub})"), params)  # noqa: S608
            cur.execute(self._q(f"UPDATE ledger_leaves SET body = NULL WHERE {where}"), params)  # noqa: S608
            return int(cur.rowcount)

        n: int = self._write_txn(txn)
        return n
