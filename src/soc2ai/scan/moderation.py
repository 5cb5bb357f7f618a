"""Local content moderation (weighted phrase rules) and the adapter that turns verdicts into findings.

The local moderator is a transparent baseline, not a replacement for a trained model: each category has
a few weighted patterns (threat + target, slur-free hate framings, self-harm intent, sexual content
involving minors, weapon / drug synthesis requests). Benign idioms that share words ("kill the
process", "shoot a photo", "drug interactions") are excluded by the patterns' shape. For stronger
coverage configure ``provider = "openai"`` (see :mod:`soc2ai.scan.moderation_openai`).
"""

from __future__ import annotations

import re

from soc2ai.scan._keywords import KeywordGate
from soc2ai.scan.interface import MODERATION_CATEGORIES, Finding, ModerationResult, Moderator
from soc2ai.scan.normalize import normalize

VERSION = "1.0.0"

_YOU = r"(?:you|u|ya|your (?:family|kids|wife|husband|mother|mom))"
_GROUP = (r"(?:immigrants|muslims|jews|christians|black people|white people|asians|mexicans|gay people|gays|"
          r"lesbians|trans people|women|men|arabs|refugees|disabled people|hindus|africans|latinos)")
_RULES: dict[str, tuple[tuple[float, str], ...]] = {
    "harassment": (
        (0.8, r"\b(?:you(?:'re| are)|u r|ur) (?:a |an |such an? )?(?:worthless|pathetic|disgusting|stupid|"
              r"idiot|moron|loser|piece of (?:shit|garbage|trash)|waste of space|ugly)\b"),
        (0.7, r"\b(?:nobody|no one) (?:likes|loves|wants) you\b|\bshut (?:the fuck )?up,? (?:you|idiot)\b"),
        (0.6, r"\b(?:fuck you|screw you|go to hell)\b"),
    ),
    "harassment/threatening": (
        (0.9, r"\bi(?:'m| am)? (?:going to|gonna|will) (?:kill|hurt|beat|stab|shoot|find|destroy|rape) "
              + _YOU + r"\b"),
        (0.8, r"\b(?:watch your back|you(?:'ll| will) (?:regret|pay for) (?:this|it)|i know where you live)\b"),
    ),
    "hate": (
        (0.85, _GROUP + r" (?:are|is) (?:all )?(?:animals|vermin|subhuman|parasites|a disease|inferior|"
                        r"filth|savages|scum)\b"),
        (0.7, r"\b(?:i hate|we should hate|death to) (?:all )?" + _GROUP + r"\b"),
        (0.6, _GROUP + r" (?:don't|do not) deserve (?:rights|to live|respect)"),
    ),
    "hate/threatening": (
        (0.9, r"\b(?:kill|exterminate|wipe out|get rid of|gas|deport and kill) (?:all (?:the )?)?" + _GROUP
              + r"\b"),
    ),
    "illicit": (
        (0.8, r"\bhow (?:do i|to|can i|would i) (?:make|cook|synthesi[sz]e|produce|manufacture) "
              r"(?:meth(?:amphetamine)?|crack|heroin|fentanyl|lsd|mdma|cocaine)\b"),
        (0.75, r"\bhow (?:do i|to|can i) (?:launder money|steal (?:a|someone's) (?:car|identity|credit card)|"
               r"shoplift|hack into (?:someone|my ex|my neighbou?r|a bank)|buy (?:drugs|a gun) without|"
               r"evade taxes|forge (?:a |an )?(?:passport|id|signature|check|cheque))"),
        (0.7, r"\b(?:write|create|make) (?:me )?(?:a |some )?(?:ransomware|keylogger|credit card skimmer|"
              r"phishing (?:email|page|kit))\b"),
    ),
    "illicit/violent": (
        (0.9, r"\bhow (?:do i|to|can i) (?:make|build|assemble) (?:a |an )?(?:bomb|pipe bomb|explosive|"
              r"molotov|ied|nerve agent|bioweapon|ghost gun|silencer)\b"),
        (0.8, r"\b(?:poison|kill|murder) (?:someone|my (?:husband|wife|boss|neighbou?r)) without (?:getting "
              r"caught|anyone knowing)\b"),
    ),
    "self-harm": (
        (0.7, r"\b(?:i (?:cut|burn|hurt) myself|self[- ]harm(?:ing)? (?:again|tonight|helps))\b"),
    ),
    "self-harm/intent": (
        (0.9, r"\bi (?:want|plan|am going|'m going|intend) to (?:kill myself|end (?:my life|it all)|die|"
              r"commit suicide)\b|\bi don't want to (?:live|be alive) anymore\b"),
    ),
    "self-harm/instructions": (
        (0.9, r"\b(?:how (?:do i|to|can i)|best way to|painless way to) (?:kill myself|commit suicide|"
              r"end my life|overdose on)\b|\bhow many (?:pills|tablets) (?:would|does it) (?:it )?take to die\b"),
    ),
    "sexual": (
        (0.7, r"\b(?:explicit|graphic|erotic) (?:sex|sexual|porn\w*) (?:story|scene|content|description)\b"),
        (0.6, r"\b(?:send (?:me )?nudes|describe (?:your|her|his) naked body)\b"),
    ),
    "sexual/minors": (
        (1.0, r"\b(?:sex(?:ual)?|erotic|nude|naked)\b[^.\n]{0,40}\b(?:child|children|kid|minor|underage|"
              r"\d{1,2}[- ]year[- ]old|teen(?:ager)?s?|schoolgirl|schoolboy)\b"),
    ),
    "violence": (
        (0.7, r"\b(?:i (?:want|'m going|am going|will) to) (?:kill|stab|shoot|murder|beat up) (?:him|her|them|"
              r"my (?:boss|teacher|neighbou?r|ex|classmates?|coworkers?))\b"),
        (0.7, r"\b(?:shoot up|bomb) (?:the|my|a) (?:school|office|church|mosque|synagogue|mall|concert)\b"),
    ),
    "violence/graphic": (
        (0.8, r"\b(?:describe|write)\b[^.\n]{0,30}\b(?:in (?:gory|graphic) detail|dismember\w*|disembowel\w*|"
              r"blood (?:everywhere|spurting)|torture scene)\b"),
    ),
}
# Literal keywords per rule (same order as _RULES): a rule's regex runs only if one occurs (C-speed `in`).
_GROUP_WORDS = tuple(g.split()[0] for g in _GROUP[3:-1].split("|"))
_KEYWORDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "harassment": (("you", "u", "ur"), ("nobody", "no", "shut"), ("fuck", "screw", "hell")),
    "harassment/threatening": (("kill", "hurt", "beat", "stab", "shoot", "find", "destroy", "rape"),
                               ("watch", "regret", "pay", "live")),
    "hate": (_GROUP_WORDS, ("hate", "death"), ("deserve",)),
    "hate/threatening": (("kill", "exterminate", "wipe", "rid", "gas", "deport"),),
    "illicit": (("meth", "methamphetamine", "crack", "heroin", "fentanyl", "lsd", "mdma", "cocaine"),
                ("launder", "steal", "shoplift", "hack", "buy", "evade", "forge"),
                ("ransomware", "keylogger", "skimmer", "phishing")),
    "illicit/violent": (("bomb", "explosive", "molotov", "ied", "nerve", "bioweapon", "ghost", "silencer"),
                        ("poison", "kill", "murder")),
    "self-harm": (("myself", "self"),),
    "self-harm/intent": (("kill", "end", "die", "suicide", "live", "alive"),),
    "self-harm/instructions": (("kill", "suicide", "end", "overdose", "die"),),
    "sexual": (("explicit", "graphic", "erotic"), ("send", "describe")),
    "sexual/minors": (("sex", "sexual", "erotic", "nude", "naked"),),
    "violence": (("kill", "stab", "shoot", "murder", "beat"), ("shoot", "bomb")),
    "violence/graphic": (("describe", "write"),),
}
_COMPILED = {cat: tuple((w, _KEYWORDS[cat][i], re.compile(rx)) for i, (w, rx) in enumerate(rules))
             for cat, rules in _RULES.items()}
_GATES = {cat: KeywordGate(groups) for cat, groups in _KEYWORDS.items()}
# Parent categories are flagged whenever a subcategory is.
_PARENT = {c: c.split("/")[0] for c in MODERATION_CATEGORIES if "/" in c}


class LocalModerator:
    """Rule-based moderator over the OpenAI moderation categories; no network, microseconds per call."""

    name = "moderation.local"
    version = VERSION

    def __init__(self, *, threshold: float = 0.5) -> None:
        self.threshold = threshold

    def moderate(self, text: str) -> ModerationResult:
        """Score each category as the maximum weight of its matching rules."""
        t = normalize(text).text.lower() if text else ""
        scores = dict.fromkeys(MODERATION_CATEGORIES, 0.0)
        words = KeywordGate.words(t)
        for cat, rules in _COMPILED.items():
            gate = _GATES[cat]
            if not gate.any_open(words, t):
                continue  # no keyword of this category: most categories on most texts
            for i, (weight, _, rx) in enumerate(rules):
                if weight > scores[cat] and gate.open(i, words, t) and rx.search(t):
                    scores[cat] = weight
        for child, parent in _PARENT.items():
            scores[parent] = max(scores[parent], scores[child])
        cats = {c: s >= self.threshold for c, s in scores.items()}
        return ModerationResult(any(cats.values()), cats, scores, self.name)


class ModerationScanner:
    """Adapter: a :class:`Moderator` as a :class:`Scanner` (one finding per flagged leaf category)."""

    name = "moderation"

    def __init__(self, moderator: Moderator) -> None:
        self.moderator = moderator
        self.version = f"{moderator.name}@{moderator.version}"

    def scan(self, text: str) -> list[Finding]:
        """``MODERATION_<CATEGORY>`` findings spanning the text; ``MODERATION_ERROR`` if the provider failed."""
        if not text:
            return []
        res = self.moderator.moderate(text)
        if res.error is not None:
            return [Finding("MODERATION_ERROR", 0, len(text), 1.0, "moderation.error", self.name,
                            meta={"provider": res.provider, "error": res.error[:200]})]
        flagged = [c for c, on in res.categories.items() if on]
        # Report the most specific categories only: "violence/graphic" implies "violence".
        leaves = [c for c in flagged if not any(o != c and o.startswith(c + "/") for o in flagged)]
        return [Finding("MODERATION_" + c.upper().replace("/", "_").replace("-", "_"), 0, len(text),
                        round(res.scores.get(c, 1.0), 4), f"moderation.{c}", self.name,
                        meta={"category": c, "provider": res.provider})
                for c in sorted(leaves)]
