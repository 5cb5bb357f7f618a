"""Redaction modes and span merging."""

from __future__ import annotations

import pytest

from soc2ai.errors import ConfigError
from soc2ai.scan.interface import Finding
from soc2ai.scan.redact import merge_spans, redact, token_for

TEXT = "mail bob@example.com now"
F = Finding("EMAIL_ADDRESS", 5, 20, 0.9, "pii.email", "pii")


def test_tag_mode() -> None:
    """Tag mode writes the type name."""
    assert redact(TEXT, [F], "tag") == "mail <EMAIL_ADDRESS> now"


def test_mask_mode_keeps_length() -> None:
    """Mask mode keeps the length of the value."""
    out = redact(TEXT, [F], "mask")
    assert out == "mail " + "*" * 15 + " now" and len(out) == len(TEXT)


def test_hash_mode_is_stable_per_key_and_differs_across_keys() -> None:
    """Same value and key give the same token; another key gives another token."""
    a = redact(TEXT, [F], "hash", key=b"k1" * 16)
    b = redact(TEXT, [F], "hash", key=b"k1" * 16)
    c = redact(TEXT, [F], "hash", key=b"k2" * 16)
    assert a == b != c
    assert a.startswith("mail <EMAIL_ADDRESS:") and "bob" not in a
    assert token_for("bob@example.com", "EMAIL_ADDRESS", b"k1" * 16) in a


def test_hash_mode_without_key_is_refused() -> None:
    """An unkeyed hash of a guessable value would be reversible: refused."""
    with pytest.raises(ConfigError):
        redact(TEXT, [F], "hash")


def test_overlapping_spans_merge_and_keep_strongest_type() -> None:
    """Overlapping findings become one span typed by the highest score."""
    spans = merge_spans([Finding("A", 0, 5, 0.5, "r", "s"), Finding("B", 3, 8, 0.9, "r", "s"),
                         Finding("C", 10, 12, 0.1, "r", "s")])
    assert spans == [(0, 8, "B"), (10, 12, "C")]


def test_no_findings_returns_input() -> None:
    """Nothing to redact: the text comes back unchanged."""
    assert redact(TEXT, [], "tag") == TEXT


def test_unknown_mode_is_refused() -> None:
    """An unknown mode is a configuration error, not a silent pass-through."""
    with pytest.raises(ConfigError):
        redact(TEXT, [F], "rot13")  # type: ignore[arg-type]
