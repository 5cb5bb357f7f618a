"""Fixtures for the ledger integration suites: one store URL fixture parametrized over SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from ledger_helpers import PG_URL, STORES, TcpProxy, drop_store, new_pg_schema, store_url_for


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, empty ledger store: SQLite in a temp dir, or a fresh PostgreSQL schema."""
    url = store_url_for(request.param, tmp_path_factory.mktemp("store"))
    yield url
    drop_store(url)


@pytest.fixture
def proxied_pg() -> Iterator[tuple[str, TcpProxy]]:
    """A fresh PostgreSQL schema reached through a TCP proxy the test can take down."""
    url = new_pg_schema()
    host, port = ([*PG_URL.split("@", 1)[-1].split("/", 1)[0].split(":"), "5432"])[:2]
    proxy = TcpProxy((host, int(port)))
    yield proxy.url_for(url), proxy
    proxy.down()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {url.split('search_path%3D', 1)[1]} CASCADE")
