"""Text normalisation before scanning, with offsets that map back to the original text.

NFKC folds look-alike forms (full-width letters, ligatures, circled digits) so full-width ``ignore`` (U+FF49 ...) matches
``ignore``; zero-width, bidi-control and Unicode tag characters are stripped and *counted*, because
hidden characters in a prompt are themselves an injection signal. Unicode tag characters
(U+E0020..U+E007E) mirror ASCII and are used to smuggle instructions invisibly, so their ASCII
reading is kept in :attr:`Normalized.smuggled` for the injection scanner.

Folding is per character (a combining sequence is not composed), which keeps the offset map exact:
every normalised character comes from exactly one original character.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass

# Zero-width and invisible formatting characters, bidi controls, and the tag block.
_HIDDEN_RANGES = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # arabic letter mark
    (0x115F, 0x1160),  # hangul fillers
    (0x17B4, 0x17B5),
    (0x180E, 0x180E),  # mongolian vowel separator
    (0x200B, 0x200F),  # zero-width space/joiners, LRM/RLM
    (0x202A, 0x202E),  # bidi embeddings/overrides
    (0x2060, 0x2064),  # word joiner, invisible operators
    (0x2066, 0x2069),  # bidi isolates
    (0x206A, 0x206F),
    (0x3164, 0x3164),  # hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # BOM / zero-width no-break space
    (0xFFA0, 0xFFA0),
    (0xE0000, 0xE007F),  # tag characters
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
_HIDDEN_RE = re.compile(
    "[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in _HIDDEN_RANGES) + "]"
)
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]")
# Variation selectors decorate emoji legitimately: stripped but not counted as hidden.
_BENIGN_HIDDEN = frozenset(range(0xFE00, 0xFE10)) | {0xFEFF}


@dataclass(frozen=True, slots=True)
class Normalized:
    """Normalised text plus the map back to the original.

    The map is a list of segments ``(norm_start, orig_start, kind)``: kind 0 is a run copied verbatim
    (offsets shift by a constant), kind 1 is the expansion of the single original character at
    ``orig_start``. No segments means the identity map (the common fast path).
    """

    original: str
    text: str
    hidden: int = 0
    smuggled: str = ""
    seg_norm: tuple[int, ...] = ()
    seg_orig: tuple[int, ...] = ()
    seg_kind: tuple[int, ...] = ()

    @property
    def identity(self) -> bool:
        """True when offsets in ``text`` are offsets in ``original``."""
        return not self.seg_norm

    def char_to_original(self, i: int) -> tuple[int, int]:
        """The original ``[start, end)`` of normalised character ``i``."""
        if not self.seg_norm:
            return i, i + 1
        k = bisect_right(self.seg_norm, i) - 1
        if k < 0:
            return 0, 0
        if self.seg_kind[k] == 0:
            s = self.seg_orig[k] + (i - self.seg_norm[k])
            return s, s + 1
        return self.seg_orig[k], self.seg_orig[k] + 1

    def span_to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a ``[start, end)`` span of the normalised text to the original text."""
        if not self.seg_norm:
            n = len(self.original)
            start = min(max(start, 0), n)
            return start, min(max(end, start), n)
        n = len(self.text)
        start = min(max(start, 0), n)
        end = min(max(end, start), n)
        if start == end:
            pos = self.char_to_original(start)[0] if start < n else len(self.original)
            return pos, pos
        return self.char_to_original(start)[0], self.char_to_original(end - 1)[1]


def normalize(text: str) -> Normalized:
    """NFKC-fold ``text`` per character, strip hidden characters, and keep the offset map."""
    if text.isascii():
        # ASCII is already NFKC and holds no hidden characters: no copy, identity offsets.
        return Normalized(original=text, text=text)
    return _normalize_unicode(text)


# Several scanners normalise the same text in one pipeline run; the slow (non-ASCII) path is cached.
@functools.lru_cache(maxsize=4)
def _normalize_unicode(text: str) -> Normalized:
    if text.isascii():
        # ASCII is already NFKC and holds no hidden characters: no copy, identity offsets.
        return Normalized(original=text, text=text)
    if _HIDDEN_RE.search(text) is None and unicodedata.is_normalized("NFKC", text):
        return Normalized(original=text, text=text)
    out: list[str] = []
    seg_norm: list[int] = []
    seg_orig: list[int] = []
    seg_kind: list[int] = []
    hidden = 0
    smuggled: list[str] = []
    npos = 0      # length of the normalised text so far
    copied = 0    # original index up to which text has been handled
    nfkc = unicodedata.normalize
    # Only non-ASCII characters can change; ASCII runs between them are copied as verbatim segments.
    for m in _NON_ASCII_RE.finditer(text):
        i = m.start()
        ch = m.group()
        cp = ord(ch)
        if _HIDDEN_RE.match(ch):
            folded = ""
            if cp not in _BENIGN_HIDDEN:
                hidden += 1
            if 0xE0020 <= cp <= 0xE007E:
                smuggled.append(chr(cp - 0xE0000))
        else:
            folded = nfkc("NFKC", ch)
            if folded == ch:
                continue  # unchanged: stays inside the current verbatim run
        if i > copied:
            out.append(text[copied:i])
            seg_norm.append(npos)
            seg_orig.append(copied)
            seg_kind.append(0)
            npos += i - copied
        if folded:
            out.append(folded)
            seg_norm.append(npos)
            seg_orig.append(i)
            seg_kind.append(1 if len(folded) > 1 else 0)
            npos += len(folded)
        copied = i + 1
    if copied < len(text):
        out.append(text[copied:])
        seg_norm.append(npos)
        seg_orig.append(copied)
        seg_kind.append(0)
    # Segments starting at the same normalised offset (a stripped character): keep the last one.
    norm_t, orig_t, kind_t = _dedupe(seg_norm, seg_orig, seg_kind)
    return Normalized(original=text, text="".join(out), hidden=hidden, smuggled="".join(smuggled),
                      seg_norm=norm_t or (0,), seg_orig=orig_t or (len(text),), seg_kind=kind_t or (0,))


def _dedupe(norm: list[int], orig: list[int], kind: list[int]) -> tuple[tuple[int, ...], ...]:
    n2: list[int] = []
    o2: list[int] = []
    k2: list[int] = []
    for a, b, c in zip(norm, orig, kind, strict=True):
        if n2 and n2[-1] == a:
            o2[-1], k2[-1] = b, c
        else:
            n2.append(a)
            o2.append(b)
            k2.append(c)
    return tuple(n2), tuple(o2), tuple(k2)
