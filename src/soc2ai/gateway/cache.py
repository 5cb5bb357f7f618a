"""Optional completion cache (``[gateway.cache]``): SQLite embedded, or Redis.

Entries are keyed by ``sha256(user id, canonical request)`` (a per-user cache: one user's completions are
never served to another), tagged with the ledger ``subject_ref`` and the data classification, and expire
after the TTL of that classification (0 = never cached). Layout, for data-subject requests:

* Redis: ``soc2ai:cache:<hash>`` → JSON ``{"subject_ref", "classification", "created_us", "response"}``
  (with a TTL); ``soc2ai:cache:subject:<subject_ref>`` → set of ``<hash>``.
* SQLite: table ``completion_cache(hash, subject_ref, classification, created_us, expires_us, response)``.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Any, Protocol

import orjson

from soc2ai.errors import ConfigError

PREFIX = "soc2ai:cache:"


def request_hash(user_id: str, request: dict[str, Any]) -> str:
    """The cache key: SHA-256 over the user id and the canonical request (stream flag excluded)."""
    body = {k: v for k, v in request.items() if k not in ("stream", "stream_options", "user")}
    return hashlib.sha256(user_id.encode("utf-8", "surrogatepass") + b"\0"
                          + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


class CompletionCache(Protocol):
    """Get/put serialized completions."""

    async def get(self, key: str, now_us: int) -> bytes | None:
        """The cached response body, if fresh."""
        ...

    async def put(self, key: str, response: bytes, *, subject_ref: str | None, classification: str,
                  ttl_s: int, now_us: int) -> None:
        """Store a response body."""
        ...

    async def close(self) -> None:
        """Release resources."""
        ...


class SqliteCache:
    """Embedded cache file (created 0600)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS completion_cache (hash TEXT PRIMARY KEY, subject_ref TEXT, "
                         "classification TEXT NOT NULL, created_us INTEGER NOT NULL, "
                         "expires_us INTEGER NOT NULL, response BLOB NOT NULL)")
        self._db.execute("CREATE INDEX IF NOT EXISTS completion_cache_subject ON completion_cache(subject_ref)")

    async def get(self, key: str, now_us: int) -> bytes | None:
        """The cached body, if not expired."""
        row = self._db.execute("SELECT response FROM completion_cache WHERE hash=? AND expires_us>?",
                               (key, now_us)).fetchone()
        return None if row is None else bytes(row[0])

    async def put(self, key: str, response: bytes, *, subject_ref: str | None, classification: str,
                  ttl_s: int, now_us: int) -> None:
        """Insert or replace; expired rows are swept on the way."""
        self._db.execute("DELETE FROM completion_cache WHERE expires_us<=?", (now_us,))
        self._db.execute("INSERT OR REPLACE INTO completion_cache VALUES (?,?,?,?,?,?)",
                         (key, subject_ref, classification, now_us, now_us + ttl_s * 1_000_000, response))

    async def close(self) -> None:
        """Close the file."""
        self._db.close()


class RedisCache:
    """Cache in Redis (``redis`` extra)."""

    def __init__(self, url: str) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # pragma: no cover - part of [all]
            raise ConfigError("cache.backend = 'redis' needs the 'redis' extra",
                              field="gateway.cache.backend") from exc
        self._r: Any = aioredis.Redis.from_url(url)

    async def get(self, key: str, now_us: int) -> bytes | None:
        """The cached body (Redis expires entries itself)."""
        raw = await self._r.get(PREFIX + key)
        if raw is None:
            return None
        resp: str = orjson.loads(raw)["response"]
        return resp.encode()

    async def put(self, key: str, response: bytes, *, subject_ref: str | None, classification: str,
                  ttl_s: int, now_us: int) -> None:
        """Store the entry and index it under its subject."""
        value = orjson.dumps({"subject_ref": subject_ref, "classification": classification,
                              "created_us": now_us, "response": response.decode()})
        async with self._r.pipeline(transaction=True) as p:
            p.set(PREFIX + key, value, ex=ttl_s)
            if subject_ref:
                p.sadd(f"{PREFIX}subject:{subject_ref}", key)
                p.expire(f"{PREFIX}subject:{subject_ref}", ttl_s, gt=True)
                p.expire(f"{PREFIX}subject:{subject_ref}", ttl_s, nx=True)
            await p.execute()

    async def close(self) -> None:
        """Close the pool."""
        await self._r.aclose()


def build_cache(backend: str, *, path: Path, redis_url: str) -> CompletionCache | None:
    """The configured cache, or None when off."""
    if backend == "sqlite":
        return SqliteCache(path)
    if backend == "redis":
        return RedisCache(redis_url)
    return None
