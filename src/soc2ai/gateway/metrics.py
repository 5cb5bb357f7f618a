"""Prometheus text-format metrics, kept in plain dicts (no global registry, one instance per app)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Any

BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    inner = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in pairs)
    return "{" + inner + "}"


class Metrics:
    """Counters and one latency histogram."""

    def __init__(self) -> None:
        self.requests: dict[tuple[tuple[str, str], ...], int] = defaultdict(int)
        self.fallbacks: dict[tuple[tuple[str, str], ...], int] = defaultdict(int)
        self.blocks: dict[tuple[tuple[str, str], ...], int] = defaultdict(int)
        self.rate_limited = 0
        self.auth_denied: dict[tuple[tuple[str, str], ...], int] = defaultdict(int)
        self.suspensions = 0
        self.cache_hits = 0
        self.breaker_opened: dict[tuple[tuple[str, str], ...], int] = defaultdict(int)
        self._hist: dict[str, list[int]] = {}
        self._sum: dict[str, float] = defaultdict(float)
        self._count: dict[str, int] = defaultdict(int)

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """One finished request."""
        self.requests[(("endpoint", endpoint), ("status", str(status)))] += 1
        h = self._hist.get(endpoint)
        if h is None:
            h = self._hist[endpoint] = [0] * (len(BUCKETS_S) + 1)
        h[bisect.bisect_left(BUCKETS_S, seconds)] += 1
        self._sum[endpoint] += seconds
        self._count[endpoint] += 1

    def render(self, gauges: dict[str, tuple[str, float]]) -> str:
        """The exposition text; ``gauges`` maps name -> (help, value) for point-in-time values."""
        out: list[str] = []

        def counter(name: str, help_: str, series: dict[tuple[tuple[str, str], ...], int] | int) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} counter")
            if isinstance(series, int):
                out.append(f"{name} {series}")
            else:
                out.extend(f"{name}{_labels(k)} {v}" for k, v in sorted(series.items()))

        counter("soc2ai_gateway_requests_total", "Requests answered, by endpoint and status.", self.requests)
        counter("soc2ai_gateway_fallbacks_total", "Upstream targets abandoned for the next one.", self.fallbacks)
        counter("soc2ai_gateway_blocked_total", "Requests or responses blocked by screening.", self.blocks)
        counter("soc2ai_gateway_rate_limited_total", "Requests refused by rate limits.", self.rate_limited)
        counter("soc2ai_gateway_auth_denied_total", "Requests refused by authentication/authorisation.",
                self.auth_denied)
        counter("soc2ai_gateway_suspensions_total", "API keys suspended by abuse detection.", self.suspensions)
        counter("soc2ai_gateway_cache_hits_total", "Completions served from the cache.", self.cache_hits)
        counter("soc2ai_gateway_breaker_opened_total", "Circuit breakers opened, by provider.",
                self.breaker_opened)
        name = "soc2ai_gateway_request_duration_seconds"
        out += [f"# HELP {name} Time from request to response end, by endpoint.", f"# TYPE {name} histogram"]
        for endpoint, h in sorted(self._hist.items()):
            cum = 0
            for le, n in zip((*map(repr, BUCKETS_S), "+Inf"), h, strict=True):
                cum += n
                out.append(f'{name}_bucket{{endpoint="{endpoint}",le="{le}"}} {cum}')
            out.append(f'{name}_sum{{endpoint="{endpoint}"}} {self._sum[endpoint]!r}')
            out.append(f'{name}_count{{endpoint="{endpoint}"}} {self._count[endpoint]}')
        # A gauge name may carry labels (``name{provider="x"}``): the HELP and TYPE lines name the family
        # only, once, or a Prometheus scrape rejects the whole exposition.
        family_seen: set[str] = set()
        for gname, (help_, value) in sorted(gauges.items()):
            family = gname.split("{", 1)[0]
            if family not in family_seen:
                family_seen.add(family)
                out += [f"# HELP {family} {help_}", f"# TYPE {family} gauge"]
            out.append(f"{gname} {value!r}")
        return "\n".join(out) + "\n"


def ledger_gauges(stats: dict[str, Any]) -> dict[str, tuple[str, float]]:
    """Gauges from ``AuditLog.stats()``: queue depth, spool size, ledger size, caller errors."""
    def num(key: str) -> float:
        v = stats.get(key)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0

    return {
        "soc2ai_ledger_queue_depth": ("Audit records waiting for the sealer.", num("queue_depth")),
        "soc2ai_ledger_spool_pending": ("Audit records in the dead-letter spool.", num("spool_pending")),
        "soc2ai_ledger_size": ("Durable records in the ledger.", num("size")),
        "soc2ai_ledger_caller_errors": ("Audit records that could not be queued.", num("caller_errors")),
        "soc2ai_ledger_degraded": ("1 while the ledger store is failing.", float(bool(stats.get("degraded")))),
    }
