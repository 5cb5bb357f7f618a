"""``Monitor``: rules engine + ledger alert records + incidents + sink dispatch.

The gateway calls :meth:`Monitor.observe` with each ledger record body it writes; ``soc2ai alerts
watch`` calls it with the bodies it reads back from the ledger. For every alert, in this order:

1. HIGH (``incident_min_severity``) alerts and ``open_incident`` rules open an incident in the
   governance incident register, linking the triggering records;
2. an :class:`~soc2ai.ledger.records.AlertRecord` is appended to the ledger (with the incident id);
3. the alert is written to the durable outbox of every routed sink (delivery happens on sink threads).

``observe`` never raises into its caller: a failure is counted and logged, and the alert is still
delivered with what could be done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from soc2ai.monitor.engine import Alert, RuleEngine, severity_rank
from soc2ai.monitor.outbox import Dispatcher, Outbox
from soc2ai.monitor.settings import MonitorSettings, SinkSettings

if TYPE_CHECKING:
    from soc2ai.config import Config
    from soc2ai.monitor.sinks.interface import Sink

logger = logging.getLogger("soc2ai.monitor")

IncidentOpener = Callable[[Alert], str | None]
_CONTENT = frozenset({"prompt", "response", "user_id", "request_id"})


def governance_incidents(config: Config) -> IncidentOpener:
    """Open incidents in the governance incident register (``<registers_dir>/incidents``)."""

    def open_incident(alert: Alert) -> str | None:
        from soc2ai.governance.incidents import IncidentRegister

        register = IncidentRegister(config.path(config.governance.registers_dir) / "incidents",
                                    sla_hours=config.governance.incident_sla_hours)
        incident = register.open(
            title=f"[{alert.severity}] {alert.rule}: {alert.description or alert.kind}",
            severity=alert.severity.lower(), source=f"soc2ai.monitor/{alert.rule}",
            description=alert.message, records=list(alert.records), actor="soc2ai.monitor")
        return incident.id

    return open_incident


def _router(sinks: Sequence[SinkSettings], rules: dict[str, list[str]]) -> Callable[[dict[str, Any]], list[str]]:
    """Send an alert to the sinks its rule names, else to every sink whose ``min_severity`` it reaches."""
    floor = {s.name: severity_rank(s.min_severity) for s in sinks if s.enabled}

    def route(alert: dict[str, Any]) -> list[str]:
        named = rules.get(alert["rule"])
        if named:
            return [n for n in named if n in floor]
        rank = severity_rank(alert["severity"])
        return [n for n in floor if rank >= floor[n]]

    return route


class Monitor:
    """Evaluate records, record alerts, open incidents, dispatch to sinks."""

    def __init__(self, engine: RuleEngine, *, dispatcher: Dispatcher | None = None, log: Any = None,
                 open_incident: IncidentOpener | None = None, incident_min_severity: str = "HIGH") -> None:
        self.engine = engine
        self.dispatcher = dispatcher
        self.log = log
        self.open_incident = open_incident
        self.incident_floor = severity_rank(incident_min_severity)
        self.errors = 0
        self.outbox_failures = 0  # alerts that could not be queued for the sinks (watch stops on them)
        self.last_error: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Config, *, log: Any = None, sinks: Iterable[Sink] | None = None,
                    open_incident: IncidentOpener | None = None, start: bool = True,
                    sink_overrides: dict[str, dict[str, Any]] | None = None) -> Monitor:
        """A monitor for ``config``: its rules, its sinks (or ``sinks``), its outbox, governance incidents.

        ``log`` is an open (writable) ``AuditLog`` for alert records; without it alerts are not recorded.
        """
        from soc2ai.monitor.sinks import build_sink

        ms: MonitorSettings = config.monitor
        engine = RuleEngine.from_settings(ms)
        if sinks is None:
            overrides = sink_overrides or {}
            sinks = [build_sink(s, config, **overrides.get(s.name, {})) for s in ms.sinks if s.enabled]
        sink_list = list(sinks)
        known = {s.name for s in ms.sinks}
        extra = [SinkSettings(name=s.name, type="jsonl", path="-") for s in sink_list if s.name not in known]
        route = _router([*ms.sinks, *extra], {r.name: r.sinks for r in ms.effective_rules() if r.sinks})
        dispatcher = Dispatcher(Outbox(config.path(ms.outbox_dir)), sink_list, route=route,
                                retry_min_s=ms.retry_min_s, retry_max_s=ms.retry_max_s)
        if start:
            dispatcher.start()
        return cls(engine, dispatcher=dispatcher, log=log,
                   open_incident=open_incident or governance_incidents(config),
                   incident_min_severity=ms.incident_min_severity)

    def observe(self, body: dict[str, Any]) -> list[Alert]:
        """Evaluate one ledger record body; handle and return the alerts it raised. Never raises."""
        try:
            with self._lock:
                errors = self.engine.stats["errors"]
                alerts = self.engine.evaluate(body)
                rule_error = self.engine.last_error if self.engine.stats["errors"] != errors else None
        except Exception as exc:  # a bad record must not take the gateway down
            self._failed("evaluate", exc)
            return []
        if rule_error is not None:  # the other rules' alerts still go out below
            self._error(f"evaluate: {rule_error}")
        return [self.handle(a) for a in alerts] if alerts else alerts

    def observe_inference(self, request_id: str, *, ts: int | None = None, **fields: Any) -> list[Alert]:
        """Observe a model call from the keyword arguments given to ``AuditLog.log_inference``.

        For the gateway, which hands the ledger keywords rather than a body: call it right after
        ``rid = log.log_inference(**kw)`` as ``monitor.observe_inference(rid, **kw)``. Content
        (``prompt``, ``response``) and ``user_id`` are dropped here, never kept or evaluated.
        """
        from soc2ai.ledger.canonical import to_jsonable

        body: dict[str, Any] = {"kind": "inference", "id": request_id,
                                "ts": ts if ts is not None else time.time_ns() // 1000}
        for key, value in fields.items():
            if key not in _CONTENT:
                body["model" if key == "model_id" else key] = value
        try:
            body = to_jsonable(body)
        except Exception as exc:
            self._failed("observe_inference", exc)
            return []
        return self.observe(body)

    def handle(self, alert: Alert) -> Alert:
        """Incident, ledger record, outbox: for one alert (also used for readiness notifications)."""
        if self.open_incident is not None and (
                severity_rank(alert.severity) >= self.incident_floor or alert.response == "open_incident"):
            try:
                alert = alert.with_incident(self.open_incident(alert))
            except Exception as exc:  # the alert still goes out; the failure is visible in stats
                self._failed(f"incident for {alert.rule}", exc)
        if self.log is not None:
            try:
                self.log.append(alert_record(alert))
            except Exception as exc:
                self._failed(f"ledger append for {alert.rule}", exc)
        if self.dispatcher is not None:
            try:
                self.dispatcher.submit(alert.to_dict())
            except Exception as exc:
                self.outbox_failures += 1
                self._failed(f"outbox for {alert.rule}", exc)
        return alert

    def _failed(self, what: str, exc: Exception) -> None:
        self._error(f"{what}: {type(exc).__name__}: {exc}")

    def _error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        logger.error("monitor: %s", message)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for every sink's outbox to drain."""
        return self.dispatcher.flush(timeout) if self.dispatcher is not None else True

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what can be delivered within ``timeout`` and stop the sink threads."""
        if self.dispatcher is not None:
            self.dispatcher.close(timeout)


def alert_record(alert: Alert) -> Any:
    """The ledger record of an alert."""
    from soc2ai.ledger.records import AlertRecord

    return AlertRecord(rule=alert.rule, severity=alert.severity, message=alert.message,
                       response=alert.response, records=list(alert.records), incident_id=alert.incident_id,
                       attrs={"alert_id": alert.id, "kind": alert.kind, "group": alert.group,
                              "trigger_ts": alert.ts, "repeats": alert.repeats, "details": alert.details})
