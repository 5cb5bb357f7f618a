"""The rules engine: compiled rules + deduplication + suppression windows, over record bodies.

Pure and deterministic: the only clock is the records' ``ts``. ``RuleEngine.evaluate`` is what the
gateway hook, ``alerts watch`` and ``alerts test`` all call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from soc2ai._validation import error_location
from soc2ai.errors import ConfigError
from soc2ai.monitor.rules import US, MalformedRecord, RuleEvaluator, compile_rule, record_kind
from soc2ai.monitor.settings import SEVERITIES, MonitorSettings, RuleSettings, SuppressionSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One alert that fired. ``records`` are the ids of the triggering ledger records."""

    id: str
    rule: str
    kind: str
    severity: str
    response: str
    message: str
    ts: int
    group: str
    records: list[str]
    details: dict[str, Any] = field(default_factory=dict)
    # Triggers of the same rule and group folded into this alert by the dedup window before it.
    repeats: int = 0
    incident_id: str | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (the generic sink payload and the outbox format)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)

    def with_incident(self, incident_id: str | None) -> Alert:
        """A copy linked to an incident."""
        return replace(self, incident_id=incident_id)


def severity_rank(severity: str) -> int:
    """0 for LOW … 3 for CRITICAL."""
    return SEVERITIES.index(severity.upper())


def parse_rules(items: Iterable[dict[str, Any]], *, source: str = "<rules>") -> list[RuleSettings]:
    """Validate rule definitions given as dicts; ConfigError names the rule and the field."""
    out: list[RuleSettings] = []
    for n, item in enumerate(items):
        name = str(item.get("name") or f"#{n}") if isinstance(item, dict) else f"#{n}"
        try:
            out.append(RuleSettings.model_validate(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            # A params check runs on the whole rule; its LocatedError says which parameter (params.window_s).
            where = ".".join(str(p) for p in (f"rules[{name}]", *error_location(err)))
            msg = str(err["msg"]).removeprefix("Value error, ")
            raise ConfigError(msg, file=source, field=where) from exc
    return out


def _alert_id(rule: str, group: str, records: Sequence[str], ts: int) -> str:
    # Deterministic, so replaying a stream (or re-evaluating after a crash) yields the same ids and the
    # outbox deduplicates by file name.
    seed = f"{rule}\x00{group}\x00{records[-1] if records else ''}\x00{ts}".encode()
    return hashlib.sha256(seed).hexdigest()[:32]


class RuleEngine:
    """Evaluate records against rules; apply dedup windows and maintenance suppressions."""

    def __init__(self, rules: Sequence[RuleSettings],
                 suppressions: Sequence[SuppressionSettings] = ()) -> None:
        enabled = [r for r in rules if r.enabled]
        if not enabled:
            # Fail closed: monitoring with nothing to monitor is a misconfiguration, not a pass.
            raise ConfigError("no enabled alert rules", field="monitor.rules")
        self.rules: list[RuleEvaluator] = [compile_rule(r) for r in enabled]
        self._by_kind: dict[str, list[RuleEvaluator]] = {}
        for ev in self.rules:
            for kind in ev.kinds:
                self._by_kind.setdefault(kind, []).append(ev)
        self._suppress = [(frozenset(s.rules), int(s.start.timestamp() * US), int(s.end.timestamp() * US))
                          for s in suppressions]
        self._last: dict[str, int] = {}     # "rule\x1fgroup" -> ts of the last alert
        self._folded: dict[str, int] = {}   # triggers folded since that alert
        self.stats = {"evaluated": 0, "fired": 0, "deduplicated": 0, "suppressed": 0, "errors": 0}
        # The last rule that could not evaluate a record (rule, record id, error); counted in stats.
        self.last_error: str | None = None

    @classmethod
    def from_settings(cls, settings: MonitorSettings) -> RuleEngine:
        """The engine for a ``[monitor]`` section (seed rules included unless disabled)."""
        return cls(settings.effective_rules(), settings.suppressions)

    def _suppressed(self, rule: str, ts: int) -> bool:
        return any((rule in names or "*" in names) and start <= ts < end for names, start, end in self._suppress)

    def evaluate(self, body: dict[str, Any]) -> list[Alert]:
        """Feed one record body (a dict as stored in the ledger); return the alerts it raised."""
        self.stats["evaluated"] += 1
        kind = body.get("kind", "inference")
        try:
            if kind.__class__ is not str:  # checked only off the common path: this runs for every record
                kind = record_kind(body)
        except MalformedRecord as exc:
            # No rule can judge a record whose kind is not a string: counted and reported like a rule's
            # field error (never a TypeError in the caller), with no rule to name.
            self.stats["errors"] += 1
            self.last_error = f"record {body.get('id')!r}: {exc}"
            return []
        rules = self._by_kind.get(kind)
        if not rules:
            return []
        ts = body.get("ts")
        if not isinstance(ts, int):
            return []  # not a ledger record body; nothing to place in time
        out: list[Alert] = []
        for ev in rules:
            try:
                trig = ev.evaluate(body, ts)
            except Exception as exc:
                # One rule choking on a field's shape must not take the other rules' alerts for this
                # record (already decided, dedup state already moved) down with it.
                self.stats["errors"] += 1
                # A malformed record is the user's data error: its message names the field, and the
                # class name would only be noise. Anything else is a bug, where the type name helps.
                detail = str(exc) if isinstance(exc, MalformedRecord) else f"{type(exc).__name__}: {exc}"
                self.last_error = f"rule {ev.name!r} on record {body.get('id')!r}: {detail}"
                continue
            if trig is None:
                continue
            s = ev.settings
            if self._suppress and self._suppressed(s.name, ts):
                self.stats["suppressed"] += 1
                continue
            key = f"{s.name}\x1f{trig.group}"
            last = self._last.get(key)
            if last is not None and ts - last < s.dedup_s * US:
                self._folded[key] = self._folded.get(key, 0) + 1
                self.stats["deduplicated"] += 1
                continue
            self._last[key] = ts
            repeats = self._folded.pop(key, 0)
            self.stats["fired"] += 1
            out.append(Alert(
                id=_alert_id(s.name, trig.group, trig.records, ts), rule=s.name, kind=s.kind,
                severity=s.severity, response=s.response, message=f"{s.name}: {trig.message}", ts=ts,
                group=trig.group, records=trig.records, details=trig.details, repeats=repeats,
                description=s.description,
            ))
        return out

    def state(self) -> dict[str, Any]:
        """JSON-safe engine state: rule windows and baselines plus dedup bookkeeping."""
        return {"rules": {ev.name: ev.state() for ev in self.rules},
                "last": dict(self._last), "folded": dict(self._folded)}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state` (rules no longer configured are ignored)."""
        rules = state.get("rules", {})
        for ev in self.rules:
            if ev.name in rules:
                ev.restore(rules[ev.name])
        self._last = {str(k): int(v) for k, v in state.get("last", {}).items()}
        self._folded = {str(k): int(v) for k, v in state.get("folded", {}).items()}
