"""The OpenAI moderation API (``POST {base_url}/moderations``) as a :class:`Moderator`.

Failures (timeouts, non-2xx, malformed bodies) are returned in ``ModerationResult.error`` so the
pipeline can apply the configured ``on_error`` policy (fail closed by default). The API key is passed
in by the caller (read by ``soc2ai.config``'s caller, never from the environment here).
"""

from __future__ import annotations

from typing import Any

import httpx

from soc2ai.scan.interface import MODERATION_CATEGORIES, ModerationResult

VERSION = "1.0.0"


class OpenAIModerator:
    """HTTP client for an OpenAI-compatible moderation endpoint."""

    name = "moderation.openai"
    version = VERSION

    def __init__(self, *, base_url: str = "https://api.openai.com/v1", api_key: str | None = None,
                 model: str = "omni-moderation-latest", timeout_s: float = 2.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self._client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s,
                                    transport=transport)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def moderate(self, text: str) -> ModerationResult:
        """One moderation call; errors come back in ``error`` rather than raising."""
        try:
            resp = self._client.post("/moderations", json={"model": self.model, "input": text})
        except httpx.HTTPError as exc:
            return self._failed(f"{type(exc).__name__}: {exc}")
        if resp.status_code // 100 != 2:
            return self._failed(f"HTTP {resp.status_code}")
        try:
            body: Any = resp.json()
            result = body["results"][0]
            raw_cats: dict[str, Any] = result["categories"]
            raw_scores: dict[str, Any] = result.get("category_scores", {})
            cats = {c: bool(raw_cats.get(c, False)) for c in MODERATION_CATEGORIES}
            scores = {c: float(raw_scores.get(c, 1.0 if cats[c] else 0.0)) for c in MODERATION_CATEGORIES}
            flagged = bool(result.get("flagged", any(cats.values())))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            return self._failed(f"malformed moderation response: {type(exc).__name__}")
        return ModerationResult(flagged, cats, scores, self.name)

    def _failed(self, error: str) -> ModerationResult:
        return ModerationResult(False, dict.fromkeys(MODERATION_CATEGORIES, False),
                                dict.fromkeys(MODERATION_CATEGORIES, 0.0), self.name, error=error)
