"""PostgreSQL store: several processes may append; a transaction-scoped advisory lock makes exactly one
sealer run at a time, so indexes are assigned without gaps, and a crashed holder releases it."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from soc2ai.errors import DuplicateRecordError, StoreError
from soc2ai.ledger.store.interface import LeafRow
from soc2ai.ledger.store.sql import SqlStore, schema

# Arbitrary constant identifying "the soc2ai sealing lock" among advisory locks in the database.
_LOCK_KEY = 0x50C2A1


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on installed extras
        raise StoreError("PostgreSQL support needs the 'postgres' extra: pip install 'soc2ai[postgres]'") from exc
    return psycopg


class PostgresStore(SqlStore):
    """A ledger in PostgreSQL tables prefixed ``ledger_`` (in the connection's search_path schema)."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self._pg = _psycopg()
        self._local = threading.local()
        self._readers: list[Any] = []
        self._lock = threading.Lock()
        self._wconn: Any = None

        def init(cur: Any) -> None:
            if create:
                for ddl in schema("BYTEA", "BIGINT"):
                    cur.execute(ddl)
            self._init_meta(cur, writable=create)

        self._write_txn(init)

    _REF_HEX = "encode(subject_ref, 'hex')"

    def _q(self, sql: str) -> str:
        return re.sub(r"\?", "%s", sql)

    def _connect(self) -> Any:
        try:
            # Keepalives: a half-open connection must fail fast so the sealer spools instead of hanging.
            return self._pg.connect(self.url, autocommit=True, connect_timeout=5, keepalives=1,
                                    keepalives_idle=5, keepalives_interval=2, keepalives_count=3)
        except self._pg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc

    def _reader(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return conn

    def _fetchall(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        for attempt in (1, 2):
            try:
                return super()._fetchall(sql, params)
            except self._pg.OperationalError as exc:
                self._local.conn = None  # reconnect once: the server may have dropped an idle connection
                if attempt == 2:
                    raise StoreError(f"PostgreSQL read failed: {exc}") from exc
            except self._pg.Error as exc:
                self._local.conn = None
                raise StoreError(f"PostgreSQL read failed: {exc}") from exc
        raise StoreError("unreachable")  # pragma: no cover

    def _write_txn(self, fn: Callable[[Any], Any]) -> Any:
        with self._lock:
            if self._wconn is None or self._wconn.closed or self._wconn.broken:
                self._wconn = self._connect()
                try:
                    # A lock held elsewhere (or a stuck statement) diverts the batch to the spool.
                    self._wconn.execute("SET lock_timeout = 1000")
                    self._wconn.execute("SET statement_timeout = 10000")
                except self._pg.Error as exc:
                    self._wconn = None
                    raise StoreError(f"PostgreSQL session setup failed: {exc}") from exc
            conn = self._wconn
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                    return fn(cur)
            except self._pg.errors.UniqueViolation as exc:
                # Only the unique index on record ids; any other unique key (an idx taken by a hand-inserted
                # row, a checkpoint size) is a store fault, not a caller's reused id.
                if exc.diag.constraint_name == "ledger_leaves_rid":
                    raise DuplicateRecordError(f"record id already in the log: {exc}") from exc
                raise StoreError(f"PostgreSQL write failed: {exc}") from exc
            except self._pg.Error as exc:
                if conn.broken:
                    self._wconn = None
                raise StoreError(f"PostgreSQL write failed: {exc}") from exc

    def _insert_leaves(self, cur: Any, leaves: list[LeafRow]) -> None:
        # One statement per batch (unnest of arrays) rather than a round trip per row.
        cur.execute(
            "INSERT INTO ledger_leaves (idx, leaf_hash, body, kind, ts, subject_ref, rid) "
            "SELECT * FROM unnest(%s::bigint[], %s::bytea[], %s::bytea[], %s::text[], %s::bigint[], "
            "%s::bytea[], %s::text[])",
            ([r.idx for r in leaves], [r.leaf_hash for r in leaves], [r.body for r in leaves],
             [r.kind for r in leaves], [r.ts for r in leaves], [r.subject_ref for r in leaves],
             [r.rid for r in leaves]))

    def _insert_subjects(self, cur: Any, rows: list[tuple[bytes, bytes, bytes]]) -> None:
        cur.executemany("INSERT INTO ledger_subjects (subject_ref, lookup, wrapped_key) VALUES (%s, %s, %s) "
                        "ON CONFLICT DO NOTHING", rows)

    def compact(self) -> list[str]:
        """Rewrite the key and payload tables so deleted keys leave their data files, then retire the WAL
        that held them; return what may still hold the bytes.

        A plain VACUUM only marks dead tuples reusable (their bytes stay in the page); VACUUM FULL writes
        a new file and unlinks the old one. Both tables are small (a row per subject, a row per retained
        payload); the rewrite locks them briefly, and a seal that waits longer than its lock timeout goes
        to the spool and is replayed. The WAL still holds the rows (inserts, and full-page images taken by
        the delete): switching to a new segment and checkpointing makes every older segment removable,
        and with ``wal_recycle = off`` the server unlinks them instead of renaming them for reuse.
        """
        residue: list[str] = []
        conn = self._connect()
        try:
            conn.execute("VACUUM FULL ledger_subjects")
            conn.execute("VACUUM FULL ledger_payloads")
            try:
                conn.execute("CHECKPOINT")
                conn.execute("SELECT pg_switch_wal()")
                conn.execute("CHECKPOINT")
            except self._pg.errors.InsufficientPrivilege:
                residue.append("PostgreSQL WAL: no privilege to CHECKPOINT and pg_switch_wal() (superuser, or "
                               "pg_checkpoint and EXECUTE on pg_switch_wal): deleted keys stay in the WAL until "
                               "the server retires it")
            settings = dict(conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('wal_recycle', 'archive_mode', 'wal_keep_size')").fetchall())
            slots = conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()
        except self._pg.Error as exc:
            raise StoreError(f"PostgreSQL compaction failed: {exc}") from exc
        finally:
            conn.close()
        if settings.get("wal_recycle") == "on":
            residue.append("PostgreSQL WAL: wal_recycle = on renames retired segments for reuse, so deleted keys "
                           "stay in them until overwritten; set wal_recycle = off to unlink them")
        if settings.get("archive_mode") not in (None, "off"):
            residue.append("PostgreSQL WAL archive: archived segments keep deleted keys; expire them with your "
                           "archive retention")
        if settings.get("wal_keep_size") not in (None, "0") or (slots and slots[0]):
            residue.append("PostgreSQL WAL: wal_keep_size or replication slots keep retired segments (and the "
                           "deleted keys) for standbys")
        return residue

    def close(self) -> None:
        with self._lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            if self._wconn is not None:
                self._wconn.close()
                self._wconn = None
        self._local = threading.local()
