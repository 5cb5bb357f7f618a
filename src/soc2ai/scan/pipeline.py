"""The screening pipeline the gateway and SDK wrappers call: scanners -> policy -> one decision.

::

    pipe = build_pipeline(settings)
    res = pipe.run(prompt, Stage.PRE)          # res.action: allow | flag | redact | block
    res = pipe.run(output, Stage.POST, redact_key=subject_key)

The policy maps each finding (by type, then category, then ``"*"``) to an action per stage; the result's
action is the strongest (block > redact > flag > allow). ``decisions`` is shaped for the ledger's
``scans`` field.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from soc2ai.scan.classify import category_of
from soc2ai.scan.interface import Action, Finding, Scanner, Stage
from soc2ai.scan.redact import redact
from soc2ai.scan.settings import ScanSettings

_RANK = {Action.ALLOW: 0, Action.FLAG: 1, Action.REDACT: 2, Action.BLOCK: 3}
# Which policy categories each scanner can produce; a scanner whose categories are all "allow" at a stage
# (and that has no type-level override) is skipped there.
_SCANNER_CATEGORIES = {"pii": ("pii",), "ner": ("pii",), "secrets": ("secret",),
                       "injection": ("injection", "hidden"), "moderation": ("moderation",),
                       "canary": ("canary",)}


def strongest(actions: Sequence[Action]) -> Action:
    """The strongest action: block > redact > flag > allow (``allow`` for none)."""
    return max(actions, key=_RANK.__getitem__, default=Action.ALLOW)


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """Outcome of one screening run."""

    action: Action
    findings: list[Finding]
    text: str
    decisions: list[dict[str, Any]] = field(default_factory=list)
    elapsed_us: int = 0

    @property
    def blocked(self) -> bool:
        """True when the policy says block."""
        return self.action is Action.BLOCK

    @property
    def flagged(self) -> bool:
        """True when anything was found that the policy does not simply allow."""
        return self.action is not Action.ALLOW


class Pipeline:
    """Runs the configured scanners for a stage and applies the policy."""

    def __init__(self, settings: ScanSettings, scanners: Mapping[Stage, Sequence[Scanner]]) -> None:
        self.settings = settings
        self._policy = {Stage.PRE: dict(settings.policy.pre), Stage.POST: dict(settings.policy.post)}
        self._scanners = {stage: tuple(s for s in scanners.get(stage, ()) if self._active(s, stage))
                          for stage in Stage}
        self._instructions: Pipeline | None = None
        self._remote = any(getattr(getattr(s, "moderator", None), "name", "") == "moderation.openai"
                           for ss in self._scanners.values() for s in ss)

    def _active(self, scanner: Scanner, stage: Stage) -> bool:
        policy = self._policy[stage]
        cats = _SCANNER_CATEGORIES.get(scanner.name)
        if cats is None:
            return True
        if any(policy.get(c, policy.get("*", "flag")) != "allow" for c in cats):
            return True
        # Type-level keys (EMAIL_ADDRESS = "redact") may still enable a scanner whose category allows.
        return any(k.isupper() and v != "allow" and category_of(k) in cats for k, v in policy.items())

    def for_instructions(self) -> Pipeline:
        """The pipeline for the deployer's own instructions (system / developer prompts, ``instructions``):
        this one without injection screening, unless ``screen_instructions_for_injection`` is set.
        Scanner instances are shared."""
        if self.settings.screen_instructions_for_injection:
            return self
        if self._instructions is None:
            # Type-level keys (PROMPT_INJECTION = "block") would otherwise keep the injection scanner on.
            pre = {k: v for k, v in self.settings.policy.pre.items()
                   if not (k.isupper() and category_of(k) in ("injection", "hidden"))}
            pre.update(injection="allow", hidden="allow")
            settings = self.settings.model_copy(update={"policy": self.settings.policy.model_copy(update={"pre": pre})})
            derived = Pipeline(settings, self._scanners)
            derived._instructions = derived
            self._instructions = derived
        return self._instructions

    @property
    def scanners(self) -> dict[Stage, tuple[Scanner, ...]]:
        """The scanners that run at each stage (after skipping those the policy allows entirely)."""
        return dict(self._scanners)

    def versions(self) -> dict[str, str]:
        """Scanner name -> version, for receipts and ledger records."""
        out: dict[str, str] = {}
        for stage_scanners in self._scanners.values():
            for s in stage_scanners:
                out[s.name] = s.version
        return out

    def action_for(self, entity_type: str, stage: Stage) -> Action:
        """Policy lookup: exact type, then category, then ``"*"``, else flag."""
        policy = self._policy[stage]
        if entity_type == "MODERATION_ERROR" and self.settings.moderation.on_error == "open":
            return Action.FLAG
        value = policy.get(entity_type) or policy.get(category_of(entity_type)) or policy.get("*") or "flag"
        return Action(value)

    def run(self, text: str, stage: Stage | str, *, redact_key: bytes | None = None) -> PipelineResult:
        """Scan ``text`` at ``stage`` and decide. Never raises on content; empty text is allowed."""
        t0 = time.perf_counter_ns()
        stage = Stage(stage)
        if not self.settings.enabled or not text:
            return PipelineResult(Action.ALLOW, [], text, [], (time.perf_counter_ns() - t0) // 1000)
        findings: list[Finding] = []
        decisions: list[dict[str, Any]] = []
        for scanner in self._scanners[stage]:
            found = scanner.scan(text)
            if not found:
                continue
            found = [dataclasses.replace(f, action=self.action_for(f.entity_type, stage)) for f in found]
            findings.extend(found)
            decisions.append({"stage": stage.value, "scanner": scanner.name,
                              "decision": strongest([f.action for f in found]).value,
                              "types": sorted({f.entity_type for f in found})})
        action = strongest([f.action for f in findings])
        out_text = text
        to_redact = [f for f in findings if f.action is Action.REDACT]
        # Redacted even when something else blocks: callers that redact a request part by part (after the
        # whole request was judged redact) send the part, and a part can score higher alone than in the
        # whole. Without this, a secret in such a part went out unredacted.
        if to_redact:
            mode = self.settings.redaction_mode
            if mode == "hash" and not redact_key:
                mode = "tag"  # no key for this tenant/subject: a bare hash would be reversible, so tag
            out_text = redact(text, to_redact, mode, key=redact_key)
        return PipelineResult(action, findings, out_text, decisions, (time.perf_counter_ns() - t0) // 1000)


    def screen_media(self, kinds: Sequence[str], stage: Stage | str = Stage.PRE) -> PipelineResult:
        """Decide on request parts the scanners cannot read (``MEDIA_IMAGE``, ``MEDIA_AUDIO``, ``MEDIA_FILE``,
        ``MEDIA_VIDEO``; see :func:`soc2ai.gateway.core.media_kinds`) by the policy: category ``media``,
        block by default; ``flag`` forwards them and marks the record. A part cannot be partly removed, so
        a ``redact`` reached through ``"*"`` blocks (fail closed)."""
        t0 = time.perf_counter_ns()
        stage = Stage(stage)
        if not self.settings.enabled or not kinds:
            return PipelineResult(Action.ALLOW, [], "", [], (time.perf_counter_ns() - t0) // 1000)
        findings = []
        for kind in kinds:
            action = self.action_for(kind, stage)
            findings.append(Finding(kind, 0, 0, 1.0, "media-part", "media",
                                    Action.BLOCK if action is Action.REDACT else action))
        action = strongest([f.action for f in findings])
        decisions = [{"stage": stage.value, "scanner": "media", "decision": action.value,
                      "types": sorted(set(kinds))}] if action is not Action.ALLOW else []
        return PipelineResult(action, findings, "", decisions, (time.perf_counter_ns() - t0) // 1000)

    async def arun(self, text: str, stage: Stage | str, *, redact_key: bytes | None = None) -> PipelineResult:
        """:meth:`run` for async callers: in a worker thread when a scanner does network I/O (the
        OpenAI moderator), inline otherwise (the local scanners take about a millisecond)."""
        if self._remote:
            import asyncio

            return await asyncio.to_thread(self.run, text, stage, redact_key=redact_key)
        return self.run(text, stage, redact_key=redact_key)


def build_scanners(settings: ScanSettings, *, moderation_api_key: str | None = None,
                   moderation_transport: Any = None) -> dict[Stage, list[Scanner]]:
    """The scanner instances for each stage, per settings (shared instances are thread-safe)."""
    from soc2ai.scan.canary import CanaryScanner
    from soc2ai.scan.injection import InjectionScanner
    from soc2ai.scan.pii import PiiScanner
    from soc2ai.scan.secrets import SecretsScanner

    pre: list[Scanner] = []
    post: list[Scanner] = []
    if settings.injection:
        inj = InjectionScanner(threshold=settings.injection_threshold, window=settings.injection_window)
        pre.append(inj)
        post.append(inj)
    if settings.pii:
        pii = PiiScanner(phone_regions=settings.phone_regions, stdnum_packs_enabled=settings.stdnum_packs)
        pre.append(pii)
        post.append(pii)
    if settings.ner:
        from soc2ai.scan.ner import NerScanner

        ner = NerScanner(settings.ner_model)
        pre.append(ner)
        post.append(ner)
    if settings.secrets:
        sec = SecretsScanner(high_entropy=settings.high_entropy_secrets)
        pre.append(sec)
        post.append(sec)
    if settings.moderation.provider != "off":
        from soc2ai.scan.moderation import LocalModerator, ModerationScanner

        if settings.moderation.provider == "openai":
            from soc2ai.scan.moderation_openai import OpenAIModerator

            mod: Scanner = ModerationScanner(OpenAIModerator(
                base_url=settings.moderation.base_url, api_key=moderation_api_key,
                model=settings.moderation.model, timeout_s=settings.moderation.timeout_s,
                transport=moderation_transport))
        else:
            mod = ModerationScanner(LocalModerator(threshold=settings.moderation.threshold))
        pre.append(mod)
        post.append(mod)
    if settings.canary_tokens:
        post.append(CanaryScanner(settings.canary_tokens))
    return {Stage.PRE: pre, Stage.POST: post}


def build_pipeline(settings: ScanSettings | None = None, *, moderation_api_key: str | None = None,
                   moderation_transport: Any = None) -> Pipeline:
    """The default pipeline for ``settings`` (``ScanSettings()`` defaults when omitted).

    ``moderation_api_key`` is the key for ``moderation.provider = "openai"`` (the caller reads it from
    its configuration); ``moderation_transport`` is an ``httpx`` transport for tests.
    """
    settings = settings or ScanSettings()
    return Pipeline(settings, dict(build_scanners(settings, moderation_api_key=moderation_api_key,
                                                  moderation_transport=moderation_transport)))
