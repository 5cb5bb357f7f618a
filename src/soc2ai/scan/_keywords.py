"""Keyword gates: decide cheaply which rule regexes can possibly match a text.

A text is tokenised once into a set of lower-case words; a rule whose keywords (whole words, or a few
punctuation markers checked as substrings) are all absent is skipped. Gates only skip work, they never
decide: every keyword must be implied by its rule's pattern (a superset), which tests check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Every ASCII character that is not a-z becomes a space, so str.split() yields the [a-z]+ runs (in C).
_SPLIT = str.maketrans({chr(c): " " for c in range(128) if not ord("a") <= c <= ord("z")})
_ALPHA_KW = re.compile(r"[a-z]+(?: [a-z]+)*")


class KeywordGate:
    """Per-rule keyword sets over one shared tokenisation."""

    def __init__(self, groups: Sequence[Sequence[str]]) -> None:
        self._words: list[frozenset[str]] = []
        self._subs: list[tuple[str, ...]] = []
        for kws in groups:
            words, subs = set(), []
            for kw in kws:
                if _ALPHA_KW.fullmatch(kw):
                    words.add(kw.split()[0])
                else:
                    subs.append(kw)
            self._words.append(frozenset(words))
            self._subs.append(tuple(subs))
        self._any_words = frozenset().union(*self._words)
        self._any_subs = tuple(dict.fromkeys(s for subs in self._subs for s in subs))

    @staticmethod
    def words(low: str) -> frozenset[str]:
        """The word set of a lower-cased text."""
        return frozenset(low.translate(_SPLIT).split())

    def open(self, i: int, words: frozenset[str], low: str) -> bool:
        """True when rule ``i`` may match (one of its keywords occurs)."""
        return not words.isdisjoint(self._words[i]) or any(s in low for s in self._subs[i])

    def any_open(self, words: frozenset[str], low: str) -> bool:
        """True when some rule may match: False lets a caller skip the whole group in one set operation."""
        return not words.isdisjoint(self._any_words) or any(s in low for s in self._any_subs)
