"""Lineage: where an item came from and where it went.

A small graph in SQLite (next to the ledger) or PostgreSQL (the ledger's database): nodes are source
records, documents, chunks, embeddings (connector, collection, vector id), dataset examples (connector,
file, row key) and completions (cache key); edges go parent -> child. Subjects link to nodes through a
keyed hash (the lineage store never holds a raw user id); a subject owns a node and all its descendants.

Node ``store``/``collection``/``locator`` name the physical item: the connector name, the collection
(or dataset file), and the id inside it (vector id, row id or ``sha256:<row hash>``, cache key).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from soc2ai.errors import KeyMaterialError, StoreError

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS soc2ai_lineage_nodes (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, store TEXT NOT NULL DEFAULT '',
        collection TEXT NOT NULL DEFAULT '', locator TEXT NOT NULL DEFAULT '',
        label TEXT NOT NULL DEFAULT '', created_us BIGINT NOT NULL, deleted_us BIGINT,
        attrs TEXT NOT NULL DEFAULT '{}')""",
    "CREATE INDEX IF NOT EXISTS soc2ai_lineage_loc ON soc2ai_lineage_nodes (store, collection, locator)",
    """CREATE TABLE IF NOT EXISTS soc2ai_lineage_edges (
        parent TEXT NOT NULL, child TEXT NOT NULL, PRIMARY KEY (parent, child))""",
    "CREATE INDEX IF NOT EXISTS soc2ai_lineage_child ON soc2ai_lineage_edges (child)",
    """CREATE TABLE IF NOT EXISTS soc2ai_lineage_subjects (
        subject_key TEXT NOT NULL, node_id TEXT NOT NULL, PRIMARY KEY (subject_key, node_id))""",
    "CREATE INDEX IF NOT EXISTS soc2ai_lineage_subj_node ON soc2ai_lineage_subjects (node_id)",
)

_NODE_COLS = "id, kind, store, collection, locator, label, created_us, deleted_us, attrs"


@dataclass(frozen=True, slots=True)
class Node:
    """One lineage node."""

    id: str
    kind: str
    store: str = ""
    collection: str = ""
    locator: str = ""
    label: str = ""
    created_us: int = 0
    deleted_us: int | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"id": self.id, "kind": self.kind, "store": self.store, "collection": self.collection,
                "locator": self.locator, "label": self.label, "created_us": self.created_us,
                "deleted_us": self.deleted_us, "attrs": self.attrs}


def _row(r: Sequence[Any]) -> Node:
    return Node(id=r[0], kind=r[1], store=r[2], collection=r[3], locator=r[4], label=r[5],
                created_us=int(r[6]), deleted_us=None if r[7] is None else int(r[7]),
                attrs=orjson.loads(r[8]) if r[8] else {})


def load_or_create_key(path: Path) -> bytes:
    """The lineage subject key (32 random bytes, file mode 0600), created on first use."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_key(path)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key
    if path.stat().st_mode & 0o077:
        raise KeyMaterialError(f"{path}: lineage key must not be readable by group/others (chmod 600)")
    if len(data) != 32:
        raise KeyMaterialError(f"{path}: lineage key must be 32 bytes")
    return data


class LineageStore:
    """The lineage graph. Open with :meth:`open`; thread-unsafe (one per thread/process)."""

    def __init__(self, conn: Any, *, postgres: bool, key: bytes, clock: Any = time.time) -> None:
        self._conn: Any = conn
        self._pg = postgres
        self._key = key
        self._clock = clock
        for stmt in _SCHEMA:
            self._exec(stmt)
        self._commit()

    @classmethod
    def open(cls, url: str, *, key: bytes, clock: Any = time.time) -> LineageStore:
        """``sqlite:///path`` or ``postgresql://...``."""
        if url.startswith("sqlite://"):
            # sqlite:///rel/path or sqlite:////abs/path (the SQLAlchemy convention, as the ledger uses).
            path = url.removeprefix("sqlite:///")
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = sqlite3.connect(path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("BEGIN")
            except sqlite3.Error as exc:
                raise StoreError(f"lineage store {path}: {exc}") from exc
            return cls(conn, postgres=False, key=key, clock=clock)
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - extra installed in CI
            raise StoreError("PostgreSQL lineage store needs the 'postgres' extra") from exc
        try:
            pg_conn = psycopg.connect(url, connect_timeout=5)
        except psycopg.Error as exc:
            raise StoreError(f"lineage store unreachable: {exc}") from exc
        return cls(pg_conn, postgres=True, key=key, clock=clock)

    # -- plumbing -------------------------------------------------------------------------------
    # Queries below are built from module constants and placeholders only (hence the S608 noqa).
    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self._pg:
            sql = sql.replace("?", "%s")
        try:
            return self._conn.execute(sql, params)
        except Exception as exc:
            raise StoreError(f"lineage store: {exc}") from exc

    def _commit(self) -> None:
        if self._pg:
            self._conn.commit()
        else:
            self._conn.execute("COMMIT")
            self._conn.execute("BEGIN")

    def close(self) -> None:
        """Commit and close."""
        try:
            self._commit()
        finally:
            self._conn.close()

    def __enter__(self) -> LineageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subject_key(self, subject_id: str) -> str:
        """The keyed hash a subject is stored under."""
        return hmac.new(self._key, subject_id.encode("utf-8"), hashlib.sha256).hexdigest()

    # -- writing --------------------------------------------------------------------------------
    def record(self, kind: str, *, id: str | None = None, parents: Iterable[str] = (), store: str = "",
               collection: str = "", locator: str = "", label: str = "", subjects: Iterable[str] = (),
               attrs: dict[str, Any] | None = None, commit: bool = True) -> str:
        """Add (or update) a node, link it under ``parents`` and to ``subjects``; return its id."""
        node_id = id or uuid.uuid4().hex
        now_us = int(self._clock() * 1_000_000)
        blob = orjson.dumps(attrs or {}, option=orjson.OPT_SORT_KEYS).decode()
        self._exec(
            "INSERT INTO soc2ai_lineage_nodes (id, kind, store, collection, locator, label, created_us, attrs)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET kind = excluded.kind,"
            " store = excluded.store, collection = excluded.collection, locator = excluded.locator,"
            " label = excluded.label, attrs = excluded.attrs",
            (node_id, kind, store, collection, locator, label, now_us, blob))
        for parent in parents:
            self._exec("INSERT INTO soc2ai_lineage_edges (parent, child) VALUES (?, ?) ON CONFLICT DO NOTHING",
                       (parent, node_id))
        for subject in subjects:
            self._exec("INSERT INTO soc2ai_lineage_subjects (subject_key, node_id) VALUES (?, ?)"
                       " ON CONFLICT DO NOTHING", (self.subject_key(subject), node_id))
        if commit:
            self._commit()
        return node_id

    def commit(self) -> None:
        """Commit records written with ``commit=False``."""
        self._commit()

    def mark_deleted(self, store: str, collection: str, locators: Iterable[str]) -> int:
        """Mark the nodes of physically deleted items (kept so a trace shows the deletion)."""
        now_us = int(self._clock() * 1_000_000)
        n = 0
        for loc in locators:
            cur = self._exec("UPDATE soc2ai_lineage_nodes SET deleted_us = ? WHERE store = ? AND collection = ?"
                             " AND locator = ? AND deleted_us IS NULL", (now_us, store, collection, loc))
            n += max(int(cur.rowcount), 0)
        self._commit()
        return n

    def forget_subject(self, subject_id: str) -> int:
        """Remove the subject's links (the nodes stay, unlinkable to the person); return links removed."""
        cur = self._exec("DELETE FROM soc2ai_lineage_subjects WHERE subject_key = ?",
                         (self.subject_key(subject_id),))
        self._commit()
        return max(int(cur.rowcount), 0)

    # -- reading --------------------------------------------------------------------------------
    def get(self, node_id: str) -> Node | None:
        """One node by id."""
        row = self._exec(f"SELECT {_NODE_COLS} FROM soc2ai_lineage_nodes WHERE id = ?", (node_id,)).fetchone()  # noqa: S608
        return _row(row) if row else None

    def by_locator(self, store: str | None, collection: str, locator: str) -> list[Node]:
        """Nodes naming this physical item (any connector when ``store`` is None)."""
        if store is None:
            rows = self._exec(f"SELECT {_NODE_COLS} FROM soc2ai_lineage_nodes WHERE collection = ? AND locator = ?",  # noqa: S608
                              (collection, locator)).fetchall()
        else:
            rows = self._exec(f"SELECT {_NODE_COLS} FROM soc2ai_lineage_nodes WHERE store = ? AND collection = ?"  # noqa: S608
                              " AND locator = ?", (store, collection, locator)).fetchall()
        return [_row(r) for r in rows]

    def _walk(self, node_id: str, up: bool) -> list[Node]:
        a, b = ("child", "parent") if up else ("parent", "child")
        rows = self._exec(
            f"WITH RECURSIVE walk(id, depth) AS (SELECT ?, 0 UNION SELECT e.{b}, w.depth + 1"  # noqa: S608
            f" FROM soc2ai_lineage_edges e JOIN walk w ON e.{a} = w.id WHERE w.depth < 64)"
            f" SELECT DISTINCT {', '.join('n.' + c.strip() for c in _NODE_COLS.split(','))}"
            " FROM soc2ai_lineage_nodes n JOIN walk w ON n.id = w.id WHERE n.id <> ?",
            (node_id, node_id)).fetchall()
        return [_row(r) for r in rows]

    def ancestors(self, node_id: str) -> list[Node]:
        """Where this came from (all ancestors)."""
        return self._walk(node_id, up=True)

    def descendants(self, node_id: str) -> list[Node]:
        """Where this went (all descendants)."""
        return self._walk(node_id, up=False)

    def edges(self, node_ids: Iterable[str]) -> list[tuple[str, str]]:
        """Edges among the given nodes."""
        ids = list(node_ids)
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        rows = self._exec(f"SELECT parent, child FROM soc2ai_lineage_edges WHERE parent IN ({marks})"  # noqa: S608
                          f" AND child IN ({marks})", (*ids, *ids)).fetchall()
        return [(r[0], r[1]) for r in rows]

    def subject_nodes(self, subject_id: str) -> list[Node]:
        """Nodes the subject owns: linked directly, plus everything derived from them."""
        rows = self._exec(
            "WITH RECURSIVE owned(id, depth) AS (SELECT node_id, 0 FROM soc2ai_lineage_subjects"  # noqa: S608
            " WHERE subject_key = ? UNION SELECT e.child, o.depth + 1 FROM soc2ai_lineage_edges e"
            " JOIN owned o ON e.parent = o.id WHERE o.depth < 64)"
            f" SELECT DISTINCT {', '.join('n.' + c.strip() for c in _NODE_COLS.split(','))}"
            " FROM soc2ai_lineage_nodes n JOIN owned o ON n.id = o.id",
            (self.subject_key(subject_id),)).fetchall()
        return [_row(r) for r in rows]

    def iter_nodes(self, kind: str | None = None) -> Iterator[Node]:
        """All nodes (optionally of one kind)."""
        if kind is None:
            rows = self._exec(f"SELECT {_NODE_COLS} FROM soc2ai_lineage_nodes ORDER BY created_us").fetchall()  # noqa: S608
        else:
            rows = self._exec(f"SELECT {_NODE_COLS} FROM soc2ai_lineage_nodes WHERE kind = ?"  # noqa: S608
                              " ORDER BY created_us", (kind,)).fetchall()
        for r in rows:
            yield _row(r)
