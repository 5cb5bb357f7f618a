"""Data governance (C1.1, C1.2, P4.2, P4.3, CC6.5): classification at ingestion, retention, lineage,
and data-subject requests across stores.

This package imports nothing heavy at import time (``soc2ai.config`` imports its settings); the public
names below are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soc2ai.data.classify import Classifier, LabelledItem, ingest
    from soc2ai.data.connectors.interface import Connector, Location, Subject
    from soc2ai.data.dsar import Dsar, DsarReport
    from soc2ai.data.lineage import LineageStore

_LAZY = {
    "Classifier": "soc2ai.data.classify",
    "LabelledItem": "soc2ai.data.classify",
    "ingest": "soc2ai.data.classify",
    "Connector": "soc2ai.data.connectors.interface",
    "Location": "soc2ai.data.connectors.interface",
    "Subject": "soc2ai.data.connectors.interface",
    "Dsar": "soc2ai.data.dsar",
    "DsarReport": "soc2ai.data.dsar",
    "LineageStore": "soc2ai.data.lineage",
}

__all__ = ["Classifier", "Connector", "Dsar", "DsarReport", "LabelledItem", "LineageStore", "Location",
           "Subject", "ingest"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'soc2ai.data' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
