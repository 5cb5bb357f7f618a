"""The rate-limiter protocol and the sliding-window arithmetic both backends share.

A sliding window counter: the current minute's count plus the previous minute's count weighted by how
much of it still overlaps the last 60 s. O(1) memory per key, one Redis round trip per request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

WINDOW_US = 60_000_000


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Allowed or not; when not, which limit and how long to wait."""

    allowed: bool
    limit: str = ""            # "requests" | "tokens"
    retry_after_s: int = 0


ALLOW = RateDecision(True)


def estimate(prev: int, cur: int, frac: float) -> float:
    """Requests (or tokens) seen in the last window: ``prev`` weighted by the overlap, plus ``cur``."""
    return prev * (1.0 - frac) + cur


def retry_after(prev: int, cur: int, cost: int, limit: int, now_us: int) -> int:
    """Seconds until ``cost`` more fits under ``limit`` (at least 1)."""
    frac = (now_us % WINDOW_US) / WINDOW_US
    room = limit - cur - cost
    if room >= 0 and prev > 0:
        # Within this window: need prev * (1 - f') + cur + cost <= limit.
        return max(1, math.ceil((1.0 - room / prev - frac) * WINDOW_US / 1e6))
    # The current window alone is full: it becomes the previous one and decays.
    wait = (1.0 - frac) * WINDOW_US
    if cur > 0:
        wait += max(0.0, 1.0 - (limit - cost) / cur) * WINDOW_US
    return max(1, math.ceil(wait / 1e6))


class RateLimiter(Protocol):
    """Checks and counts one request per call; tokens are added once they are known."""

    async def check(self, key_id: str, tokens: int, now_us: int) -> RateDecision:
        """Count one request with ``tokens`` estimated; say whether it is within both limits."""
        ...

    async def add_tokens(self, key_id: str, tokens: int, now_us: int) -> None:
        """Add tokens learned after the call (output tokens)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
