"""Canary tokens."""

from __future__ import annotations

from soc2ai.scan.canary import CanaryScanner, embed_canary, make_canary


def test_make_canary_uses_given_randomness() -> None:
    """Randomness is a parameter, so tests control it."""
    assert make_canary(lambda n: "ab" * n) == "cnry-" + "ab" * 8


def test_detects_leaked_canary_even_spaced_out() -> None:
    """A canary in the output is found, also when the model spaced or upper-cased it."""
    tok = "cnry-0123456789abcdef"
    sc = CanaryScanner([tok])
    assert sc.scan(embed_canary("You are helpful.", tok))[0].entity_type == "CANARY_LEAK"
    assert sc.scan("leak: C N R Y - 0 1 2 3 4 5 6 7 8 9 A B C D E F")
    assert sc.scan("nothing here") == []


def test_no_tokens_no_findings() -> None:
    """Without configured tokens the scanner finds nothing."""
    assert CanaryScanner([]).scan("cnry-0123456789abcdef") == []


def test_canary_with_invisible_or_fullwidth_characters_is_found() -> None:
    """A model told to slip zero-width characters into the token, or to write it full-width, still leaks it."""
    tok = "cnry-0123456789abcdef"
    sc = CanaryScanner([tok])
    sneaky = "\u200b".join(tok)
    found = sc.scan("leak: " + sneaky + " end")
    assert [(f.start, f.end) for f in found] == [(6, 6 + len(sneaky))]
    assert sc.scan("".join(chr(ord(c) + 0xFEE0) for c in tok))  # the full-width forms
