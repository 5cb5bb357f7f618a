"""Governance: prompt and model registries, vendor, data-source and incident registers, change evidence.

Criteria served: CC8.1 (change management), CC9.2 (vendors), CC7.4/CC7.5 (incidents), C1.1 (data
sources). Names are imported lazily so ``import soc2ai.governance`` stays cheap (``soc2ai.config``
imports ``governance.settings`` at startup).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soc2ai.governance.audit import record_register_changes
    from soc2ai.governance.changes import Change, Reconciliation, changes_population, reconcile, sample
    from soc2ai.governance.checks import CheckResult
    from soc2ai.governance.examples import write_examples
    from soc2ai.governance.incidents import Incident, IncidentRegister, check_incidents, overdue
    from soc2ai.governance.models import ModelEntry, ModelRegistry, check_models
    from soc2ai.governance.prompt_status import check_prompts, prompt_status
    from soc2ai.governance.prompts import PromptRegistry, PromptTemplate, RenderedPrompt
    from soc2ai.governance.settings import GovernanceSettings
    from soc2ai.governance.sources import SourceRegister, check_sources
    from soc2ai.governance.vendors import check_vendors, load_vendors

_EXPORTS = {
    "record_register_changes": "audit",
    "Change": "changes",
    "Reconciliation": "changes",
    "changes_population": "changes",
    "reconcile": "changes",
    "sample": "changes",
    "CheckResult": "checks",
    "write_examples": "examples",
    "Incident": "incidents",
    "IncidentRegister": "incidents",
    "check_incidents": "incidents",
    "overdue": "incidents",
    "ModelEntry": "models",
    "ModelRegistry": "models",
    "check_models": "models",
    "check_prompts": "prompt_status",
    "prompt_status": "prompt_status",
    "PromptRegistry": "prompts",
    "PromptTemplate": "prompts",
    "RenderedPrompt": "prompts",
    "GovernanceSettings": "settings",
    "SourceRegister": "sources",
    "check_sources": "sources",
    "check_vendors": "vendors",
    "load_vendors": "vendors",
}

__all__ = [
    "Change",
    "CheckResult",
    "GovernanceSettings",
    "Incident",
    "IncidentRegister",
    "ModelEntry",
    "ModelRegistry",
    "PromptRegistry",
    "PromptTemplate",
    "Reconciliation",
    "RenderedPrompt",
    "SourceRegister",
    "changes_population",
    "check_incidents",
    "check_models",
    "check_prompts",
    "check_sources",
    "check_vendors",
    "load_vendors",
    "overdue",
    "prompt_status",
    "reconcile",
    "record_register_changes",
    "sample",
    "write_examples",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'soc2ai.governance' has no attribute {name!r}")
    return getattr(importlib.import_module(f"soc2ai.governance.{module}"), name)
