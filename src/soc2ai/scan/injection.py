"""Prompt-injection detection: a rules tier and a small learned model, combined into one score.

Rules catch the shapes that generalise across datasets (instruction overrides, chat-template tokens,
system-prompt exfiltration, persona jailbreaks, payloads hidden in base64 or Unicode tag characters);
the model (hashed n-grams + logistic regression, weights shipped in ``injection_model.npz``, trained by
``scripts/train_injection.py``) catches paraphrases. Scores combine as a noisy-or,
``1 - (1 - p_model) * prod(1 - p_rule)``, compared with one configurable threshold.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt

from soc2ai.scan._features import featurize, fold
from soc2ai.scan._keywords import KeywordGate
from soc2ai.scan.interface import Finding
from soc2ai.scan.normalize import _BENIGN_HIDDEN, _HIDDEN_RE, Normalized, normalize

VERSION = "1.0.0"
MODEL_FILE = "injection_model.npz"

_W = r"[\w'-]*"  # word tail: "instruction" matches "instructions"
# (rule id, score, literal keywords (any must occur in the lower-cased text), pattern over lower-cased text).
# The keyword check runs in C and skips most patterns on most prompts.
_RULE_SPECS: tuple[tuple[str, float, tuple[str, ...], str], ...] = (
    ("override", 0.9,
     ("ignore", "ignoring", "disregard", "forget", "override", "bypass", "set", "abandon", "discard", "overrule",
      "skip"),
     r"\b(?:ignore|disregard|forget|override|bypass|set aside|abandon|discard|overrule|skip)\b"
     r"[^.\n]{0,40}?\b(?:previous|prior|above|earlier|preceding|all|any|your|system|original|initial|"
     r"developer'?s?|existing|old|these|those|the)\b[^.\n]{0,30}?\b(?:instruction|rule|guideline|directive|"
     r"prompt|constraint|polic|programming|restriction|guardrail|safety|filter)" + _W),
    ("override.everything", 0.8, ("ignore", "disregard", "forget", "never mind"),
     r"\b(?:ignore|disregard|forget)\s+(?:everything|all|anything|whatever)\s+(?:above|before|"
     r"previously|said|written|i said|you were told|prior)|\bnever mind (?:the|my|your|all|what)\b"
     r"[^\n]{0,60}?\binstead\b"),
    ("override.new", 0.8,
     ("instruction", "instructions", "task", "tasks", "rule", "rules", "directive", "directives", "now",
      "void", "canceled", "cancelled", "revoked", "outdated", "null", "obsolete"),
     r"\b(?:new|real|actual|updated|true|revised)\s+(?:system\s+)?(?:instructions?|task|rules|directive)s?"
     r"\s*(?::|are|is)\b|\bfrom now on,? (?:you|ignore|disregard|your)|"
     r"\b(?:previous|prior|above|system) (?:instructions?|message|prompt|rules) (?:is|are) "
     r"(?:void|cancel+ed|revoked|outdated|null|obsolete)|all prior rules are revoked"),
    ("template", 0.75,
     ("<|", "inst]", "<<sys>>", "<sys", "</sys", "##", "human", "assistant", "system", "systems", "sys",
      "instruction", "instructions"),
     r"<\|(?:im_start|im_end|system|user|assistant|endoftext|end|begin_of_text|start_header_id)\|>|"
     r"\[/?inst\]|<<sys>>|</?(?:system|sys)>|^\s*#{2,}\s*(?:system|instruction)s?\s*:?\s*$|"
     r"###\s*system\s*###|\n\s*(?:human|assistant|system)\s*:"),
    ("exfil", 0.85,
     ("prompt", "system", "instruction", "instructions", "configuration", "guidelines", "rules", "context",
      "above", "before", "developer"),
     r"\b(?:reveal|show|print|output|repeat|display|tell me|leak|dump|spell out|quote|share|disclose|"
     r"what (?:is|are|were|does))\b[^.\n?]{0,40}?\b(?:system (?:prompt|message|instructions?)|"
     r"initial (?:prompt|instructions?)|(?:hidden|secret|original|exact) (?:instructions?|prompt|rules|"
     r"configuration)|developer (?:message|instructions?|prompt)|your (?:instructions?|prompt|"
     r"configuration|guidelines|rules|initial|context window)|instructions you were given|"
     r"(?:text|everything) (?:above|before))"),
    ("persona", 0.7,
     ("anything", "dan", "jailbroken", "jailbreak", "developer", "rules", "restrictions", "limits", "filters",
      "guidelines", "censorship", "uncensored", "complies"),
     r"\b(?:do anything now|dan mode|jailbroken|jailbreak mode|developer mode (?:is )?(?:enabled|on|ignores)|"
     r"no (?:rules|restrictions|limits|filters|guidelines)\b(?! (?:apply|for kids))|"
     r"(?:without|free from|freed from) (?:any |your )?(?:restrictions|rules|filters|guidelines|"
     r"censorship)|uncensored (?:one|ai|assistant|mode|version|model|persona)|"
     r"never (?:been )?given any restrictions|always complies)"),
    ("indirect", 0.7,
     ("ai", "assistant", "model", "llm", "bot", "screener", "agent", "language", "<!--"),
     r"\b(?:to the (?:ai|assistant|model|llm|bot)(?: reading this)?|note to (?:the )?(?:ai|llm|model|"
     r"assistant|screener)|if you are an? (?:ai|llm|language model|agent|assistant)|"
     r"(?:ai|assistant|llm|model) instruction|instruction for the (?:model|ai|assistant)|"
     r"(?:assistant|ai|llm),? (?:disregard|ignore) the user)\b|"
     r"<!--[^>]{0,200}?\b(?:ai|assistant|llm|model|agent|gpt|claude)\b\s*[:,]"),
    ("override.i18n", 0.9, ("ignora", "ignoriere", "ignorez", "ignore", "olvida", "vergiss", "oublie", "dimentica"),
     r"\b(?:ignora|ignoriere|ignorez|ignore|olvida|vergiss|oublie|dimentica)\b[^.\n]{0,30}?"
     r"\b(?:instrucciones|anweisungen|instructions|istruzioni|regeln|règles|reglas|regole)\b"),
)
_RULES: tuple[tuple[str, float, tuple[str, ...], re.Pattern[str]], ...] = tuple(
    (rid, score, kws, re.compile(rx, re.S | re.M)) for rid, score, kws, rx in _RULE_SPECS
)
_GATE = KeywordGate([kws for _, _, kws, _ in _RULES])
_B64_RE = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}+={0,2}")


@dataclass(frozen=True, slots=True)
class InjectionScore:
    """The combined score and what contributed to it."""

    score: float
    model: float
    rules: tuple[str, ...]
    hidden: int


@functools.lru_cache(maxsize=4)
def _load_model(path: str | None = None) -> tuple[npt.NDArray[np.float32], float, int, str]:
    if path is None:
        ref = resources.files("soc2ai.scan").joinpath(MODEL_FILE)
        with resources.as_file(ref) as p, np.load(p, allow_pickle=False) as z:
            return _unpack(z)
    with np.load(path, allow_pickle=False) as z:
        return _unpack(z)


def _unpack(z: np.lib.npyio.NpzFile) -> tuple[npt.NDArray[np.float32], float, int, str]:
    w = z["w"].astype(np.float32)
    bits = int(z["bits"][0])
    if w.shape != (1 << bits,):
        raise ValueError(f"injection model weights have shape {w.shape}, expected {(1 << bits,)}")
    meta = str(z["meta"])
    digest = json.loads(meta).get("train_sha256", "")[:12]
    return w, float(z["b"][0]), bits, digest


class InjectionScanner:
    """Rules + learned model; one ``PROMPT_INJECTION`` finding when the combined score passes."""

    name = "injection"
    version = VERSION

    def __init__(self, *, threshold: float = 0.5, window: int = 4096, model_path: str | None = None,
                 use_model: bool = True, use_rules: bool = True) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be within [0, 1]")
        self.threshold = threshold
        self.window = window
        self.use_rules = use_rules
        self._model = _load_model(model_path) if use_model else None
        if self._model is not None:
            self.version = f"{VERSION}+{self._model[3]}"

    def model_score(self, text: str, *, folded: str | None = None) -> float:
        """The learned model's probability for ``text`` (windowed; maximum over windows).

        ``folded`` (``fold(text)``) saves folding twice when ``text`` fits in one window.
        """
        if self._model is None or not text:
            return 0.0
        w, b, bits, _ = self._model
        best = 0.0
        step = self.window
        one_window = len(text) <= step + 64
        for i in range(0, max(len(text), 1), step):
            idx = featurize(text[i : i + step + 64], bits, folded=folded if one_window else None)
            if len(idx) == 0:
                continue
            z = b + float(w[idx].sum()) / math.sqrt(len(idx))
            best = max(best, 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0))))
        return best

    def _rules(self, text: str) -> list[tuple[str, float, int, int]]:
        low = text.lower()
        same_len = len(low) == len(text)  # a few characters change length when lower-cased
        hits: list[tuple[str, float, int, int]] = []
        words = _GATE.words(low)
        if not _GATE.any_open(words, low):
            return hits
        for i, (rid, score, _, rx) in enumerate(_RULES):
            if not _GATE.open(i, words, low):
                continue
            m = rx.search(low)
            if m:
                hits.append((rid, score, m.start(), m.end()) if same_len else (rid, score, 0, len(text)))
        return hits

    def score(self, text: str) -> InjectionScore:
        """Score ``text`` without building findings."""
        return self._score(text)[0]

    def _score(self, text: str) -> tuple[InjectionScore, list[tuple[str, float, int, int]], Normalized]:
        norm = normalize(text)
        t = norm.text
        hits: list[tuple[str, float, int, int]] = []
        folded = fold(t) if len(t) <= self.window + 64 else None
        if self.use_rules and t:
            plain_hits = self._rules(t)
            hits.extend(plain_hits)
            if not plain_hits and folded is not None and folded != " ".join(t.lower().split()):
                hits.extend((r, s, 0, len(t)) for r, s, _, _ in self._rules(folded))  # leetspeak
            if norm.smuggled:
                hits.append(("hidden.tags", 0.9 if len(norm.smuggled) > 6 else 0.3, 0, len(t)))
            elif norm.hidden >= 3:
                hits.append(("hidden.chars", 0.6, 0, len(t)))
            for m in _B64_RE.finditer(t[:65536]):
                decoded = _b64_text(m.group())
                if decoded and (self._rules(decoded) or self.model_score(decoded) >= self.threshold):
                    hits.append(("encoded.base64", 0.85, m.start(), m.end()))
                    break
        if norm.smuggled:
            p_model = self.model_score(t + " " + norm.smuggled)
        else:
            p_model = self.model_score(t, folded=folded)
        rest = 1.0 - p_model
        for _, s, _, _ in hits:
            rest *= 1.0 - s
        combined = 1.0 - rest
        return InjectionScore(combined, p_model, tuple(h[0] for h in hits), norm.hidden), hits, norm

    def scan(self, text: str) -> list[Finding]:
        """``PROMPT_INJECTION`` (whole text, or the rule's span) and ``HIDDEN_CHARACTERS`` findings."""
        if not text:
            return []
        sc, hits, norm = self._score(text)
        out: list[Finding] = []
        if sc.hidden:
            out.extend(Finding("HIDDEN_CHARACTERS", m.start(), m.end(), 1.0, "injection.hidden", self.name)
                       for m in _HIDDEN_RE.finditer(text) if ord(m.group()) not in _BENIGN_HIDDEN)
        if sc.score >= self.threshold:
            start, end = 0, len(text)
            if hits and hits[0][3] - hits[0][2] < len(norm.text):
                start, end = norm.span_to_original(hits[0][2], hits[0][3])
            out.append(Finding("PROMPT_INJECTION", start, end, round(sc.score, 4),
                               "injection." + (sc.rules[0] if sc.rules else "model"), self.name,
                               meta={"model": f"{sc.model:.4f}", "rules": ",".join(sc.rules)}))
        return out


def _b64_text(blob: str) -> str | None:
    try:
        raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(c.isprintable() or c.isspace() for c in s)
    return s if s and printable / len(s) > 0.95 and any(c == " " for c in s) else None
