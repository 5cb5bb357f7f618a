"""Alert rules on the ledger's record stream, sinks for a SIEM, incidents for HIGH alerts (CC7.2-CC7.4).

Public names (imported lazily so ``import soc2ai.monitor`` stays cheap): :class:`Monitor` (the gateway
hook ``Monitor.observe(body)``), :class:`RuleEngine`, :class:`Alert`, :func:`parse_rules`,
:func:`watch`, :func:`replay`. See docs/monitoring.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Alert", "Monitor", "RuleEngine", "parse_rules", "replay", "watch"]

_WHERE = {
    "Alert": "soc2ai.monitor.engine",
    "RuleEngine": "soc2ai.monitor.engine",
    "parse_rules": "soc2ai.monitor.engine",
    "Monitor": "soc2ai.monitor.monitor",
    "watch": "soc2ai.monitor.watch",
    "replay": "soc2ai.monitor.watch",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'soc2ai.monitor' has no attribute {name!r}")
