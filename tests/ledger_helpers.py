"""Shared helpers for the ledger test suites (unit and integration).

Every log is opened from an explicit :class:`~soc2ai.config.Config` rooted in a temporary directory, so
no test depends on the working directory or on a ``soc2ai.toml`` lying around.
"""

from __future__ import annotations

import os
import random
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from soc2ai.config import Config, parse_config
from soc2ai.ledger import AuditLog
from soc2ai.ledger.keys import generate_keys
from soc2ai.ledger.records import AccessRecord, AlertRecord, ConfigChangeRecord

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def config_for(url: str, base: Path, **ledger: Any) -> Config:
    """A Config whose ledger lives under ``base`` (keys, spool, witness) and whose store is ``url``."""
    lines = ["[project]", 'name = "test"', "[ledger]", f'store = "{url}"', 'keys_dir = "keys"',
             'spool_dir = "spool"', 'witness_dir = "witness"']
    for k, v in ledger.items():
        lines.append(f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {str(v).lower()}")
    return parse_config("\n".join(lines) + "\n", source=str(base / "soc2ai.toml"), root=base)


def write_config(url: str, base: Path) -> Path:
    """Write the same config as :func:`config_for` to ``base/soc2ai.toml`` (for the CLI)."""
    path = base / "soc2ai.toml"
    path.write_text("[project]\nname = \"test\"\n[ledger]\n"
                    f'store = "{url}"\nkeys_dir = "keys"\nspool_dir = "spool"\nwitness_dir = "witness"\n')
    return path


def ensure_keys(base: Path) -> Path:
    """Create the signing and master keys under ``base/keys`` once."""
    keys = base / "keys"
    if not (keys / "signing.key").exists():
        generate_keys(keys, "test")
    return keys


def open_log(url: str, base: Path, **kw: Any) -> AuditLog:
    """Open a log on ``url`` with keys/spool/witness under ``base`` (keys created on first use)."""
    ensure_keys(base)
    return AuditLog.open(config_for(url, base), **kw)


def sqlite_url(base: Path, name: str = "a.db") -> str:
    return f"sqlite:///{base / name}"


def fill(log: AuditLog, n: int, *, seed: int = 0, users: int = 5, max_batch: int = 17) -> list[str]:
    """Append ``n`` mixed records in small flushed batches (many checkpoints); return their ids in order."""
    rng = random.Random(seed)
    ids: list[str] = []
    while len(ids) < n:
        for _ in range(min(rng.randint(1, max_batch), n - len(ids))):
            r = rng.random()
            user = None if rng.random() < 0.15 else f"user-{rng.randrange(users)}"
            if r < 0.7:
                ids.append(log.log_inference(user_id=user, model_id=rng.choice(["gpt-x", "claude-y"]),
                                             prompt=f"prompt {len(ids)} \u00e9\U0001f600",
                                             response=f"response {len(ids)}", latency_us=rng.randrange(10**6),
                                             input_tokens=rng.randrange(500), output_tokens=rng.randrange(500),
                                             params={"temperature": 0.2, "seed": 7}, finish_reason="stop"))
            elif r < 0.8:
                ids.append(log.append(AccessRecord(action="chat", decision="deny", user_id=user, reason="role")))
            elif r < 0.9:
                ids.append(log.append(ConfigChangeRecord(target="prompts/a", action="update", actor="ci")))
            else:
                ids.append(log.append(AlertRecord(rule="r1", severity="high", message="m", user_id=user)))
        log.flush()
    return ids


# -- raw store access, for tampering and inspection -------------------------------------------------


class Raw:
    """A plain DB-API connection to a ledger store with ``?`` placeholders on both engines."""

    def __init__(self, url: str) -> None:
        self.pg = url.startswith("postgres")
        if self.pg:
            self.conn: Any = psycopg.connect(url, autocommit=True)
        else:
            self.conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)

    def q(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        if self.pg:
            sql = sql.replace("?", "%s")
        cur = self.conn.execute(sql, params)
        try:
            return [tuple(r) for r in cur.fetchall()]
        except (sqlite3.Error, psycopg.ProgrammingError):
            return []

    def close(self) -> None:
        self.conn.close()


def clone_store(url: str, base: Path) -> str:
    """A byte-for-byte copy of a (closed or quiescent) ledger store; returns the copy's URL."""
    if url.startswith("sqlite"):
        src = sqlite3.connect(url[len("sqlite:///"):])
        dst_path = base / f"copy-{uuid.uuid4().hex[:8]}.db"
        dst = sqlite3.connect(dst_path)
        src.backup(dst)
        src.close()
        dst.close()
        return f"sqlite:///{dst_path}"
    src_schema = url.split("search_path%3D", 1)[1]
    schema = "c_" + uuid.uuid4().hex[:12]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        for (table,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s",
                                     (src_schema,)).fetchall():
            conn.execute(f"CREATE TABLE {schema}.{table} (LIKE {src_schema}.{table} INCLUDING ALL)")
            conn.execute(f"INSERT INTO {schema}.{table} SELECT * FROM {src_schema}.{table}")
    return url.replace(f"search_path%3D{src_schema}", f"search_path%3D{schema}")


def drop_clone(url: str) -> None:
    """Remove a clone made by :func:`clone_store`."""
    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(url[len("sqlite:///"):] + suffix).unlink(missing_ok=True)
        return
    schema = url.split("search_path%3D", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def env_without_config() -> dict[str, str]:
    """Environment for subprocesses: no inherited soc2ai config overrides."""
    return {k: v for k, v in os.environ.items() if k not in {"SOC2AI_CONFIG", "SOC2AI_STORE"}}


PG_URL = os.environ.get("SOC2AI_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def new_pg_schema() -> str:
    """Create a fresh schema (for module-scoped fixtures, where ``pg_url`` cannot be used); return its URL.

    Skips when PostgreSQL is unreachable, fails under CI=true, like the ``pg_url`` fixture.
    """
    schema = "m_" + uuid.uuid4().hex[:12]
    try:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        msg = f"PostgreSQL not reachable ({exc}); set SOC2AI_TEST_PG_URL"
        if IN_CI:
            pytest.fail(f"CI=true but {msg}")
        pytest.skip(msg)
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


def store_url_for(kind: str, base: Path) -> str:
    """A fresh, empty store URL of the given kind."""
    return sqlite_url(base) if kind == "sqlite" else new_pg_schema()


def drop_store(url: str) -> None:
    """Drop a store made by :func:`store_url_for` (PostgreSQL schema; SQLite files go with tmp dirs)."""
    if url.startswith("postgres"):
        drop_clone(url)


class TcpProxy:
    """A TCP forwarder in front of PostgreSQL that can be taken down (connections cut, port refused).

    Sockets are only ever closed by the thread that owns the connection pair, after both directions have
    stopped: closing an fd another thread is blocked on would let a new connection reuse the number.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        import socket
        import threading

        self._socket = socket
        self._threading = threading
        self.target = target
        self.port = 0
        self._conns: set[Any] = set()
        self._lock = threading.Lock()
        self._listener: Any = None
        self._acceptor: Any = None
        self.up()

    def up(self) -> None:
        if self._acceptor is not None:
            self._acceptor.join()
        s = self._socket.socket()
        s.setsockopt(self._socket.SOL_SOCKET, self._socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.port = s.getsockname()[1]
        self._listener = s
        self._acceptor = self._threading.Thread(target=self._accept, args=(s,), daemon=True)
        self._acceptor.start()

    def down(self) -> None:
        """Refuse new connections and cut every open one."""
        listener, self._listener = self._listener, None
        if listener is not None:
            self._shutdown(listener)
        if self._acceptor is not None:
            self._acceptor.join()
        self.cut()

    def cut(self) -> None:
        """Cut every open connection but keep accepting new ones (like a terminated backend)."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            self._shutdown(c)

    def _shutdown(self, sock: Any) -> None:
        try:
            sock.shutdown(self._socket.SHUT_RDWR)
        except OSError:
            pass

    def _accept(self, listener: Any) -> None:
        try:
            while True:
                try:
                    client, _ = listener.accept()
                except OSError:
                    return
                try:
                    upstream = self._socket.create_connection(self.target)
                except OSError:
                    client.close()
                    continue
                with self._lock:
                    self._conns.update((client, upstream))
                self._threading.Thread(target=self._pair, args=(client, upstream), daemon=True).start()
        finally:
            listener.close()

    def _pair(self, client: Any, upstream: Any) -> None:
        pipes = [self._threading.Thread(target=self._pipe, args=(a, b), daemon=True)
                 for a, b in ((client, upstream), (upstream, client))]
        for t in pipes:
            t.start()
        for t in pipes:
            t.join()
        with self._lock:
            self._conns.difference_update((client, upstream))
        client.close()
        upstream.close()

    def _pipe(self, src: Any, dst: Any) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        self._shutdown(src)
        self._shutdown(dst)

    def url_for(self, url: str) -> str:
        """``url`` rewritten to go through this proxy."""
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


AUDITOR_SCRIPT = Path(__file__).resolve().parents[1] / "auditor" / "verify_proof.py"


def load_auditor(name: str = "auditor_verify_proof") -> Any:
    """``auditor/verify_proof.py`` as a module (it is a standalone script, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, AUDITOR_SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
