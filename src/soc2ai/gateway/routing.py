"""Model aliases, fallback chains, circuit breakers, and the ``--explain`` text generated from them.

An alias maps to an ordered chain of ``provider:model`` targets. A call tries them in order; a target is
left for the next one on a connection error, a timeout, HTTP 5xx or 429. Each provider has a circuit
breaker: after ``failure_threshold`` consecutive failures it is skipped for ``reset_after_s``, then one
request probes it (half-open); success closes it, failure opens it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from soc2ai.config import secret_from_env
from soc2ai.gateway.settings import GatewaySettings, ProviderSettings

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504}) | frozenset(range(500, 600))


@dataclass(frozen=True, slots=True)
class Target:
    """One hop of a fallback chain, with its request URL prefix and auth headers precomputed."""

    provider: str
    model: str
    settings: ProviderSettings
    headers: tuple[tuple[str, str], ...]
    urls: dict[str, httpx.URL]
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()

    @property
    def label(self) -> str:
        """``provider:model``."""
        return f"{self.provider}:{self.model}"

    def url(self, endpoint: str) -> httpx.URL:
        """Upstream URL for ``chat`` / ``embeddings`` (parsed once: httpx URL parsing is not free)."""
        return self.urls[endpoint]


def _url(s: ProviderSettings, model: str, endpoint: str) -> httpx.URL:
    if s.kind == "azure":
        path = "chat/completions" if endpoint == "chat" else endpoint
        return httpx.URL(f"{s.base_url}/openai/deployments/{model}/{path}?api-version={s.api_version}")
    if s.kind == "anthropic":
        base = s.base_url if s.base_url.endswith("/v1") else s.base_url + "/v1"
        return httpx.URL(f"{base}/messages")
    return httpx.URL(f"{s.base_url}/{'chat/completions' if endpoint == 'chat' else endpoint}")


def _headers(p: ProviderSettings) -> tuple[tuple[str, str], ...]:
    key = secret_from_env(p.api_key_env)
    out = [("content-type", "application/json")]
    if p.kind == "anthropic":
        out.append(("anthropic-version", "2023-06-01"))
        if key:
            out.append(("x-api-key", key))
    elif p.kind == "azure":
        if key:
            out.append(("api-key", key))
    elif key:
        out.append(("authorization", f"Bearer {key}"))
    return tuple(out)


class Breaker:
    """Consecutive-failure circuit breaker for one provider."""

    def __init__(self, threshold: int, reset_after_us: int) -> None:
        self.threshold = threshold
        self.reset_after_us = reset_after_us
        self.failures = 0
        self.opened_us: int | None = None
        self.probing = False

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open``."""
        if self.opened_us is None:
            return "closed"
        return "half-open" if self.probing else "open"

    def allow(self, now_us: int) -> bool:
        """May a request go to this provider now? (Starts a probe when the open period is over.)"""
        if self.opened_us is None:
            return True
        if self.probing or now_us - self.opened_us < self.reset_after_us:
            return False
        self.probing = True
        return True

    def success(self) -> None:
        """Close the breaker."""
        self.failures, self.opened_us, self.probing = 0, None, False

    def failure(self, now_us: int) -> bool:
        """Count a failure; return True when this opened (or re-opened) the breaker."""
        self.failures += 1
        if self.probing or (self.opened_us is None and self.failures >= self.threshold):
            self.opened_us, self.probing = now_us, False
            return True
        return False


class Router:
    """Alias → targets, and a breaker per provider."""

    def __init__(self, settings: GatewaySettings, clock: Callable[[], int]) -> None:
        self.settings = settings
        self.clock = clock
        headers = {name: _headers(p) for name, p in settings.providers.items()}
        self.chains: dict[str, list[Target]] = {}
        for alias, chain in settings.models.items():
            targets = []
            for t in chain:
                provider, _, model = t.partition(":")
                p = settings.providers[provider]
                targets.append(Target(provider, model, p, headers[provider],
                                      {e: _url(p, model, e) for e in ("chat", "embeddings")},
                                      tuple((k.encode(), v.encode()) for k, v in headers[provider])))
            self.chains[alias] = targets
        b = settings.breaker
        self.breakers = {name: Breaker(b.failure_threshold, int(b.reset_after_s * 1_000_000))
                         for name in settings.providers}

    def chain(self, alias: str) -> list[Target] | None:
        """The targets for an alias, or None when the alias is unknown."""
        return self.chains.get(alias)


def explain_order(settings: GatewaySettings, alias: str) -> list[str]:
    """The ``provider:model`` order a request for ``alias`` tries when every earlier target fails."""
    return list(settings.models.get(alias, []))


def explain(settings: GatewaySettings) -> str:
    """Human-readable fallback behaviour generated from the live config (``soc2ai gateway --explain``)."""
    b = settings.breaker
    lines = ["Fallback behaviour (generated from the live configuration)", ""]
    if not settings.models:
        lines.append("No model aliases are configured: every model request is refused with 404.")
    for alias in sorted(settings.models):
        lines.append(f"model {alias!r}:")
        for i, label in enumerate(explain_order(settings, alias), 1):
            provider = label.partition(":")[0]
            p = settings.providers[provider]
            lines.append(f"  {i}. {label}  ({p.kind} at {p.base_url}, timeout {p.timeout_s:g}s, "
                         f"connect timeout {p.connect_timeout_s:g}s)")
    lines += [
        "",
        "A target is abandoned for the next one on: connection error, timeout, HTTP 5xx, HTTP 429.",
        "Any other upstream 4xx is returned to the client as is (retrying elsewhere would not help).",
        f"Circuit breaker per provider: after {b.failure_threshold} consecutive failures the provider is "
        f"skipped for {b.reset_after_s:g}s; then one request probes it (success closes the breaker, "
        "failure re-opens it).",
        "When every target failed or was skipped: HTTP 502 (last upstream error) or 503 (all circuits open), "
        "in the OpenAI error shape.",
        "Streaming: fallback happens only before the first byte reaches the client; a failure mid-stream "
        "ends the stream with an error event.",
        "Every call records the path it took (fallback_path) in the audit ledger.",
    ]
    return "\n".join(lines)
