"""Data connectors: one module per store, all behind :class:`~.interface.Connector`.

Nothing is imported here at module import; :func:`open_connector` imports the one module it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from soc2ai.data.connectors.interface import Connector
    from soc2ai.data.settings import ConnectorSettings


def open_connector(settings: ConnectorSettings, *, root: Path) -> Connector:
    """Open the configured store; raises ConnectorError when it cannot be reached."""
    if settings.type == "dataset":
        from soc2ai.data.connectors.dataset import DatasetConnector

        return DatasetConnector(settings, root=root)
    if settings.type == "files":
        from soc2ai.data.connectors.files import FilesConnector

        return FilesConnector(settings, root=root)
    if settings.type == "redis":
        from soc2ai.data.connectors.redis import RedisConnector

        return RedisConnector(settings)
    if settings.type == "postgres":
        from soc2ai.data.connectors.postgres import PostgresConnector

        return PostgresConnector(settings)
    if settings.type == "chroma":
        from soc2ai.data.connectors.chroma import ChromaConnector

        return ChromaConnector(settings, root=root)
    if settings.type == "qdrant":
        from soc2ai.data.connectors.qdrant import QdrantConnector

        return QdrantConnector(settings, root=root)
    if settings.type == "sqlite_cache":
        from soc2ai.data.connectors.sqlite_cache import SqliteCacheConnector

        return SqliteCacheConnector(settings, root=root)
    from soc2ai.data.connectors.lancedb import LanceDBConnector

    return LanceDBConnector(settings, root=root)


__all__ = ["open_connector"]
