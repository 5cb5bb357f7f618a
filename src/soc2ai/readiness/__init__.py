"""``soc2ai check``: the audit-readiness check, one line per control check (CC4.1, CC4.2).

:func:`soc2ai.readiness.runner.run` runs every check in :data:`soc2ai.readiness.checks.CHECKS`, appends
a ``readiness`` record to the ledger and optionally notifies the alert sinks. See docs/monitoring.md.
"""
