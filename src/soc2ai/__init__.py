"""soc2ai: SOC 2 Type II controls and auditor evidence for AI products.

The public API is what ``__all__`` lists; everything else is internal. Importing this package does no
work and imports no optional dependency.
"""

from __future__ import annotations

from soc2ai.config import Config, load_config, parse_config
from soc2ai.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    KeyMaterialError,
    PolicyViolation,
    RollbackError,
    Soc2AIError,
    SpoolError,
    StoreError,
    UpstreamError,
    UsageError,
    VerificationError,
)
from soc2ai.ledger import (
    AuditLog,
    Checkpoint,
    ConsistencyProof,
    Entry,
    ForgetResult,
    InclusionProof,
    MatchResult,
    Verifier,
    VerifyReport,
    verify_consistency_bundle,
    verify_inclusion_bundle,
)
from soc2ai.ledger.records import (
    AccessRecord,
    AlertRecord,
    ConfigChangeRecord,
    DsarRecord,
    ReadinessRecord,
    Record,
    RetentionRecord,
    ScanRecord,
)

__version__ = "0.1.0"

__all__ = [
    "AccessRecord",
    "AlertRecord",
    "AuditLog",
    "AuthError",
    "Checkpoint",
    "Config",
    "ConfigChangeRecord",
    "ConfigError",
    "ConnectorError",
    "ConsistencyProof",
    "DsarRecord",
    "Entry",
    "ForgetResult",
    "InclusionProof",
    "KeyMaterialError",
    "MatchResult",
    "PolicyViolation",
    "ReadinessRecord",
    "Record",
    "RetentionRecord",
    "RollbackError",
    "ScanRecord",
    "Soc2AIError",
    "SpoolError",
    "StoreError",
    "UpstreamError",
    "UsageError",
    "VerificationError",
    "Verifier",
    "VerifyReport",
    "__version__",
    "load_config",
    "parse_config",
    "verify_consistency_bundle",
    "verify_inclusion_bundle",
]
