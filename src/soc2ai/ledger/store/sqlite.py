"""SQLite store (embedded default): WAL, synchronous=FULL, secure_delete, BEGIN IMMEDIATE as the sealing lock."""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from soc2ai.errors import DuplicateRecordError, StoreError
from soc2ai.ledger.store.interface import LeafRow
from soc2ai.ledger.store.sql import SqlStore, schema

# Rows per INSERT statement: few statements (each releases the GIL around its step) but short enough
# that binding parameters does not hold the GIL for milliseconds.
_ROWS_PER_INSERT = 128
_WRITE_BUSY_MS = 1000


@functools.lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    values = ",".join(["(?,?,?,?,?,?,?)"] * rows)
    return f"INSERT INTO ledger_leaves (idx, leaf_hash, body, kind, ts, subject_ref, rid) VALUES {values}"  # noqa: S608


def sqlite_path(url: str) -> Path:
    """``sqlite:///rel/path`` or ``sqlite:////abs/path`` -> Path."""
    parsed = urlparse(url)
    path = unquote(parsed.netloc + parsed.path)
    if url.startswith("sqlite:////"):
        path = "/" + path.lstrip("/")
    elif path.startswith("/"):
        path = path[1:]
    if not path:
        raise StoreError(f"no database path in {url!r}")
    return Path(path)


class SQLiteStore(SqlStore):
    """A ledger in one SQLite file. Safe for several processes (the write lock serialises sealing)."""

    def __init__(self, url: str, *, create: bool = True, synchronous: str = "full") -> None:
        if synchronous not in ("full", "normal"):
            raise StoreError(f"unknown SQLite synchronous mode {synchronous!r}")
        self.url = url
        self._synchronous = synchronous.upper()
        self.path = sqlite_path(url)
        if not create and not self.path.exists():
            raise StoreError(f"no ledger at {self.path}")
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._write_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._wconn = self._connect()
            # A write lock held elsewhere for longer than this diverts the batch to the spool.
            self._wconn.execute(f"PRAGMA busy_timeout={_WRITE_BUSY_MS}")
            with self._write_lock:
                cur = self._wconn.cursor()
                cur.execute("BEGIN IMMEDIATE")
                for ddl in schema("BLOB", "INTEGER"):
                    cur.execute(ddl)
                self._init_meta(cur, writable=create)
                cur.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite ledger {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL (default): a commit is on disk before it is acknowledged; NORMAL survives process crashes only.
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        # Deleted content (subject keys on forget, pruned bodies) is overwritten, not left in free pages.
        conn.execute("PRAGMA secure_delete=ON")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open {self.path}: {exc}") from exc
            self._local.conn = conn
            with self._write_lock:
                self._readers.append(conn)
        return conn

    def _fetchall(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        try:
            return super()._fetchall(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite read failed: {exc}") from exc

    def _iter_rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        # Stepping the cursor instead of fetchall: verify reads 2**15-row chunks, and building the list
        # first cost about 1 µs per row here.
        try:
            yield from self._reader().execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite read failed: {exc}") from exc

    def _write_txn(self, fn: Callable[[Any], Any]) -> Any:
        with self._write_lock:
            cur = self._wconn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                result = fn(cur)
                cur.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                try:
                    self._wconn.rollback()
                except sqlite3.Error:
                    pass
                # Only the unique index on record ids: a NOT NULL rid, an index (idx) collision with a
                # hand-inserted row or a payload row are store faults, not a caller's reused id.
                if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE constraint failed: ledger_leaves.rid" in str(exc):
                    raise DuplicateRecordError(f"record id already in the log: {exc}") from exc
                raise StoreError(f"SQLite write failed: {exc}") from exc
            except BaseException:
                self._wconn.rollback()
                raise

    def _insert_leaves(self, cur: Any, leaves: list[LeafRow]) -> None:
        # One multi-row INSERT per chunk rather than executemany: the sqlite3 module releases the GIL
        # around every statement step, and each re-acquisition can wait a full switch interval (5 ms)
        # while a busy caller thread holds it. Fewer steps keep sealing latency low under load.
        for i in range(0, len(leaves), _ROWS_PER_INSERT):
            chunk = leaves[i:i + _ROWS_PER_INSERT]
            params: list[Any] = []
            for r in chunk:
                params += (r.idx, r.leaf_hash, r.body, r.kind, r.ts, r.subject_ref, r.rid)
            cur.execute(_insert_sql(len(chunk)), params)

    def _insert_subjects(self, cur: Any, rows: list[tuple[bytes, bytes, bytes]]) -> None:
        cur.executemany("INSERT OR IGNORE INTO ledger_subjects (subject_ref, lookup, wrapped_key) VALUES (?, ?, ?)",
                        rows)

    def compact(self) -> list[str]:
        """Make deletions physical: checkpoint and truncate the WAL, then VACUUM (secure_delete is on)."""
        with self._write_lock:
            try:
                self._wconn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._wconn.execute("VACUUM")
                self._wconn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite compaction failed: {exc}") from exc
        return []

    def close(self) -> None:
        with self._write_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._wconn.close()
        self._local = threading.local()
