"""The tamper-evident inference ledger (PI1.2-PI1.5, CC7.2, CC7.3).

Importing this package loads nothing heavy; :class:`AuditLog` is the entry point.
"""

from __future__ import annotations

from soc2ai.ledger.log import AuditLog, Entry, ForgetResult, MatchResult
from soc2ai.ledger.note import Checkpoint, Verifier
from soc2ai.ledger.proofs import (
    ConsistencyProof,
    InclusionProof,
    verify_consistency_bundle,
    verify_inclusion_bundle,
)
from soc2ai.ledger.verify import VerifyReport

__all__ = [
    "AuditLog",
    "Checkpoint",
    "ConsistencyProof",
    "Entry",
    "ForgetResult",
    "InclusionProof",
    "MatchResult",
    "Verifier",
    "VerifyReport",
    "verify_consistency_bundle",
    "verify_inclusion_bundle",
]
