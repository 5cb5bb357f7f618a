"""Compiled alert rules: one small evaluator per kind, fed ledger record bodies in order.

Time comes from the records (``ts``, integer microseconds), never from a clock, so replaying the same
stream fires the same alerts. Each evaluator keeps only O(groups) state and does O(1) work per record.
Evaluators return a :class:`Trigger`; deduplication and suppression happen in :mod:`.engine`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from soc2ai.monitor.settings import (
    CountParams,
    DetectorParams,
    ErrorRateParams,
    RuleSettings,
    VolumeParams,
)

US = 1_000_000
MAX_LINKED = 20  # triggering record ids linked to one alert (evidence sample, not the population)


P = TypeVar("P", bound=BaseModel)


def _typed(settings: RuleSettings, cls: type[P]) -> P:
    p = settings.typed_params()
    if not isinstance(p, cls):  # settings.kind and the evaluator class disagree: a programming error
        raise TypeError(f"rule {settings.name!r}: expected {cls.__name__}")
    return p


@dataclass(slots=True)
class Trigger:
    """What a rule saw: the group it concerns, the records behind it, a PII-free message, details."""

    group: str
    records: list[str]
    message: str
    details: dict[str, Any] = field(default_factory=dict)


class MalformedRecord(ValueError):
    """A record field of a shape no rule can judge (``scans: [1]``, ``output_tokens: "lots"``).

    Raised instead of whatever Python error the shape would cause, so the engine's report (and
    ``soc2ai alerts test``) names the field and what was expected. Records come from any
    ``log_inference`` caller, so their fields are checked where a rule reads them. The engine shows
    the message alone ("rule 'x' on record 'r2': field scans[0]: ..."): it is a data error, not a bug.
    """


def _shape_error(where: str, expected: str, value: object) -> MalformedRecord:
    return MalformedRecord(f"field {where}: expected {expected}, got {type(value).__name__}")


def record_kind(body: dict[str, Any]) -> str:
    """The record's ``kind`` (absent = ``inference``), which selects the rules that see it.

    Checked before it is used as a dict key: a list there would raise an unhashable-type TypeError.
    """
    kind = body.get("kind", "inference")
    if not isinstance(kind, str):
        raise _shape_error("kind", "a string", kind)
    return kind


# These run for every record each rule reads (the monitor evaluates ~300 k records/s on one core): the
# checks are plain type tests, and an error's message (an f-string naming the field) is built only when
# one fails.
_NO_ITEMS: list[Any] = []


def record_list(value: object, where: str) -> list[Any]:
    """A list field (``scans``, ``fallback_path``); absent or null is empty. A string is refused: iterated,
    it would be judged character by character."""
    if value.__class__ is list:
        return value
    if value is None:
        return _NO_ITEMS
    if not isinstance(value, list):
        raise _shape_error(where, "a list", value)
    return value


def _scan_text(scan: dict[str, Any], key: str, i: int) -> str | None:
    """A scan's string field compared with rule parameters (``stage``, ``scanner``, ``decision``)."""
    value = scan.get(key)
    if value is not None and value.__class__ is not str and not isinstance(value, str):
        raise _shape_error(f"scans[{i}].{key}", "a string", value)
    return value


def record_scans(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``scans`` field: scanner results, each an object."""
    scans = record_list(body.get("scans"), "scans")
    for i, scan in enumerate(scans):
        if scan.__class__ is not dict and not isinstance(scan, dict):
            raise _shape_error(f"scans[{i}]", "an object", scan)
    return scans


def record_tokens(body: dict[str, Any], name: str) -> int:
    """A token count; a numeric string (``"120"``) counts as the number, absent or null as 0."""
    value = body.get(name)
    if value.__class__ is int:  # the common case (not bool: its class is bool)
        return int(value)
    if not value:
        return 0
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    number = as_int(value)
    if number is None:
        raise _shape_error(name, "a number of tokens", value)
    return number


def group_of(body: dict[str, Any], by: str) -> str:
    """The grouping value of a record (API key, subject ref, model, tenant or provider)."""
    if by == "none":
        return "*"
    if by == "key":
        value = body.get("key_id") or body.get("subject_ref")
    elif by == "user":
        value = body.get("subject_ref")
    elif by == "provider":
        path = body.get("fallback_path")
        if path.__class__ is not list:
            path = record_list(path, "fallback_path")
        value = provider_of_hop(path[0]) if path else body.get("provider")
    else:
        value = body.get(by)
    return str(value) if value is not None else "-"


def provider_of_hop(hop: object) -> str:
    """The provider of one ``fallback_path`` hop.

    The gateway writes hops as ``provider:model=outcome`` (``openai:gpt-4o=502``, ``local:llama3.1:8b=200``,
    ``cache=hit``); grouping by the whole hop would split one provider's calls by model and outcome, so
    its failures and successes never met in one error rate. A bare provider name is kept as is.
    """
    return str(hop).partition(":")[0].partition("=")[0]


def as_int(value: object) -> int | None:
    """An integer field that some writers store as a string (``"502"``); None when it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


class RuleEvaluator:
    """Base: the compiled form of one :class:`RuleSettings`."""

    kinds: frozenset[str] = frozenset({"inference"})

    def __init__(self, settings: RuleSettings) -> None:
        self.settings = settings
        self.name = settings.name

    def evaluate(self, body: dict[str, Any], ts: int) -> Trigger | None:
        """Feed one record; return a trigger when the condition holds."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """JSON-safe state (windows, baselines) so a restarted watcher continues where it stopped."""
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Load what :meth:`state` returned."""


class DetectorRule(RuleEvaluator):
    """A scanner finding type at a stage (record field ``scans``)."""

    def __init__(self, settings: RuleSettings) -> None:
        super().__init__(settings)
        p = _typed(settings, DetectorParams)
        self.stage = None if p.stage == "any" else p.stage
        self.any_type = "*" in p.types
        self.types = frozenset(t for t in p.types if not t.endswith("*"))
        # "MODERATION*" matches every type with that prefix (scanners refine types with suffixes).
        self.prefixes = tuple(t[:-1] for t in p.types if t.endswith("*") and t != "*")
        self.scanners = frozenset(p.scanners)
        self.decisions = frozenset(p.decisions)
        self.group_by = p.group_by

    def evaluate(self, body: dict[str, Any], ts: int) -> Trigger | None:
        scans = body.get("scans")
        if not scans and (scans is None or scans.__class__ is list):
            return None  # most records: nothing scanned or nothing found
        for i, scan in enumerate(record_scans(body)):
            if self.stage is not None and _scan_text(scan, "stage", i) != self.stage:
                continue
            if self.scanners and _scan_text(scan, "scanner", i) not in self.scanners:
                continue
            if self.decisions and _scan_text(scan, "decision", i) not in self.decisions:
                continue
            types = scan.get("types")
            if types.__class__ is not list:
                types = record_list(types, f"scans[{i}].types") if types is not None else _NO_ITEMS
            for j, t in enumerate(types):
                if t.__class__ is not str and not isinstance(t, str):
                    raise _shape_error(f"scans[{i}].types[{j}]", "a string", t)
            if self.any_type:
                hit = sorted(types)
            else:
                hit = sorted(t for t in types if t in self.types or (self.prefixes and t.startswith(self.prefixes)))
            if not hit:
                continue
            return Trigger(
                group=group_of(body, self.group_by),
                records=[str(body.get("id"))],
                message=(f"{', '.join(hit)} at stage {scan.get('stage')} "
                         f"(scanner {scan.get('scanner')}, decision {scan.get('decision')})"),
                details={"types": hit, "stage": scan.get("stage"), "scanner": scan.get("scanner"),
                         "decision": scan.get("decision")},
            )
        return None


class _VolumeGroup:
    __slots__ = ("bucket", "fired", "history", "hsum", "ids", "value")

    def __init__(self, bucket: int, maxlen: int) -> None:
        self.bucket = bucket
        self.value = 0
        self.history: deque[int] = deque(maxlen=maxlen)
        self.hsum = 0
        self.fired = -1
        self.ids: deque[str] = deque(maxlen=MAX_LINKED)


class VolumeRule(RuleEvaluator):
    """Tokens/requests per group per window against the mean of the trailing windows."""

    def __init__(self, settings: RuleSettings) -> None:
        super().__init__(settings)
        p = _typed(settings, VolumeParams)
        self.p = p
        self.window_us = p.window_s * US
        self.groups: dict[str, _VolumeGroup] = {}

    def _amount(self, body: dict[str, Any]) -> int:
        metric = self.p.metric
        if metric == "requests":
            return 1
        if metric == "tokens":
            return record_tokens(body, "input_tokens") + record_tokens(body, "output_tokens")
        return record_tokens(body, metric)

    def _roll(self, g: _VolumeGroup, bucket: int) -> None:
        # Close the current window and any empty ones skipped since (they count as zero traffic).
        closing = [g.value] + [0] * min(bucket - g.bucket - 1, self.p.baseline_windows)
        for v in closing:
            if len(g.history) == g.history.maxlen:
                g.hsum -= g.history[0]
            g.history.append(v)
            g.hsum += v
        g.bucket, g.value = bucket, 0
        g.ids.clear()

    def evaluate(self, body: dict[str, Any], ts: int) -> Trigger | None:
        bucket = ts // self.window_us
        key = group_of(body, self.p.group_by)
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = _VolumeGroup(bucket, self.p.baseline_windows)
        elif bucket > g.bucket:
            self._roll(g, bucket)
        elif bucket < g.bucket:
            return None  # a late record of a closed window: counted nowhere rather than in the wrong one
        g.value += self._amount(body)
        g.ids.append(str(body.get("id")))
        p = self.p
        if g.fired == bucket or g.value < p.min_volume or len(g.history) < p.min_history:
            return None
        baseline = g.hsum / len(g.history)
        if g.value <= p.multiplier * baseline:
            return None
        g.fired = bucket
        ratio = g.value / baseline if baseline else None
        times = f"{ratio:.1f}x" if ratio is not None else "above zero"
        return Trigger(
            group=key,
            records=list(g.ids),
            message=(f"{p.metric} {g.value} in {p.window_s}s for {p.group_by} {key} is {times} "
                     f"the trailing baseline {baseline:.0f} (threshold {p.multiplier}x, "
                     f"min {p.min_volume})"),
            details={"metric": p.metric, "value": g.value, "baseline": round(baseline),
                     "window_start_us": bucket * self.window_us, "window_s": p.window_s},
        )

    def state(self) -> dict[str, Any]:
        # The window's record ids too: without them an alert after a restart links only the records
        # seen since, not all those behind the total it reports.
        return {k: [g.bucket, g.value, list(g.history), g.fired, list(g.ids)] for k, g in self.groups.items()}

    def restore(self, state: dict[str, Any]) -> None:
        for key, saved in state.items():
            bucket, value, history, fired = saved[:4]
            g = _VolumeGroup(int(bucket), self.p.baseline_windows)
            g.value, g.fired = int(value), int(fired)
            for v in history:
                g.history.append(int(v))
            g.hsum = sum(g.history)
            for rid in saved[4] if len(saved) > 4 else ():  # state files written before ids were kept
                g.ids.append(str(rid))
            self.groups[key] = g


class _RateGroup:
    __slots__ = ("buckets", "errors", "ids", "total")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()  # [sub-bucket, calls, errors]
        self.total = 0
        self.errors = 0
        self.ids: deque[tuple[int, str]] = deque(maxlen=MAX_LINKED)


class ErrorRateRule(RuleEvaluator):
    """Share of failing calls in a sliding window (ten sub-buckets, so O(1) per record)."""

    def __init__(self, settings: RuleSettings) -> None:
        super().__init__(settings)
        p = _typed(settings, ErrorRateParams)
        self.p = p
        self.sub_us = max(p.window_s * US // 10, 1)
        self.nsub = (p.window_s * US + self.sub_us - 1) // self.sub_us
        self.sig_status = "status" in p.signals
        self.sig_error = "error" in p.signals
        self.sig_fallback = "fallback" in p.signals
        self.sig_block = "block" in p.signals
        self.groups: dict[str, _RateGroup] = {}

    def _failed(self, body: dict[str, Any]) -> bool:
        if self.sig_status:
            # log_inference stores string extras as given, so "502" must count like 502.
            status = as_int(body.get("status"))
            if status is not None and status >= 500:
                return True
        if self.sig_error and body.get("error"):
            return True
        if self.sig_fallback:
            path = body.get("fallback_path")
            if len(path if path.__class__ is list else record_list(path, "fallback_path")) > 1:
                return True
        if self.sig_block:
            scans = body.get("scans")
            if not scans and (scans is None or scans.__class__ is list):
                return False  # as in DetectorRule.evaluate: the common case without a call
            return any(s.get("decision") == "block" for s in record_scans(body))
        return False

    def evaluate(self, body: dict[str, Any], ts: int) -> Trigger | None:
        key = group_of(body, self.p.group_by)
        if key == "-" and self.p.group_by == "provider":
            # Refused before any provider was called (auth, policy block, rate limit): not a provider's
            # error, and a burst of blocked injections must not page as one.
            return None
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = _RateGroup()
        sub = ts // self.sub_us
        buckets = g.buckets
        while buckets and buckets[0][0] <= sub - self.nsub:
            _, calls, errs = buckets.popleft()
            g.total -= calls
            g.errors -= errs
        failed = self._failed(body)
        if buckets and buckets[-1][0] >= sub:
            last = buckets[-1]  # same (or, for a late record, a newer) sub-bucket
        else:
            last = [sub, 0, 0]
            buckets.append(last)
        last[1] += 1
        g.total += 1
        if not failed:
            return None
        last[2] += 1
        g.errors += 1
        g.ids.append((ts, str(body.get("id"))))
        p = self.p
        if g.total < p.min_requests or g.errors <= p.threshold * g.total:
            return None
        horizon = ts - p.window_s * US
        rate = g.errors / g.total
        return Trigger(
            group=key,
            records=[rid for t, rid in g.ids if t > horizon],
            message=(f"error rate {g.errors}/{g.total} ({rate:.1%}) over {p.window_s}s for "
                     f"{p.group_by} {key} (threshold {p.threshold:.1%})"),
            details={"errors": g.errors, "calls": g.total, "rate_ppm": round(rate * 1_000_000),
                     "window_s": p.window_s},
        )

    def state(self) -> dict[str, Any]:
        return {k: [list(map(list, g.buckets)), [list(x) for x in g.ids]] for k, g in self.groups.items()}

    def restore(self, state: dict[str, Any]) -> None:
        for key, (buckets, ids) in state.items():
            g = _RateGroup()
            for b in buckets:
                g.buckets.append([int(b[0]), int(b[1]), int(b[2])])
                g.total += int(b[1])
                g.errors += int(b[2])
            for t, rid in ids:
                g.ids.append((int(t), str(rid)))
            self.groups[key] = g


class CountRule(RuleEvaluator):
    """``threshold`` matching records of a kind within ``window_s`` (per group)."""

    def __init__(self, settings: RuleSettings) -> None:
        super().__init__(settings)
        p = _typed(settings, CountParams)
        self.p = p
        self.kinds = frozenset({p.record_kind})
        self.match = list(p.match.items())
        self.window_us = p.window_s * US
        self.groups: dict[str, deque[tuple[int, str]]] = {}

    def evaluate(self, body: dict[str, Any], ts: int) -> Trigger | None:
        for k, v in self.match:
            if body.get(k) != v:
                return None
        key = group_of(body, self.p.group_by)
        dq = self.groups.get(key)
        if dq is None:
            dq = self.groups[key] = deque(maxlen=self.p.threshold)
        dq.append((ts, str(body.get("id"))))
        if len(dq) < self.p.threshold or ts - dq[0][0] >= self.window_us:
            return None
        records = [rid for _, rid in dq][-MAX_LINKED:]
        dq.clear()  # the next alert needs a fresh run of `threshold` records
        return Trigger(
            group=key,
            records=records,
            message=(f"{self.p.threshold} {self.p.record_kind} records matching "
                     f"{dict(self.match)} within {self.p.window_s}s for {self.p.group_by} {key}"),
            details={"count": self.p.threshold, "window_s": self.p.window_s},
        )

    def state(self) -> dict[str, Any]:
        return {k: [list(x) for x in dq] for k, dq in self.groups.items()}

    def restore(self, state: dict[str, Any]) -> None:
        for key, items in state.items():
            dq: deque[tuple[int, str]] = deque(maxlen=self.p.threshold)
            for t, rid in items:
                dq.append((int(t), str(rid)))
            self.groups[key] = dq


_BY_KIND: dict[str, type[RuleEvaluator]] = {
    "detector": DetectorRule,
    "volume": VolumeRule,
    "error_rate": ErrorRateRule,
    "count": CountRule,
}


def compile_rule(settings: RuleSettings) -> RuleEvaluator:
    """The evaluator for one rule."""
    return _BY_KIND[settings.kind](settings)
