"""The auditor's evidence bundle for a period (``soc2ai evidence export``); see :mod:`.export`."""

from soc2ai.evidence.export import BUNDLE_TYPE, EvidenceBundle, export_evidence

__all__ = ["BUNDLE_TYPE", "EvidenceBundle", "export_evidence"]
