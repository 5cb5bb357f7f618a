"""A tiny keyword screening pipeline with the same contract as ``soc2ai.scan.build_pipeline``.

``KeywordPipeline(block=["ignore previous"], redact=["4111 1111 1111 1111"], flag=["password"])`` returns
results with ``action``, ``findings``, ``text`` (redacted), ``decisions`` and ``elapsed_us``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from soc2ai.scan.interface import Action, Finding, Stage

_RANK = {Action.ALLOW: 0, Action.FLAG: 1, Action.REDACT: 2, Action.BLOCK: 3}


@dataclass(frozen=True, slots=True)
class KeywordResult:
    """What one pipeline run decided."""

    action: Action
    findings: list[Finding]
    text: str
    decisions: list[dict[str, Any]] = field(default_factory=list)
    elapsed_us: int = 0


class KeywordPipeline:
    """Case-insensitive keyword matching; per stage lists of words that block, redact or flag."""

    name = "keywords"
    version = "1"

    def __init__(self, *, block: Iterable[str] = (), redact: Iterable[str] = (), flag: Iterable[str] = (),
                 stages: Iterable[Stage] = (Stage.PRE, Stage.POST), media: Action = Action.BLOCK) -> None:
        self.rules = [(w.lower(), Action.BLOCK) for w in block] + [(w.lower(), Action.REDACT) for w in redact] \
            + [(w.lower(), Action.FLAG) for w in flag]
        self.stages = frozenset(stages)
        self.media = Action(media)  # what happens to images, audio, files (the ``media`` policy)
        self.runs = 0

    def screen_media(self, kinds: Iterable[str], stage: Stage = Stage.PRE) -> KeywordResult:
        """Parts the keywords cannot read get ``media`` (see ``soc2ai.scan.Pipeline.screen_media``)."""
        kinds = sorted(set(kinds))
        if not kinds or self.media is Action.ALLOW:
            return KeywordResult(Action.ALLOW, [], "")
        return KeywordResult(self.media, [Finding(k, 0, 0, 1.0, "media-part", "media", self.media) for k in kinds],
                             "", [{"stage": str(stage), "scanner": "media", "decision": str(self.media),
                                   "types": kinds}])

    def run(self, text: str, *, stage: Stage = Stage.PRE, redact_key: Any = None) -> KeywordResult:
        """Scan ``text`` at ``stage``; the strongest action wins; redacted spans become ``[REDACTED]``."""
        t0 = time.perf_counter_ns()
        self.runs += 1
        if stage not in self.stages:
            return KeywordResult(Action.ALLOW, [], text)
        low = text.lower()
        findings: list[Finding] = []
        for word, action in self.rules:
            start = low.find(word)
            while start >= 0 and word:
                findings.append(Finding("KEYWORD", start, start + len(word), 1.0, f"kw:{word}", self.name,
                                        action))
                start = low.find(word, start + len(word))
        action = max((f.action for f in findings), key=_RANK.__getitem__, default=Action.ALLOW)
        out = text
        for f in sorted((f for f in findings if f.action is Action.REDACT), key=lambda f: -f.start):
            out = out[:f.start] + "[REDACTED]" + out[f.end:]
        decisions = [{"stage": str(stage), "scanner": self.name, "decision": str(action),
                      "types": sorted({f.entity_type for f in findings})}] if findings else []
        return KeywordResult(action, findings, out, decisions, (time.perf_counter_ns() - t0) // 1000)
