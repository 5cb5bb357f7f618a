"""Canonical encoding: the fast encoder is byte-identical to RFC 8785 (JCS) for every record-shaped value."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from soc2ai.ledger import canonical
from soc2ai.ledger.canonical import (
    MAX_SAFE_INT,
    EncodingError,
    canonical_json,
    check_jsonable,
    join_encoded,
    split_encode,
    to_jsonable,
)

# Unicode text without lone surrogates (JSON text is UTF-8); includes control characters, astral chars,
# characters JCS escapes specially, and characters it must NOT escape (U+007F, U+2028, non-BMP).
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30) | st.sampled_from(
    ["", "\x00\x01\x1f", "\"\\/\b\f\n\r\t", "\x7f\u2028\u2029", "\U0001f600\U00010000\U0010ffff", "é"])
_ascii_key = st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=12)
_safe_int = st.integers(-MAX_SAFE_INT, MAX_SAFE_INT) | st.sampled_from([0, -1, MAX_SAFE_INT, -MAX_SAFE_INT])
_scalar = st.none() | st.booleans() | _safe_int | _text
_value = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_ascii_key, inner,
                                                                                            max_size=5),
                      max_leaves=30)
_record = st.dictionaries(_ascii_key, _value, max_size=12)


@settings(max_examples=300, deadline=None)
@given(_record)
def test_canonical_json_is_byte_identical_to_rfc8785(rec: dict[str, Any]) -> None:
    """canonical_json equals the reference RFC 8785 encoder byte for byte on record-shaped values."""
    check_jsonable(rec)
    assert canonical_json(rec) == rfc8785.dumps(rec)


def test_key_order_is_by_code_unit_not_insertion() -> None:
    """Keys are sorted (JCS sorts UTF-16 code units; for ASCII that is byte order), insertion order ignored."""
    rec = {"b": 1, "a": {"z": [], "A": None, "_": True}, "B": "x", "": 0}
    assert canonical_json(rec) == b'{"":0,"B":"x","a":{"A":null,"_":true,"z":[]},"b":1}' == rfc8785.dumps(rec)


def test_string_escapes_follow_jcs() -> None:
    """Control characters use \\uXXXX except the short escapes; non-ASCII is emitted as raw UTF-8."""
    rec = {"s": "\x00\x1f\b\t\n\f\r\"\\/\x7f\u2028\U0001f600"}
    want = '{"s":"\\u0000\\u001f\\b\\t\\n\\f\\r\\"\\\\/\x7f\u2028\U0001f600"}'.encode()
    assert canonical_json(rec) == want == rfc8785.dumps(rec)


@pytest.mark.parametrize("bad", [
    {"x": 1.5}, {"x": 0.0}, {"x": [1, 2.0]}, {"x": {"y": float("nan")}},
    {"x": MAX_SAFE_INT + 1}, {"x": -MAX_SAFE_INT - 1}, {"x": 2**64},
    {"é": 1}, {"x": {"ключ": 1}}, {1: "int key"}, {"x": b"bytes"}, {"x": (1, 2)}, {"x": {1, 2}},
])
def test_check_jsonable_rejects_values_outside_the_canonical_subset(bad: dict[Any, Any]) -> None:
    """Floats, unsafe integers, non-ASCII or non-string keys and non-JSON types are rejected."""
    with pytest.raises(EncodingError):
        check_jsonable(bad)


def test_check_jsonable_error_names_the_path() -> None:
    """The error says where in the record the bad value is."""
    with pytest.raises(EncodingError, match=r"\$\.params\.temperature"):
        check_jsonable({"params": {"temperature": 0.7}})


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | _text,
                    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
                    | st.dictionaries(_ascii_key, inner, max_size=4), max_leaves=15))
def test_to_jsonable_always_lands_in_the_canonical_subset(value: Any) -> None:
    """Coerced caller extras (floats, big ints, tuples) always pass check_jsonable and encode like JCS."""
    coerced = to_jsonable(value)
    check_jsonable({"v": coerced})
    assert canonical_json({"v": coerced}) == rfc8785.dumps({"v": coerced})


def test_to_jsonable_keeps_float_text_exact() -> None:
    """Floats become their shortest repr string, so 0.1 stays '0.1' and nothing is rounded silently."""
    assert to_jsonable({"t": 0.1, "p": [1e-7, float("inf")], "n": 2**60}) == \
        {"t": "0.1", "p": ["1e-07", "inf"], "n": str(2**60)}


# Records whose nested objects carry "idx" keys too, sometimes with split_encode's own marker value.
_idx_value = _value | st.builds(lambda: {"idx": canonical._IDX_SENTINEL}) | st.builds(
    lambda v: {"idx": v}, _safe_int)
_idx_record = st.dictionaries(_ascii_key | st.sampled_from(["idx", "id", "idw", "idy", "i", "kind"]),
                              _idx_value, max_size=12)


@settings(max_examples=400, deadline=None)
@given(_idx_record, st.integers(0, MAX_SAFE_INT))
def test_split_encode_then_join_equals_rfc8785_of_the_record_with_its_index(rec: dict[str, Any], idx: int) -> None:
    """The sealer splices the index into a body encoded earlier; the result is the RFC 8785 encoding of
    the record with that index, byte for byte (nested "idx" keys and the marker value included)."""
    head, tail = split_encode(rec)
    assert join_encoded(head, idx, tail) == canonical_json({**rec, "idx": idx}) == rfc8785.dumps({**rec, "idx": idx})


def test_split_encode_falls_back_when_the_marker_repeats() -> None:
    """A nested object holding the marker value itself cannot fool the split."""
    rec = {"a": {"idx": canonical._IDX_SENTINEL}, "z": [{"idx": canonical._IDX_SENTINEL}]}
    head, tail = split_encode(rec)
    assert join_encoded(head, 7, tail) == rfc8785.dumps({**rec, "idx": 7})
    assert head.endswith(b",") and tail.startswith(b",")
