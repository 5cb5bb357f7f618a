"""Canary tokens: secret markers placed in system prompts; seeing one in an output means a prompt leak."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence

from soc2ai.scan.interface import Finding
from soc2ai.scan.normalize import normalize

VERSION = "1.0.0"
CANARY_PREFIX = "cnry-"


def make_canary(token_hex: Callable[[int], str] = secrets.token_hex) -> str:
    """A fresh random canary (``cnry-`` + 16 hex chars); pass ``token_hex`` to control randomness in tests."""
    return CANARY_PREFIX + token_hex(8)


def embed_canary(system_prompt: str, token: str) -> str:
    """Append the canary to a system prompt as an inert marker line."""
    return f"{system_prompt}\n<!-- {token} -->"


class CanaryScanner:
    """Finds configured canary tokens (case-insensitive, also with separators inserted by the model)."""

    name = "canary"
    version = VERSION

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = tuple(tokens)
        # Allow the model to have spaced, dotted or dashed the token out ("c n r y - ...").
        parts = [r"[\s.\-_]{0,2}".join(map(re.escape, t)) for t in self.tokens]
        self._rx = re.compile("|".join(parts), re.I) if parts else None

    def scan(self, text: str) -> list[Finding]:
        """``CANARY_LEAK`` for every occurrence of a configured token."""
        if self._rx is None or not text:
            return []
        if text.isascii():
            return [Finding("CANARY_LEAK", m.start(), m.end(), 1.0, "canary.leak", self.name)
                    for m in self._rx.finditer(text)]
        # Zero-width characters between the token's letters, or full-width forms, must not hide it.
        norm = normalize(text)
        return [Finding("CANARY_LEAK", *norm.span_to_original(m.start(), m.end()), 1.0, "canary.leak", self.name)
                for m in self._rx.finditer(norm.text)]
