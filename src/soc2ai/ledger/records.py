"""Ledger record kinds: frozen, versioned, typed per kind.

Every record body carries ``v`` (schema version), ``kind``, ``id``, ``ts`` (integer microseconds since
the Unix epoch, UTC) and ``subject_ref`` (``HMAC(subject_key, user_id)`` hex, or null); the sealer adds
``idx``, the record's position in the log, so a row moved to another position no longer verifies.
Raw user ids never appear: callers pass ``user_id`` and the log turns it into ``subject_ref``.

Values are integers, strings, booleans, null, lists and objects only (see :mod:`.canonical`).
Floats supplied in ``attrs``/``params`` are stored as their decimal ``repr`` string.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from soc2ai.ledger.canonical import to_jsonable

SCHEMA_VERSION = 1

# Inference records are built on the hot path by AuditLog.log_inference as plain dicts; these are their
# fields beyond the common ones (documented here so there is one place that names the schema).
INFERENCE_FIELDS: tuple[str, ...] = (
    "hash_mode",        # "hmac-sha256" (keyed per subject) or "sha256" (bare, weaker)
    "input_hash",       # hex digest of the prompt bytes
    "output_hash",      # hex digest of the response bytes (null when there was no response)
    "model",            # model requested (alias)
    "model_served",     # model that actually answered
    "provider",         # provider that answered
    "endpoint",         # e.g. "chat.completions"
    "tenant",
    "latency_us", "input_tokens", "output_tokens", "tokens_estimated",
    "flagged",          # any scanner flagged the call
    "status",           # HTTP-style status of the call
    "params",           # request parameters (temperature, top_p, seed, max_tokens), floats as strings
    "response_id", "system_fingerprint", "finish_reason",
    "template",         # "name@vN" when a prompt template was used
    "template_hash",
    "classification",   # public | internal | confidential | restricted
    "scans",            # [{"stage", "scanner", "decision", "types"}]
    "fallback_path",    # providers tried, in order
    "key_id",           # gateway API key id
    "error",
    "attrs",            # caller extras
)

KINDS = ("inference", "access", "config_change", "dsar", "alert", "retention", "scan", "readiness")


# Ids need uniqueness, not secrecy: a per-process generator seeded from the OS (re-seeded in forked
# children) avoids a getrandom() system call per record, which costs ~10 µs on some VMs.
_id_rng = random.Random(os.urandom(32))  # noqa: S311 - ids are not secrets
os.register_at_fork(after_in_child=lambda: _id_rng.seed(os.urandom(32)))


def new_id() -> str:
    """A fresh record/request id, time-ordered like UUIDv7: 48-bit milliseconds + 80 random bits, 32 hex.

    Time order keeps inserts into the unique id index local (random ids cost the SQLite sealer ~2x).
    """
    return ((time.time_ns() // 1_000_000) << 80 | _id_rng.getrandbits(80)).to_bytes(16, "big").hex()


def content_bytes(content: Any) -> bytes:
    """The bytes a content hash covers: UTF-8 text as is; anything else (messages lists) as canonical JSON."""
    if isinstance(content, str):  # the common case first: this runs twice per log_inference
        return content.encode("utf-8", "surrogatepass")
    if isinstance(content, bytes):
        return content
    import orjson

    return orjson.dumps(to_jsonable(content), option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """Base of the typed non-inference records accepted by :meth:`AuditLog.append`."""

    kind: ClassVar[str] = ""
    id: str = field(default_factory=new_id)
    ts: int | None = None
    user_id: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def fields_body(self) -> dict[str, Any]:
        """Kind-specific fields as a JSON-safe dict (common fields are added by the log)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("id", "ts", "user_id"):
                continue
            out[f.name] = to_jsonable(getattr(self, f.name))
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessRecord(Record):
    """An authentication / authorisation decision (CC6.1-CC6.3)."""

    kind: ClassVar[str] = "access"
    action: str
    decision: str  # "allow" | "deny" | "suspend"
    reason: str = ""
    key_id: str | None = None
    role: str | None = None
    model: str | None = None
    endpoint: str | None = None
    status: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigChangeRecord(Record):
    """A change to prompts, models, registers, keys or gateway config (CC8.1)."""

    kind: ClassVar[str] = "config_change"
    target: str
    action: str
    actor: str = ""
    summary: str = ""
    content_hash: str | None = None
    previous_hash: str | None = None
    ticket: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DsarRecord(Record):
    """A data-subject request receipt: find, export, delete or forget (P4.3, CC6.5)."""

    kind: ClassVar[str] = "dsar"
    action: str
    outcome: str
    subject_refs: list[str] = field(default_factory=list)
    locations: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRecord(Record):
    """A monitoring alert that fired (CC7.2-CC7.4)."""

    kind: ClassVar[str] = "alert"
    rule: str
    severity: str
    message: str
    response: str = ""
    records: list[str] = field(default_factory=list)
    incident_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionRecord(Record):
    """A retention run: what was pruned or deleted, and the cut-off (C1.2)."""

    kind: ClassVar[str] = "retention"
    action: str
    scope: str
    cutoff_ts: int
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanRecord(Record):
    """A dataset-gate receipt: which data was scanned, by what, and the result (PI1.4, C1.1)."""

    kind: ClassVar[str] = "scan"
    dataset_hash: str
    path: str
    passed: bool
    records_scanned: int
    counts: dict[str, int] = field(default_factory=dict)
    scanners: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadinessRecord(Record):
    """One run of ``soc2ai check`` (CC4.1)."""

    kind: ClassVar[str] = "readiness"
    ok: int
    warn: int
    fail: int
    failing: list[str] = field(default_factory=list)
