"""Normalisation: NFKC folding, hidden characters, and the offset map back to the original."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from soc2ai.scan.normalize import normalize


def test_ascii_is_identity_without_copy() -> None:
    """ASCII text takes the fast path: same object, identity offsets, nothing hidden."""
    text = "plain ascii text 123"
    n = normalize(text)
    assert n.text is text and n.identity and n.hidden == 0


def test_fullwidth_folds_and_maps_back() -> None:
    """Full-width letters fold to ASCII and spans map back onto the original characters."""
    text = "say \uff49\uff47\uff4e\uff4f\uff52\uff45 now"
    n = normalize(text)
    assert n.text == "say ignore now"
    s, e = n.span_to_original(4, 10)
    assert text[s:e] == "\uff49\uff47\uff4e\uff4f\uff52\uff45"


def test_zero_width_and_bidi_are_stripped_and_counted() -> None:
    """Zero-width and bidi controls disappear from the text and are counted as hidden."""
    n = normalize("ig\u200bno\u202ere")
    assert n.text == "ignore" and n.hidden == 2


def test_tag_characters_are_decoded_as_smuggled_text() -> None:
    """Unicode tag characters are stripped, counted, and their ASCII reading kept."""
    hidden = "".join(chr(0xE0000 + ord(c)) for c in "hi there")
    n = normalize("weather?" + hidden)
    assert n.text == "weather?" and n.smuggled == "hi there" and n.hidden == len("hi there")


def test_emoji_variation_selector_is_not_flagged() -> None:
    """Variation selectors decorate emoji legitimately: stripped, not counted as hidden."""
    n = normalize("ok \u2764\ufe0f")
    assert n.hidden == 0


def test_ligature_expansion_maps_every_char_to_the_ligature() -> None:
    """A ligature expands to several characters that all map to the one original character."""
    text = "a \ufb01le"
    n = normalize(text)
    assert n.text == "a file"
    assert n.span_to_original(2, 4) == (2, 3)
    assert n.span_to_original(2, 6) == (2, 5)


def test_empty_and_all_hidden() -> None:
    """Empty input and input made only of hidden characters normalise to empty text."""
    assert normalize("").text == ""
    n = normalize("\u200b\u200c")
    assert n.text == "" and n.span_to_original(0, 0) == (2, 2)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_every_normalised_char_comes_from_its_mapped_original(text: str) -> None:
    """Round trip: each normalised character occurs in the NFKC form of the original span it maps to."""
    n = normalize(text)
    prev = 0
    for i, ch in enumerate(n.text):
        s, e = n.span_to_original(i, i + 1)
        assert 0 <= s < e <= len(text)
        assert s >= prev  # offsets never go backwards
        prev = s
        assert ch in unicodedata.normalize("NFKC", text[s:e])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.integers(0, 40), st.integers(0, 40))
def test_span_mapping_is_ordered_and_in_bounds(text: str, a: int, b: int) -> None:
    """Any span maps to an ordered span inside the original text."""
    n = normalize(text)
    s, e = n.span_to_original(min(a, b), max(a, b))
    assert 0 <= s <= e <= len(text)
