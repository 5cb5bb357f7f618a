"""The public surface: what ``soc2ai.__all__`` promises, and that importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import soc2ai

EXPECTED = {
    "AccessRecord", "AlertRecord", "AuditLog", "AuthError", "Checkpoint", "Config", "ConfigChangeRecord",
    "ConfigError", "ConnectorError", "ConsistencyProof", "DsarRecord", "Entry", "ForgetResult",
    "InclusionProof", "KeyMaterialError", "MatchResult", "PolicyViolation", "ReadinessRecord", "Record",
    "RetentionRecord", "RollbackError", "ScanRecord", "Soc2AIError", "SpoolError", "StoreError",
    "UpstreamError", "UsageError", "VerificationError", "Verifier", "VerifyReport", "__version__", "load_config",
    "parse_config", "verify_consistency_bundle", "verify_inclusion_bundle",
}


def test_all_is_exactly_the_documented_surface() -> None:
    """Adding or removing a public name is a deliberate change to this list."""
    assert set(soc2ai.__all__) == EXPECTED
    for name in soc2ai.__all__:
        assert hasattr(soc2ai, name), name


def test_every_error_derives_from_the_root() -> None:
    """Callers can catch every soc2ai failure with one except clause."""
    errors = [getattr(soc2ai, n) for n in soc2ai.__all__ if n.endswith(("Error", "Violation"))]
    assert errors
    for err in errors:
        assert issubclass(err, soc2ai.Soc2AIError), err


def test_import_loads_no_optional_or_server_dependency() -> None:
    """`import soc2ai` must not pull in servers, drivers or ML libraries (nothing at import time)."""
    code = ("import sys, soc2ai; heavy = [m for m in ('starlette', 'uvicorn', 'psycopg', 'redis', 'chromadb', "
            "'spacy', 'openai', 'anthropic', 'numpy', 'lancedb', 'qdrant_client') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
