"""Per-key rate limits (requests and tokens per minute): in memory, or shared through Redis."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from soc2ai.gateway.ratelimit.interface import RateLimiter
    from soc2ai.gateway.settings import RateLimitSettings


def build_limiter(settings: RateLimitSettings) -> RateLimiter:
    """The limiter the settings name (``redis`` is imported only when used)."""
    if settings.backend == "redis":
        from soc2ai.gateway.ratelimit.redis import RedisLimiter

        return RedisLimiter(settings.redis_url, settings.requests_per_minute, settings.tokens_per_minute)
    from soc2ai.gateway.ratelimit.memory import MemoryLimiter

    return MemoryLimiter(settings.requests_per_minute, settings.tokens_per_minute)
