"""Whole-token identifier matching and SQL quoting."""

from __future__ import annotations

import json

import orjson
import pytest

from soc2ai.data.connectors._match import blob_hit, first_hit, like_escape, mask, probes, sql_quote, token_in


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


@pytest.mark.parametrize("text", ["mail jo.ann@example.com", "mail mary-ann@example.com", "mail ann@example.com.au",
                                  "x+ann@example.com", "ann@example.com_old", "ann%x@example.com"])
def test_email_not_inside_longer_address(text: str) -> None:
    """An e-mail never matches inside someone else's longer address."""
    assert not token_in(text, "ann@example.com")


@pytest.mark.parametrize("text", ["write to ann@example.com.", "ann@example.com...", "<ann@example.com>",
                                  "mailto:ann@example.com", "- ann@example.com -", '{"email":"ann@example.com"}'])
def test_email_delimited_by_punctuation(text: str) -> None:
    """Sentence punctuation and markup around an address are boundaries."""
    assert token_in(text, "ann@example.com")


def test_plain_id_not_inside_an_address() -> None:
    """A plain id that is only part of an e-mail address is that address, not the id."""
    assert not token_in("reach me at jo.ann@example.com", "ann")
    assert not token_in("bob at ann@example.com.au", "ann")
    assert token_in("ann wrote: thanks", "ann")


def test_case_insensitive() -> None:
    """Identifiers match in any letter case, still as whole tokens."""
    assert token_in("Please email Ann@Example.COM", "ann@example.com")
    assert token_in("JOSÉ NÚÑEZ called", "José Núñez")
    assert not token_in("Joann@Example.com", "ann@example.com")


def test_blob_matches_decoded_string_values() -> None:
    """JSON is matched on its decoded string values: escapes resolved, keys and numbers left out."""
    assert blob_hit(b'{"t":"regards\\nann@example.com"}', ["ann@example.com"]) == "ann@example.com"
    assert blob_hit(b'{"subject_id":"zo\\u00eb"}', ["zo\u00eb"]) == "zo\u00eb"
    assert blob_hit(b'{"id":1042,"max_tokens":1042,"1042":"x"}', ["1042"]) is None
    assert blob_hit(b'{"note":"order 1042 shipped"}', ["1042"]) == "1042"
    nested = orjson.dumps({"response": orjson.dumps({"c": "hi\nann@example.com"}).decode()})
    assert blob_hit(nested, ["ann@example.com"]) == "ann@example.com"
    assert blob_hit(b"plain text about 1042", ["1042"]) == "1042"
    assert first_hit(b'{"t":"regards\\nann"}', ["ann"]) == "ann"  # raw (malformed) rows: \n is a boundary


def test_probes_find_every_stored_form() -> None:
    """The byte pre-filter finds a needle in UTF-8, \\u-escaped and other-case rows."""
    rows = [b'{"s":"Ann@Example.COM"}', json.dumps({"s": "zo\u00eb"}).encode(),
            json.dumps({"s": "ZO\u00cb"}).encode(), '{"s":"zoë"}'.encode(),
            json.dumps({"s": "Jos\u00e9 N\u00fa\u00f1ez"}).encode(), b'{"s":"regards\\nann@example.com"}']
    needles = {0: "ann@example.com", 1: "zo\u00eb", 2: "zo\u00eb", 3: "zo\u00eb", 4: "jos\u00e9 n\u00fa\u00f1ez",
               5: "ann@example.com"}
    for i, row in enumerate(rows):
        assert any(p in row.lower() for p in probes([needles[i]])), row
    assert probes(["ann@example.com"]) == [b"ann@example.com"]
