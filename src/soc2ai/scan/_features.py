"""Hashed n-gram features for the injection classifier (shared by training and inference).

Character 3-5-grams of the folded text plus word unigrams and bigrams, hashed into ``2**bits`` buckets
with a multiplicative hash computed in numpy (no per-n-gram Python loop), so featurising a 2 KB prompt
costs tens of microseconds. The hash is fixed arithmetic, not Python's salted ``hash()``, so the
weights trained once mean the same thing in every process.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np
import numpy.typing as npt

CHAR_NGRAMS = (3, 4, 5)  # consecutive: each is built from the previous
_P = np.uint64(0x100000001B3)           # FNV prime: mixes successive bytes
_M = np.uint64(0x9E3779B97F4A7C15)      # golden-ratio multiplier for the final bucket hash
_SALT_CHAR = np.uint64(0x51ED27)
_SALT_WORD = np.uint64(0xC0FFEE)
_SALT_BIGRAM = np.uint64(0xB16B00B5)
# Leetspeak digits folded to letters inside words that mix letters and digits ("IGNOR3 4LL" -> "ignore all").
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"})
_LEET_GATE = re.compile(r"[a-z][0-9]|[0-9][a-z]")  # cheap: is there any letter/digit boundary at all?
_LEET_WORD = re.compile(r"\b(?=[a-z0-9]*[a-z])(?=[a-z0-9]*[0-9])[a-z0-9]{3,}\b")


def fold(text: str) -> str:
    """Lower-case, collapse whitespace, undo leetspeak inside words that mix letters and digits."""
    t = " ".join(text.lower().split())
    if _LEET_GATE.search(t):
        t = _LEET_WORD.sub(lambda m: m.group().translate(_LEET), t)
    return t


def _bucket(h: npt.NDArray[np.uint64], bits: int) -> npt.NDArray[np.int64]:
    return ((h * _M) >> np.uint64(64 - bits)).astype(np.int64)


@functools.lru_cache(maxsize=1)
def _powers(n: int) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    # P is odd, so it is invertible modulo 2**64: prefix sums of b[j] * P**-j give any substring's
    # polynomial hash in O(1), which vectorises word hashing.
    p_inv = np.uint64(pow(int(_P), -1, 2**64))
    pw = np.cumprod(np.full(n, _P, dtype=np.uint64))
    ipw = np.cumprod(np.full(n, p_inv, dtype=np.uint64))
    pw = np.concatenate([np.ones(1, dtype=np.uint64), pw[:-1]])
    ipw = np.concatenate([np.ones(1, dtype=np.uint64), ipw[:-1]])
    return pw, ipw


_MAX_BYTES = 1 << 15
# Bytes that belong to words: a-z, 0-9, apostrophe, and every non-ASCII byte (UTF-8 letters).
_WORD_BYTE = np.zeros(256, dtype=bool)
_WORD_BYTE[[*range(ord("a"), ord("z") + 1), *range(ord("0"), ord("9") + 1), ord("'"), *range(128, 256)]] = True


def featurize(text: str, bits: int, *, folded: str | None = None) -> npt.NDArray[np.int64]:
    """Bucket indices of every n-gram occurrence in ``text`` (repeats kept: counts are occurrences).

    ``folded`` is ``fold(text)`` when the caller has it already. Callers window long texts; bytes
    beyond ``2**15`` are ignored here.
    """
    t = folded if folded is not None else fold(text)
    if not t:
        return np.zeros(0, dtype=np.int64)
    raw = (" " + t + " ").encode("utf-8", "replace")[:_MAX_BYTES]
    b8 = np.frombuffer(raw, dtype=np.uint8)
    b = b8.astype(np.uint64)
    # 3-grams from scratch, then each longer n-gram extends the previous one by a byte (2 ops per n).
    parts: list[npt.NDArray[np.uint64]] = []
    n0 = CHAR_NGRAMS[0]
    m = len(b) - n0 + 1
    if m > 0:
        h = np.full(m, _SALT_CHAR, dtype=np.uint64)
        for k in range(n0):
            h = h * _P + b[k : k + m]
        parts.append(h)
        for n in CHAR_NGRAMS[1:]:
            if len(h) < 2:
                break
            h = h[:-1] * _P + b[n - 1 :]
            parts.append(h ^ np.uint64(n))
    isw = _WORD_BYTE[b8]
    edges = np.diff(isw.astype(np.int8))
    starts = np.flatnonzero(edges == 1) + 1
    ends = np.flatnonzero(edges == -1) + 1
    k = min(len(starts), len(ends))
    if k:
        starts, ends = starts[:k], ends[:k]
        pw, ipw = _powers(_MAX_BYTES + 1)
        pre = np.concatenate([np.zeros(1, dtype=np.uint64), np.cumsum(b * ipw[: len(b)], dtype=np.uint64)])
        wh = pw[ends - 1] * (pre[ends] - pre[starts]) + (ends - starts).astype(np.uint64)
        parts.append(wh ^ _SALT_WORD)
        parts.append(wh ^ _SALT_WORD)  # words count twice: a few strong words outweigh many char n-grams
        if k > 1:
            parts.append((wh[:-1] * _P + wh[1:]) ^ _SALT_BIGRAM)
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return _bucket(np.concatenate(parts), bits)
