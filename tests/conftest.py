"""Shared fixtures: real PostgreSQL and Redis when reachable.

Tests marked ``postgres``/``redis`` skip with a reason when the service is unreachable, except under
``CI=true`` where an unreachable service is a failure (CI is supposed to have started it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_URL = os.environ.get("SOC2AI_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SOC2AI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable(what: str, exc: Exception) -> None:
    msg = f"{what} not reachable ({exc}); set SOC2AI_TEST_PG_URL / SOC2AI_TEST_REDIS_URL"
    if IN_CI:
        pytest.fail(f"CI=true but {msg}")
    pytest.skip(msg)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL with a fresh, empty schema on the search path; dropped afterwards."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - the postgres extra is installed in CI
        _unavailable("psycopg", exc)
        raise
    schema = "t_" + uuid.uuid4().hex[:12]
    try:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        _unavailable("PostgreSQL", exc)
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis URL on a database flushed before and after the test."""
    try:
        import redis
    except ImportError as exc:  # pragma: no cover
        _unavailable("redis-py", exc)
        raise
    url = REDIS_URL.rsplit("/", 1)[0] + "/15"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        _unavailable("Redis", exc)
    yield url
    client.flushdb()
    client.close()
