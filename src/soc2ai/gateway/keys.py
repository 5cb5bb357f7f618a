"""Gateway API keys: created once, shown once, stored as SHA-256 digests in ``keys.db`` (SQLite, 0600).

A key looks like ``s2a_<id>_<secret>``: the 12-hex ``id`` finds the row, the SHA-256 of the whole key is
compared with :func:`hmac.compare_digest`. 32 random bytes of secret make a plain (unsalted) digest safe:
there is nothing to guess. Every create/revoke/suspend is a ``config_change`` record in the ledger when a
log is given. The gateway reads keys into memory and re-reads when another process changed the file
(``PRAGMA data_version``), at most once per ``refresh_s``.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from soc2ai.errors import AuthError, UsageError
from soc2ai.gateway.settings import CLASSIFICATIONS, ROLES
from soc2ai.ledger.records import AccessRecord, ConfigChangeRecord

if TYPE_CHECKING:
    from soc2ai.ledger import AuditLog

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    role TEXT NOT NULL,
    user_id TEXT NOT NULL,
    models TEXT NOT NULL,
    classification TEXT,
    created_us INTEGER NOT NULL,
    expires_us INTEGER,
    revoked_us INTEGER,
    suspended_until_us INTEGER
)
"""


def _now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key (never the secret): who, which role, which models, lifetime and state."""

    id: str
    role: str
    user_id: str
    models: tuple[str, ...]
    classification: str | None
    created_us: int
    expires_us: int | None
    revoked_us: int | None
    suspended_until_us: int | None
    digest: str = ""

    def state(self, now_us: int) -> str:
        """``active``, ``revoked``, ``expired`` or ``suspended``."""
        if self.revoked_us is not None:
            return "revoked"
        if self.expires_us is not None and now_us >= self.expires_us:
            return "expired"
        if self.suspended_until_us is not None and now_us < self.suspended_until_us:
            return "suspended"
        return "active"

    def public(self, now_us: int) -> dict[str, object]:
        """A JSON-safe view for ``keys list`` (no digest)."""
        return {"id": self.id, "role": self.role, "user": self.user_id, "models": list(self.models),
                "classification": self.classification, "created_us": self.created_us,
                "expires_us": self.expires_us, "revoked_us": self.revoked_us,
                "suspended_until_us": self.suspended_until_us, "state": self.state(now_us)}


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class KeyStore:
    """The keys file. Thread-safe; cheap :meth:`authenticate` from memory."""

    def __init__(self, path: str | Path, *, log: AuditLog | None = None, clock: Callable[[], int] = _now_us,
                 refresh_s: float = 1.0) -> None:
        self.path = Path(path)
        self.log = log
        self.clock = clock
        self.refresh_us = int(refresh_s * 1_000_000)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        if fresh:
            # Create it 0600 before SQLite writes anything into it.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        elif self.path.stat().st_mode & 0o077:
            os.chmod(self.path, 0o600)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._cache: dict[str, ApiKey] = {}
        self._version = -1
        self._checked_us = 0
        self._reload()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # --- reading ---------------------------------------------------------------------------------
    def _reload(self) -> None:
        rows = self._db.execute("SELECT id, role, user_id, models, classification, created_us, expires_us, "
                                "revoked_us, suspended_until_us, digest FROM api_keys").fetchall()
        self._cache = {r[0]: ApiKey(r[0], r[1], r[2], tuple(orjson.loads(r[3])), r[4], r[5], r[6], r[7], r[8],
                                    r[9]) for r in rows}
        self._version = self._db.execute("PRAGMA data_version").fetchone()[0]

    def _maybe_reload(self, now_us: int) -> None:
        if now_us - self._checked_us < self.refresh_us:
            return
        with self._lock:
            self._checked_us = now_us
            if self._db.execute("PRAGMA data_version").fetchone()[0] != self._version:
                self._reload()

    def list(self) -> builtins.list[ApiKey]:
        """All keys, newest first."""
        with self._lock:
            self._reload()
            return sorted(self._cache.values(), key=lambda k: -k.created_us)

    def get(self, key_id: str) -> ApiKey | None:
        """A key by id (fresh from disk)."""
        with self._lock:
            self._reload()
            return self._cache.get(key_id)

    def authenticate(self, presented: str | None) -> ApiKey:
        """The active key for a presented secret; :class:`AuthError` (401/403) otherwise."""
        now = self.clock()
        self._maybe_reload(now)
        if not presented:
            raise AuthError("missing API key (send 'Authorization: Bearer <key>' or 'x-api-key: <key>')", status=401)
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != "s2a":
            raise AuthError("invalid API key", status=401)
        key = self._cache.get(parts[1])
        # Compare against a dummy digest when the id is unknown, so timing does not tell ids apart.
        stored = key.digest if key is not None else "0" * 64
        if not hmac.compare_digest(_digest(presented), stored) or key is None:
            raise AuthError("invalid API key", status=401)
        state = key.state(now)
        if state == "revoked":
            raise AuthError("API key revoked", status=401, key=key)
        if state == "expired":
            raise AuthError("API key expired", status=401, key=key)
        if state == "suspended":
            raise AuthError("API key suspended after repeated abuse", status=403, key=key)
        return key

    # --- writing ---------------------------------------------------------------------------------
    def create(self, *, role: str, user_id: str, models: builtins.list[str] | None = None,
               expires_us: int | None = None, classification: str | None = None, actor: str = "cli") -> tuple[
                   str, ApiKey]:
        """Make a key; return ``(secret, record)``. The secret is not stored and cannot be shown again."""
        if role not in ROLES:
            raise UsageError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        if not user_id:
            raise UsageError("a key needs a user id")
        if classification is not None and classification not in CLASSIFICATIONS:
            raise UsageError(f"unknown classification {classification!r}; classes are {', '.join(CLASSIFICATIONS)}")
        key_id = secrets.token_hex(6)
        secret = f"s2a_{key_id}_{secrets.token_urlsafe(32)}"
        now = self.clock()
        rec = ApiKey(key_id, role, user_id, tuple(models or ()), classification, now, expires_us, None, None,
                     _digest(secret))
        with self._lock:
            self._db.execute("INSERT INTO api_keys (id, digest, role, user_id, models, classification, "
                             "created_us, expires_us) VALUES (?,?,?,?,?,?,?,?)",
                             (key_id, rec.digest, role, user_id, orjson.dumps(list(rec.models)).decode(),
                              classification, now, expires_us))
            self._reload()
        self._record("create", rec, actor, f"role={role} models={','.join(rec.models) or '*'} "
                     f"expires_us={expires_us}")
        return secret, rec

    def revoke(self, key_id: str, *, actor: str = "cli") -> ApiKey:
        """Revoke a key (takes effect in running gateways within ``refresh_s``)."""
        with self._lock:
            cur = self._db.execute("UPDATE api_keys SET revoked_us=? WHERE id=? AND revoked_us IS NULL",
                                   (self.clock(), key_id))
            self._reload()
            key = self._cache.get(key_id)
        if key is None:
            raise UsageError(f"no API key with id {key_id!r} (see `soc2ai keys list`)")
        if cur.rowcount:
            self._record("revoke", key, actor, "revoked")
        return key

    def suspend(self, key_id: str, until_us: int, *, reason: str) -> ApiKey | None:
        """Suspend a key until ``until_us`` (abuse detection); recorded as access + config_change."""
        with self._lock:
            self._db.execute("UPDATE api_keys SET suspended_until_us=? WHERE id=?", (until_us, key_id))
            self._reload()
            key = self._cache.get(key_id)
        if key is not None:
            self._record("suspend", key, "gateway", f"{reason}; until_us={until_us}")
            if self.log is not None:
                self.log.append(AccessRecord(action="suspend", decision="suspend", reason=reason, key_id=key.id,
                                             role=key.role, user_id=key.user_id))
        return key

    def _record(self, action: str, key: ApiKey, actor: str, summary: str) -> None:
        if self.log is not None:
            self.log.append(ConfigChangeRecord(target=f"api_key:{key.id}", action=action, actor=actor,
                                               summary=summary,
                                               user_id=key.user_id))
