"""Rate limits in Redis, shared by every gateway process pointing at the same server.

Keys: ``soc2ai:rl:<key_id>:<r|t>:<window>`` (integer counters, expire after two windows). One Lua script
checks both limits and counts atomically, so concurrent processes cannot both take the last slot.
"""

from __future__ import annotations

from typing import Any

from soc2ai.errors import ConfigError
from soc2ai.gateway.ratelimit.interface import ALLOW, WINDOW_US, RateDecision, retry_after

_CHECK = """
local pr = tonumber(redis.call('GET', KEYS[1]) or '0')
local cr = tonumber(redis.call('GET', KEYS[2]) or '0')
local pt = tonumber(redis.call('GET', KEYS[3]) or '0')
local ct = tonumber(redis.call('GET', KEYS[4]) or '0')
local frac = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
if pr * (1 - frac) + cr + 1 > tonumber(ARGV[3]) then return {0, pr, cr} end
if pt * (1 - frac) + ct + tokens > tonumber(ARGV[4]) then return {1, pt, ct} end
redis.call('INCR', KEYS[2]); redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('INCRBY', KEYS[4], tokens); redis.call('PEXPIRE', KEYS[4], ARGV[5])
return {2, 0, 0}
"""


class RedisLimiter:
    """Sliding-window counters in Redis (``redis`` extra)."""

    def __init__(self, url: str, requests_per_minute: int, tokens_per_minute: int) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # pragma: no cover - the redis extra is part of [all]
            raise ConfigError("rate_limit.backend = 'redis' needs the 'redis' extra: "
                              "pip install 'soc2ai[redis]'", field="gateway.rate_limit.backend") from exc
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        self._r: Any = aioredis.Redis.from_url(url)
        self._script: Any = self._r.register_script(_CHECK)

    @staticmethod
    def _keys(key_id: str, now_us: int) -> list[str]:
        w = now_us // WINDOW_US
        base = f"soc2ai:rl:{key_id}:"
        return [f"{base}r:{w - 1}", f"{base}r:{w}", f"{base}t:{w - 1}", f"{base}t:{w}"]

    async def check(self, key_id: str, tokens: int, now_us: int) -> RateDecision:
        """Check and count atomically in Redis."""
        frac = (now_us % WINDOW_US) / WINDOW_US
        verdict, prev, cur = await self._script(keys=self._keys(key_id, now_us),
                                                args=[repr(frac), tokens, self.rpm, self.tpm, 2 * WINDOW_US // 1000])
        if verdict == 0:
            return RateDecision(False, "requests", retry_after(int(prev), int(cur), 1, self.rpm, now_us))
        if verdict == 1:
            return RateDecision(False, "tokens", retry_after(int(prev), int(cur), tokens, self.tpm, now_us))
        return ALLOW

    async def add_tokens(self, key_id: str, tokens: int, now_us: int) -> None:
        """Count tokens learned after the call."""
        key = self._keys(key_id, now_us)[3]
        async with self._r.pipeline(transaction=False) as p:
            p.incrby(key, tokens)
            p.pexpire(key, 2 * WINDOW_US // 1000)
            await p.execute()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._r.aclose()
