"""Ledger stores: SQLite (embedded default) and PostgreSQL, behind :class:`Store`."""

from __future__ import annotations

from soc2ai.errors import ConfigError
from soc2ai.ledger.store.interface import TILE_HEIGHT, Head, LeafRow, SealBatch, Store


def open_store(url: str, *, create: bool = True, sqlite_synchronous: str = "full") -> Store:
    """Open the store at ``url`` (``sqlite:///path`` or ``postgresql://...``)."""
    if url.startswith("sqlite://"):
        from soc2ai.ledger.store.sqlite import SQLiteStore

        return SQLiteStore(url, create=create, synchronous=sqlite_synchronous)
    if url.startswith(("postgresql://", "postgres://")):
        from soc2ai.ledger.store.postgres import PostgresStore

        return PostgresStore(url, create=create)
    raise ConfigError("unknown store URL scheme (use sqlite:/// or postgresql://)", field="ledger.store")


__all__ = ["TILE_HEIGHT", "Head", "LeafRow", "SealBatch", "Store", "open_store"]
