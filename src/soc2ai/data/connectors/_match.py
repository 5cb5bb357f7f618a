"""Identifier matching shared by connectors: a needle counts only as a whole token.

``"12"`` must not match ``"123"``; an e-mail must not match inside a longer address. A hit needs a
non-alphanumeric character (or the edge of the text) on both sides.
"""

from __future__ import annotations

from collections.abc import Iterable


def _is_word(ch: int) -> bool:
    return ch == 95 or 48 <= ch <= 57 or 65 <= ch <= 90 or 97 <= ch <= 122 or ch >= 128


def token_in(haystack: str | bytes, needle: str) -> bool:
    """True when ``needle`` occurs in ``haystack`` delimited by non-word characters."""
    hay = haystack.encode("utf-8", "surrogatepass") if isinstance(haystack, str) else haystack
    nee = needle.encode("utf-8", "surrogatepass")
    if not nee:
        return False
    start = hay.find(nee)
    while start != -1:
        end = start + len(nee)
        left_ok = start == 0 or not _is_word(hay[start - 1]) or not _is_word(nee[0])
        right_ok = end == len(hay) or not _is_word(hay[end]) or not _is_word(nee[-1])
        if left_ok and right_ok:
            return True
        start = hay.find(nee, start + 1)
    return False


def first_hit(haystack: str | bytes, needles: Iterable[str]) -> str | None:
    """The first needle found as a token, or None."""
    for needle in needles:
        if token_in(haystack, needle):
            return needle
    return None


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
