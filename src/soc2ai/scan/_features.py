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
# The same as a bytes.translate table (1 = word byte): translating in C and viewing the result as bools
# is several times cheaper on a cold cache than numpy's fancy indexing ``_WORD_BYTE[b8]``.
_WORD_TABLE = bytes(_WORD_BYTE.astype(np.uint8))


_S3 = np.uint64(int(_SALT_CHAR) * int(_P) ** 3 % 2**64)  # the 3-gram hash's salt term, SALT * P**3
_P2 = np.uint64(int(_P) ** 2 % 2**64)
_X4, _X5 = np.uint64(4), np.uint64(5)


def featurize(text: str, bits: int, *, folded: str | None = None) -> npt.NDArray[np.int64]:
    """Bucket indices of every n-gram occurrence in ``text`` (repeats kept: counts are occurrences).

    ``folded`` is ``fold(text)`` when the caller has it already. Callers window long texts; bytes
    beyond ``2**15`` are ignored here.

    Order: char 3-, 4-, 5-grams by position, the word hashes twice, the word bigrams. On the gateway's
    hot path each numpy call costs several microseconds when the CPU caches are cold between requests,
    so this uses as few (and as few distinct) calls as it can: no ``np.full``/``np.diff``/
    ``np.flatnonzero``/``np.zeros`` wrappers, one ``concatenate``, in-place bucketing.
    """
    t = folded if folded is not None else fold(text)
    if not t:
        return np.zeros(0, dtype=np.int64)
    raw = (" " + t + " ").encode("utf-8", "replace")[:_MAX_BYTES]
    b8 = np.frombuffer(raw, dtype=np.uint8)
    b = b8.astype(np.uint64)
    # 3-grams SALT*P**3 + b0*P**2 + b1*P + b2; each longer n-gram extends the previous one by a byte.
    h3 = (b[:-2] * _P2 + b[1:-1] * _P) + (b[2:] + _S3)
    h4 = h3[:-1] * _P + b[3:]
    parts = [h3, h4 ^ _X4, (h4[:-1] * _P + b[4:]) ^ _X5]
    # Word boundaries: positions j where byte j and j+1 differ in word-ness. Byte 0 is a space, so they
    # alternate start, end, ...: a word is bytes (start_j, end_j] (an unterminated last one is dropped).
    isw = np.frombuffer(raw.translate(_WORD_TABLE), dtype=np.bool_)
    bnd = (isw[1:] != isw[:-1]).nonzero()[0]
    k = len(bnd) // 2
    if k:
        sj, ej = bnd[0 : 2 * k : 2], bnd[1 : 2 * k : 2]
        pw, ipw = _powers(_MAX_BYTES + 1)
        cs = (b * ipw[: len(b)]).cumsum()  # wraps modulo 2**64 like every other step
        wh = pw[ej] * (cs[ej] - cs[sj]) + (ej - sj).view(np.uint64)  # polynomial hash + length
        words = wh ^ _SALT_WORD
        parts += [words, words]  # words count twice: a few strong words outweigh many char n-grams
        if k > 1:
            parts.append((wh[:-1] * _P + wh[1:]) ^ _SALT_BIGRAM)
    h = np.concatenate(parts)
    h *= _M
    h >>= np.uint64(64 - bits)
    return h.view(np.int64)  # < 2**bits, so the same values as a cast, without a copy
