"""Whole-token identifier matching and SQL quoting."""

from __future__ import annotations

import pytest

from soc2ai.data.connectors._match import first_hit, like_escape, mask, sql_quote, token_in


def test_token_needs_boundaries() -> None:
    """A needle inside a longer word or number is not a hit."""
    assert token_in("user 12 asked", "12")
    assert not token_in("user 123 asked", "12")
    assert not token_in("ann@example.com.au", "ann@example.co")
    assert token_in('{"email":"ann@example.com"}', "ann@example.com")
    assert not token_in("joann@example.com", "ann@example.com")


def test_token_bytes_and_edges() -> None:
    """Works on bytes and at the start/end of the text."""
    assert token_in(b"u-1", "u-1")
    assert token_in("+44 20 7946 0958", "+44 20 7946 0958")
    assert not token_in("", "x")
    assert not token_in("abc", "")


def test_first_hit_order() -> None:
    """first_hit returns the first matching needle."""
    assert first_hit("call bob or ann", ["carl", "ann", "bob"]) == "ann"
    assert first_hit("nobody", ["ann"]) is None


def test_quoting() -> None:
    """LIKE escaping and SQL string literals neutralise metacharacters."""
    assert like_escape("50%_a\\b") == "50\\%\\_a\\\\b"
    assert sql_quote("o'brien") == "'o''brien'"
    with pytest.raises(ValueError):
        sql_quote("a\x00b")


def test_mask_hides_middle() -> None:
    """Masked identifiers keep only the ends."""
    assert mask("ann@example.com") == "an" + "*" * 11 + "om"
    assert mask("abc") == "***"
