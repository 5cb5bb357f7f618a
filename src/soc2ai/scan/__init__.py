"""Scanners: PII, secrets, prompt injection, moderation, canaries; the screening pipeline; the dataset gate.

Public API (see docs/scanners.md)::

    from soc2ai.scan import build_pipeline, Pipeline, PipelineResult, Stage, Action
    pipe = build_pipeline(settings.scan)
    res = pipe.run(text, Stage.PRE, redact_key=None)

Names are resolved lazily (PEP 562), so ``import soc2ai.scan`` loads neither numpy nor the model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from soc2ai.scan.interface import (
    MODERATION_CATEGORIES,
    Action,
    Finding,
    ModerationResult,
    Moderator,
    Scanner,
    Stage,
)

# ``redact`` and ``normalize`` are imported eagerly (both are standard library only): their submodules have
# the same names, and the first ``import soc2ai.scan.redact`` anywhere (the pipeline does it) would set the
# package attribute to the module, so ``from soc2ai.scan import redact`` would return a module, not the
# function, and the lazy ``__getattr__`` below would never run.
from soc2ai.scan.normalize import Normalized, normalize
from soc2ai.scan.redact import redact
from soc2ai.scan.settings import ScanSettings

if TYPE_CHECKING:
    from soc2ai.scan.canary import CanaryScanner, embed_canary, make_canary
    from soc2ai.scan.classify import category_of, classify_findings
    from soc2ai.scan.dataset import DatasetReport, scan_dataset
    from soc2ai.scan.injection import InjectionScanner
    from soc2ai.scan.moderation import LocalModerator, ModerationScanner
    from soc2ai.scan.moderation_openai import OpenAIModerator
    from soc2ai.scan.ner import NerScanner
    from soc2ai.scan.pii import PiiScanner
    from soc2ai.scan.pipeline import Pipeline, PipelineResult, build_pipeline
    from soc2ai.scan.secrets import SecretsScanner

_LAZY = {
    "build_pipeline": "pipeline", "Pipeline": "pipeline", "PipelineResult": "pipeline",
    "PiiScanner": "pii", "SecretsScanner": "secrets", "InjectionScanner": "injection", "NerScanner": "ner",
    "LocalModerator": "moderation", "ModerationScanner": "moderation", "OpenAIModerator": "moderation_openai",
    "CanaryScanner": "canary", "make_canary": "canary", "embed_canary": "canary",
    "classify_findings": "classify", "category_of": "classify",
    "scan_dataset": "dataset", "DatasetReport": "dataset",
}

__all__ = [
    "MODERATION_CATEGORIES", "Action", "CanaryScanner", "DatasetReport", "Finding", "InjectionScanner",
    "LocalModerator", "ModerationResult", "ModerationScanner", "Moderator", "NerScanner", "Normalized",
    "OpenAIModerator", "PiiScanner", "Pipeline", "PipelineResult", "ScanSettings", "Scanner", "SecretsScanner",
    "Stage", "build_pipeline", "category_of", "classify_findings", "embed_canary", "make_canary", "normalize",
    "redact", "scan_dataset",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'soc2ai.scan' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"soc2ai.scan.{module}"), name)
    globals()[name] = value
    return value
