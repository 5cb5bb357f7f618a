"""Fixtures for the ledger integration suites: one store URL fixture parametrized over SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger_helpers import STORES, drop_store, store_url_for


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, empty ledger store: SQLite in a temp dir, or a fresh PostgreSQL schema."""
    url = store_url_for(request.param, tmp_path_factory.mktemp("store"))
    yield url
    drop_store(url)
