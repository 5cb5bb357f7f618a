"""Identifier matching shared by connectors: a needle counts only as a whole token, ignoring case.

``"12"`` must not match ``"123"``. A plain identifier needs a non-word character (or the edge of the
text) on each side where the identifier itself starts or ends with a word character. An e-mail address
(a needle containing ``@``) must not match inside a longer address: a letter, digit, ``_`` or ``%`` next
to it, or a ``.``/``-``/``+`` with a letter or digit beyond it (``jo.ann@``, ``mary-ann@``,
``ann@example.com.au``) makes it part of something longer; a full stop ending a sentence does not. For the
same reason a plain identifier inside an e-mail address (``ann`` in ``jo.ann@example.com``) is no match.

Stored values are matched as decoded text (:func:`blob_hit`, :func:`value_hit`): JSON is parsed and only
its string values are searched (not keys, not numbers), so ``"regards\\nann@example.com"`` and
``"zo\\u00eb"`` are found and ``"id": 1042`` is not a mention of ``1042``. Raw text is searched only when
it is not JSON (malformed rows, plain files).

Bulk scans first look for :func:`probes` in the ASCII-lowercased bytes (``bytes.lower()``, C speed) and
confirm candidates with the matchers above.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson

_ESCAPES = "ntrbf"          # letters of JSON escapes (\n, \t, ...): a boundary in raw JSON text
_ADDR_ALWAYS = "_%"         # next to an e-mail: always part of a longer address
_ADDR_JOINERS = ".-+"       # part of a longer address only when a letter/digit follows beyond them
# Printable ASCII that JSON encoders leave unescaped (some escape / and HTML's < > & ').
_PROBE_SAFE = frozenset(chr(c) for c in range(32, 127)) - set('"\\/<>&\'')
_ADDR_CHARS = frozenset("._%+-@")
_MAX_ADDRESS = 254          # longest e-mail address: bounds the scan around each hit
_MIN_PROBE = 3
_JSON_DEPTH = 4


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _escape_letter(text: str, i: int) -> bool:
    """``text[i]`` is the letter of a backslash escape (``\\n`` in raw JSON), not a word character."""
    return text[i] in _ESCAPES and i >= 1 and text[i - 1] == "\\" and (i < 2 or text[i - 2] != "\\")


def _plain_edge_ok(text: str, i: int, edge: str, left: bool) -> bool:
    if not 0 <= i < len(text) or not _is_word(edge):
        return True
    return not _is_word(text[i]) or (left and _escape_letter(text, i))


def _address_edge_ok(text: str, i: int, left: bool) -> bool:
    """``text[i]``, next to an e-mail match, does not continue a longer address."""
    if not 0 <= i < len(text):
        return True
    ch = text[i]
    if left and _escape_letter(text, i):
        return True
    if ch.isalnum() or ch in _ADDR_ALWAYS:
        return False
    if ch in _ADDR_JOINERS:
        j = i - 1 if left else i + 1
        return not (0 <= j < len(text) and text[j].isalnum())
    return True


def _in_address(text: str, start: int, end: int) -> bool:
    """The run of address characters around ``text[start:end]`` holds an ``@``: it is part of an e-mail."""
    i = start - 1
    while i >= max(0, start - _MAX_ADDRESS) and (text[i].isalnum() or text[i] in _ADDR_CHARS):
        if text[i] == "@":
            return True
        i -= 1
    j = end
    while j < min(len(text), end + _MAX_ADDRESS) and (text[j].isalnum() or text[j] in _ADDR_CHARS):
        if text[j] == "@":
            return True
        j += 1
    return False


def _fold(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text.lower()


def _find(hay: str, nee: str) -> bool:
    """``nee`` (already folded) as a whole token in ``hay`` (already folded)."""
    if not nee:
        return False
    email = "@" in nee
    start = hay.find(nee)
    while start != -1:
        end = start + len(nee)
        if email:
            ok = _address_edge_ok(hay, start - 1, True) and _address_edge_ok(hay, end, False)
        else:
            ok = (_plain_edge_ok(hay, start - 1, nee[0], True) and _plain_edge_ok(hay, end, nee[-1], False)
                  and not _in_address(hay, start, end))
        if ok:
            return True
        start = hay.find(nee, start + 1)
    return False


def token_in(haystack: str | bytes, needle: str) -> bool:
    """True when ``needle`` occurs in ``haystack`` as a whole token (case-insensitive)."""
    return _find(_fold(haystack), needle.lower())


def first_hit(haystack: str | bytes, needles: Iterable[str]) -> str | None:
    """The first needle found as a token in raw text, or None."""
    hay = _fold(haystack)
    for needle in needles:
        if _find(hay, needle.lower()):
            return needle
    return None


def json_strings(value: Any, _depth: int = 0) -> Iterator[str]:
    """String values of a parsed JSON value, keys and numbers left out. A string that itself holds a JSON
    object or array (a cached response body, a serialised message list) is opened too."""
    if isinstance(value, str):
        head = value.lstrip()[:1]
        if head in ("{", "[") and _depth < _JSON_DEPTH:
            try:
                inner = orjson.loads(value)
            except orjson.JSONDecodeError:
                yield value
                return
            yield from json_strings(inner, _depth + 1)
            return
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from json_strings(v, _depth)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from json_strings(v, _depth)


def value_hit(value: Any, needles: Sequence[str]) -> str | None:
    """The first needle found in a string value of ``value`` (a parsed row or document), or None."""
    folded = [n.lower() for n in needles]
    for text in json_strings(value):
        hay = text.lower()
        for needle, nee in zip(needles, folded, strict=True):
            if _find(hay, nee):
                return needle
    return None


def blob_hit(blob: str | bytes, needles: Sequence[str]) -> str | None:
    """Match in a stored value: its JSON string values when it is JSON, else its raw text."""
    head = blob.lstrip()[:1]
    if (head.decode("latin-1") if isinstance(head, bytes) else head) in ("{", "[", '"'):
        try:
            parsed = orjson.loads(blob)
        except orjson.JSONDecodeError:
            pass
        else:
            return value_hit(parsed, needles)
    return first_hit(blob, needles)


def _variants(needle: str) -> set[bytes]:
    out = set()
    for v in {needle, needle.lower(), needle.upper(), needle.title()}:
        out.add(v.encode("utf-8", "surrogatepass").lower())
        out.add(json.dumps(v)[1:-1].encode().lower())   # \u00eb, as ensure_ascii writers store it
    return out


def probes(needles: Iterable[str]) -> list[bytes]:
    """Byte strings to look for in ``data.lower()``: a row that contains none of them cannot match.

    The probe is the needle's longest run of ASCII characters JSON never escapes, so it is found in
    UTF-8 and ``\\uXXXX``-escaped rows and in any letter case. A needle with no such run of at least
    three characters falls back to its common case forms, raw and escaped."""
    out: set[bytes] = set()
    for needle in needles:
        low = needle.lower()
        runs, run = [], ""
        for ch in low:
            if ch in _PROBE_SAFE:
                run += ch
            else:
                runs.append(run)
                run = ""
        runs.append(run)
        best = max(runs, key=len)
        if best and (best == low or len(best) >= _MIN_PROBE):
            out.add(best.encode())
        elif needle:
            out |= _variants(needle)
    return sorted(out)


def like_escape(value: str) -> str:
    """Escape ``%``, ``_`` and ``\\`` for a SQL LIKE pattern (ESCAPE '\\')."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def sql_quote(value: str) -> str:
    """A single-quoted SQL string literal (for engines without bound parameters, e.g. LanceDB filters)."""
    if "\x00" in value:
        raise ValueError("NUL in identifier")
    return "'" + value.replace("'", "''") + "'"


def mask(value: str) -> str:
    """A display form that does not print an identifier in full (logs, tables)."""
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]
