"""``[ledger]`` section of soc2ai.toml."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_WEAK = {"md5", "sha1", "sha-1", "md4", "ripemd160"}


class LedgerSettings(BaseModel):
    """Where the ledger lives and how records are hashed and batched."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: str = "sqlite:///.soc2ai/audit.db"
    keys_dir: str = ".soc2ai/keys"
    spool_dir: str = ".soc2ai/spool"
    # Latest signed checkpoint per log, outside the store: a store older than this refuses to start.
    witness_dir: str = ".soc2ai/witness"
    # "hmac-sha256" keys content hashes per subject (default, crypto-shreddable).
    # "sha256" is a bare digest: weaker (guessable prompts can be confirmed), kept for compatibility.
    hash_mode: Literal["hmac-sha256", "sha256"] = "hmac-sha256"
    hash_algorithm: str = "sha256"
    batch_ms: int = Field(default=10, ge=1, le=1000)
    batch_max: int = Field(default=512, ge=1, le=100_000)
    # Beyond this many queued records the sealer diverts to the spool instead of holding them in memory.
    queue_max: int = Field(default=50_000, ge=100)
    # SQLite durability: "full" fsyncs the WAL on every commit (survives power loss); "normal" survives a
    # process crash (kill -9) but may lose the last commits on power loss. PostgreSQL follows its own
    # synchronous_commit setting.
    sqlite_synchronous: Literal["full", "normal"] = "full"
    # Where the sealer runs. "thread": in the writing process (no extra process; caller and sealer share
    # the GIL). "process": a child process per log, so callers never wait for the sealer's GIL and
    # sealing uses a second core; a parent killed with -9 still has what it handed over sealed.
    sealer: Literal["thread", "process"] = "thread"
    retain_payloads: bool = False
    retention_days: int = Field(default=365, ge=1)

    @field_validator("hash_algorithm")
    @classmethod
    def _sha256_family_only(cls, value: str) -> str:
        v = value.lower()
        if v in _WEAK:
            raise ValueError(f"{value!r} is broken for integrity; only sha256 is accepted")
        if v not in {"sha256", "sha-256"}:
            raise ValueError(f"unsupported hash algorithm {value!r}; only sha256 is accepted")
        return "sha256"

    @field_validator("store")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("store must be sqlite:///PATH or postgresql://...")
        return value
