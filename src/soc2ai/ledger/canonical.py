"""The one canonical encoding of ledger records: RFC 8785 (JCS) JSON.

Records are restricted to what JCS encodes without ambiguity and what our schema allows: ASCII object
keys, integers within ±(2**53 - 1), strings, booleans, null, lists and objects. Floats are refused (the
schema stores them as decimal strings). Under that restriction orjson with sorted keys produces the same
bytes as RFC 8785 and is ~20x faster than a pure-Python encoder; ``tests/unit/ledger/test_canonical.py``
proves the two byte-identical with a differential property test.
"""

from __future__ import annotations

import math
import secrets
from typing import Any

import orjson

from soc2ai.errors import Soc2AIError

MAX_SAFE_INT = 2**53 - 1
_OPTS = orjson.OPT_SORT_KEYS


class EncodingError(Soc2AIError, ValueError):
    """A value that the canonical encoding does not allow."""


def canonical_json(obj: dict[str, Any]) -> bytes:
    """Encode a validated record body as RFC 8785 canonical JSON bytes."""
    return orjson.dumps(obj, option=_OPTS)


# split_encode marks where "idx" goes with a value no record is expected to hold; if the marker shows up
# more than once (a nested object that happens to carry it), the split is done structurally instead.
_IDX_SENTINEL = -(secrets.randbits(50) | 1 << 50)
_IDX_MARK = b'"idx":%d' % _IDX_SENTINEL


def split_encode(body: dict[str, Any]) -> tuple[bytes, bytes]:
    """Canonical JSON of ``body`` plus a top-level ``"idx"`` key, as the bytes before and after the index
    value: ``head + b'"idx":%d' % n + tail == canonical_json({**body, "idx": n})`` for every ``n``.

    The log assigns a record's index only when it seals it; this lets the encoding happen earlier (in the
    writing process, before the record crosses to the sealer) and the sealer just splice the number in.
    """
    enc = orjson.dumps({**body, "idx": _IDX_SENTINEL}, option=_OPTS)
    at = enc.find(_IDX_MARK)
    if at >= 0 and enc.find(_IDX_MARK, at + 1) < 0:
        return enc[:at], enc[at + len(_IDX_MARK):]
    # Keys are ASCII (to_jsonable/check_jsonable), so str order is RFC 8785's UTF-16 order.
    lo = {k: v for k, v in body.items() if k < "idx"}
    hi = {k: v for k, v in body.items() if k > "idx"}
    head = orjson.dumps(lo, option=_OPTS)[:-1] + (b"," if lo else b"")
    tail = (b"," if hi else b"") + orjson.dumps(hi, option=_OPTS)[1:]
    return head, tail


def join_encoded(head: bytes, idx: int, tail: bytes) -> bytes:
    """The canonical record from :func:`split_encode`'s halves and its index."""
    return head + b'"idx":%d' % idx + tail


def check_jsonable(value: Any, path: str = "$") -> None:
    """Raise :class:`EncodingError` unless ``value`` is inside the canonical subset."""
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            return
        raise EncodingError(f"{path}: integer {value} outside the IEEE-754 safe range")
    if isinstance(value, float):
        raise EncodingError(f"{path}: floats are not allowed in records; use a decimal string")
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_jsonable(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise EncodingError(f"{path}: object keys must be ASCII strings, got {key!r}")
            check_jsonable(item, f"{path}.{key}")
        return
    raise EncodingError(f"{path}: {type(value).__name__} is not allowed in records")


def to_jsonable(value: Any) -> Any:
    """Coerce caller-supplied extras into the canonical subset (floats -> repr strings, tuples -> lists)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE_INT <= value <= MAX_SAFE_INT else str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = str(k)
            if not key.isascii():
                raise EncodingError(f"object keys must be ASCII, got {key!r}")
            out[key] = to_jsonable(v)
        return out
    return str(value)
