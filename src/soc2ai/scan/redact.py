"""Redaction of finding spans: mask, type tag, or keyed-hash token.

Hash tokens are ``<TYPE:hex12>`` with ``HMAC-SHA256(key, TYPE || 0x00 || value)``: the same value maps to
the same token under one key (a tenant's or a subject's), so downstream joins still work, and
destroying the subject's key (crypto-shredding) breaks the link from token to value. A bare,
unkeyed hash of a guessable value (a phone number) would be reversible by enumeration, so hash
mode without a key is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Literal

from soc2ai.errors import ConfigError
from soc2ai.scan.interface import Finding

RedactionMode = Literal["mask", "tag", "hash"]
MASK_CHAR = "*"
TOKEN_HEX = 12


def merge_spans(findings: Iterable[Finding]) -> list[tuple[int, int, str]]:
    """Union overlapping finding spans; each merged span keeps the type of its highest-scoring part."""
    items = sorted((f for f in findings if f.end > f.start), key=lambda f: (f.start, -f.end))
    merged: list[tuple[int, int, str, float]] = []
    for f in items:
        if merged and f.start < merged[-1][1]:
            s, e, t, sc = merged[-1]
            if f.score > sc:
                t, sc = f.entity_type, f.score
            merged[-1] = (s, max(e, f.end), t, sc)
        else:
            merged.append((f.start, f.end, f.entity_type, f.score))
    return [(s, e, t) for s, e, t, _ in merged]


def token_for(value: str, entity_type: str, key: bytes) -> str:
    """The keyed-hash token for one value: stable per (key, type, value)."""
    mac = hmac.new(key, entity_type.encode() + b"\x00" + value.encode("utf-8", "surrogatepass"),
                   hashlib.sha256).hexdigest()
    return f"<{entity_type}:{mac[:TOKEN_HEX]}>"


def redact(text: str, findings: Iterable[Finding], mode: RedactionMode = "tag", *,
           key: bytes | None = None) -> str:
    """Return a copy of ``text`` with every finding span replaced.

    ``mask`` keeps the length (``*****``), ``tag`` writes ``<EMAIL_ADDRESS>``, ``hash`` writes a keyed
    token and needs ``key``.
    """
    if mode == "hash" and not key:
        raise ConfigError("hash redaction needs a key (tenant or subject key); refusing an unkeyed hash",
                          field="scan.redaction_mode")
    if mode not in ("mask", "tag", "hash"):
        raise ConfigError(f"unknown redaction mode {mode!r}", field="scan.redaction_mode")
    spans = merge_spans(findings)
    if not spans:
        return text
    parts: list[str] = []
    pos = 0
    n = len(text)
    for start, end, etype in spans:
        start, end = max(start, pos), min(end, n)
        if start >= end:
            continue
        parts.append(text[pos:start])
        value = text[start:end]
        if mode == "mask":
            parts.append(MASK_CHAR * len(value))
        elif mode == "tag":
            parts.append(f"<{etype}>")
        else:
            parts.append(token_for(value, etype, key or b""))
        pos = end
    parts.append(text[pos:])
    return "".join(parts)
