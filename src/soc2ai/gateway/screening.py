"""The screening contract the gateway and the SDK wrappers use, and the glue to ``soc2ai.scan``.

A pipeline is anything with ``run(text, *, stage, redact_key) -> result`` where the result has
``action`` (allow | flag | redact | block), ``findings``, ``text`` (redacted when the action is redact),
``decisions`` and ``elapsed_us`` — what ``soc2ai.scan.build_pipeline`` returns, or
:class:`soc2ai.testing.scanners.KeywordPipeline` in tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any, Protocol

from soc2ai.scan.interface import Action, Finding, Stage

if TYPE_CHECKING:
    from soc2ai.config import Config


class ScanResult(Protocol):
    """What one pipeline run decided."""

    @property
    def action(self) -> Action: ...
    @property
    def findings(self) -> Sequence[Any]: ...
    @property
    def text(self) -> str: ...
    @property
    def decisions(self) -> Sequence[Any]: ...


class Pipeline(Protocol):
    """Runs the configured scanners on one text at one stage."""

    def run(self, text: str, *, stage: Stage, redact_key: Any = None) -> ScanResult:
        """Scan (and, per policy, redact) ``text``."""
        ...


def instructions_pipeline(pipeline: Pipeline | None) -> Pipeline | None:
    """The pipeline for the deployer's own instructions (system / developer prompts): ``soc2ai.scan``'s
    :meth:`~soc2ai.scan.pipeline.Pipeline.for_instructions` (no injection screening by default); any
    other pipeline screens them like the rest."""
    derive = getattr(pipeline, "for_instructions", None)
    return derive() if callable(derive) else pipeline


def screen_media(pipeline: Pipeline, kinds: Sequence[str]) -> ScanResult:
    """The pre-generation decision on request parts the scanners cannot read (``kinds``: see
    :func:`soc2ai.gateway.core.media_kinds`): ``soc2ai.scan``'s
    :meth:`~soc2ai.scan.pipeline.Pipeline.screen_media` (the ``media`` policy); a pipeline without that
    method blocks them (fail closed: it has not said it may forward what it did not screen)."""
    from soc2ai.scan.pipeline import PipelineResult

    decide = getattr(pipeline, "screen_media", None)
    if callable(decide):
        result: ScanResult = decide(kinds, Stage.PRE)
        return result
    return PipelineResult(Action.BLOCK, [Finding(k, 0, 0, 1.0, "media-part", "media", Action.BLOCK) for k in kinds],
                          "", [{"stage": Stage.PRE.value, "scanner": "media", "decision": "block",
                                "types": sorted(set(kinds))}])


def blocked_message(result: ScanResult) -> str:
    """The error for a blocked request: the finding types (never the matched text), and for parts the
    scanners cannot read, how to forward them."""
    types = finding_types(result)
    hint = (' (screening reads text only; [scan.policy.pre] media = "flag" forwards such parts, marked in '
            "the audit record)") if types and all(t.startswith("MEDIA_") for t in types) else ""
    return "request blocked by content policy: " + ", ".join(types) + hint


SPLIT_FINDING = ("a finding spans several parts of the request and cannot be redacted part by part; "
                 "send it in one part")


def left_to_redact(pipeline: Pipeline, text: str) -> bool:
    """Whether ``text`` (a request after part-by-part redaction, joined) still holds something the policy
    redacts: a secret split over two parts is found in the whole but in neither part, and would go out."""
    return any(getattr(f, "action", None) is Action.REDACT
               for f in pipeline.run(text, stage=Stage.PRE, redact_key=None).findings)


def build_default_pipeline(config: Config) -> Pipeline | None:
    """``soc2ai.scan.build_pipeline(config.scan)`` when screening is on (None when it is off)."""
    if not config.gateway.screening or not config.scan.enabled:
        return None
    from soc2ai.config import secret_from_env
    from soc2ai.scan.pipeline import build_pipeline

    mod = config.scan.moderation
    # The remote moderator's key comes from the environment, like the providers' keys.
    key = secret_from_env(getattr(mod, "api_key_env", "OPENAI_API_KEY")) if mod.provider == "openai" else None
    pipe: Pipeline = build_pipeline(config.scan, moderation_api_key=key)
    return pipe


def decisions_json(stage: Stage, result: ScanResult) -> list[dict[str, Any]]:
    """The scan decisions as JSON-safe dicts for the audit record."""
    out: list[dict[str, Any]] = []
    for d in result.decisions:
        if isinstance(d, dict):
            out.append(d)
        elif is_dataclass(d) and not isinstance(d, type):
            out.append({k: (str(v) if hasattr(v, "value") else v) for k, v in asdict(d).items()})
        else:
            out.append({"stage": str(stage), "decision": str(d)})
    if not out and result.action is not Action.ALLOW:
        types = sorted({str(getattr(f, "entity_type", "")) for f in result.findings})
        out.append({"stage": str(stage), "scanner": "pipeline", "decision": str(result.action), "types": types})
    return out


def finding_types(result: ScanResult) -> list[str]:
    """Distinct finding types (for error messages: never the matched text)."""
    return sorted({str(getattr(f, "entity_type", "?")) for f in result.findings})
