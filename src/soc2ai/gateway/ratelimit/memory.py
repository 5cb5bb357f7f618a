"""Rate limits kept in this process's memory (one gateway process)."""

from __future__ import annotations

from soc2ai.gateway.ratelimit.interface import ALLOW, WINDOW_US, RateDecision, estimate, retry_after


class MemoryLimiter:
    """Sliding-window counters per key and limit, in a dict."""

    def __init__(self, requests_per_minute: int, tokens_per_minute: int) -> None:
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        # key -> [window, prev_requests, cur_requests, prev_tokens, cur_tokens]
        self._w: dict[str, list[int]] = {}

    def _slot(self, key_id: str, now_us: int) -> list[int]:
        window = now_us // WINDOW_US
        s = self._w.get(key_id)
        if s is None:
            s = self._w[key_id] = [window, 0, 0, 0, 0]
        elif s[0] != window:
            adjacent = s[0] == window - 1
            s[:] = [window, s[2] if adjacent else 0, 0, s[4] if adjacent else 0, 0]
        return s

    async def check(self, key_id: str, tokens: int, now_us: int) -> RateDecision:
        """Count one request; refuse (without counting) when either limit would be exceeded."""
        s = self._slot(key_id, now_us)
        frac = (now_us % WINDOW_US) / WINDOW_US
        if estimate(s[1], s[2], frac) + 1 > self.rpm:
            return RateDecision(False, "requests", retry_after(s[1], s[2], 1, self.rpm, now_us))
        if estimate(s[3], s[4], frac) + tokens > self.tpm:
            return RateDecision(False, "tokens", retry_after(s[3], s[4], tokens, self.tpm, now_us))
        s[2] += 1
        s[4] += tokens
        return ALLOW

    async def add_tokens(self, key_id: str, tokens: int, now_us: int) -> None:
        """Count tokens learned after the call."""
        self.add_now(key_id, tokens, now_us)

    def add_now(self, key_id: str, tokens: int, now_us: int) -> None:
        """Synchronous :meth:`add_tokens` (memory needs no I/O)."""
        self._slot(key_id, now_us)[4] += tokens

    async def close(self) -> None:
        """Nothing to release."""
