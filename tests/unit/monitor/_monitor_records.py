"""Record-body builders shared by the monitor tests."""

from __future__ import annotations

import itertools
from typing import Any

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
_ids = itertools.count()


def inference(ts: int, *, key: str = "k1", provider: str = "openai", model: str = "gpt-4o-mini",
              input_tokens: int = 10, output_tokens: int = 20, status: int = 200, error: str | None = None,
              fallback: list[str] | None = None, scans: list[dict[str, Any]] | None = None,
              rid: str | None = None) -> dict[str, Any]:
    """An inference record body shaped like AuditLog.log_inference writes it."""
    return {"v": 1, "kind": "inference", "id": rid or f"r{next(_ids):06d}", "ts": ts, "subject_ref": "ab" * 16,
            "model": model, "provider": provider, "key_id": key, "input_tokens": input_tokens,
            "output_tokens": output_tokens, "status": status, "error": error,
            "fallback_path": fallback if fallback is not None else [provider], "scans": scans or [],
            "latency_us": 1000, "flagged": bool(scans)}


def scan(stage: str, scanner: str, decision: str, *types: str) -> dict[str, Any]:
    """One entry of the ``scans`` field."""
    return {"stage": stage, "scanner": scanner, "decision": decision, "types": list(types)}
