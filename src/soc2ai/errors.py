"""The soc2ai exception hierarchy: one root, one subtree per part.

::

    Soc2AIError
    ├── ConfigError            bad soc2ai.toml / register file (names file, line, field)
    ├── KeyMaterialError       missing or unsafe key files
    ├── StoreError             ledger store unreachable or inconsistent
    │   ├── DuplicateRecordError  a record id already in the log
    │   └── RollbackError      store older than (or not) the log we signed
    ├── SpoolError             dead-letter spool or alert outbox corrupt or unwritable
    ├── VerificationError      a proof, signature or record does not verify
    ├── PolicyViolation        a request blocked by a scanner or policy
    ├── AuthError              API key / role decision (401 / 403)
    ├── ConnectorError         a data connector failed (DSAR, retention)
    └── UpstreamError          an LLM provider failed

Verifiers raise; they never return False for "does not verify".
"""

from __future__ import annotations

from typing import Any


class Soc2AIError(Exception):
    """Root of every error soc2ai raises on purpose."""


class ConfigError(Soc2AIError):
    """A configuration or register file is invalid.

    ``file``, ``line`` and ``field`` say where, so the message can point the user at it.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.reason = message
        where = file or "<config>"
        if line is not None:
            where += f":{line}"
        if field:
            where += f": {field}"
        super().__init__(f"{where}: {message}")


class UsageError(Soc2AIError, ValueError):
    """An argument given to a command or API call is invalid (an unknown role, a key id that does not
    exist): not a file, so no ``<config>`` location. The CLI exits 2, as for a config error."""


class KeyMaterialError(Soc2AIError):
    """Key files are missing, unreadable or have unsafe permissions."""


class StoreError(Soc2AIError):
    """The ledger store failed or is inconsistent."""


class DuplicateRecordError(StoreError):
    """A record id that is already in the log (ids are unique)."""


class RollbackError(StoreError):
    """The store is older than (or inconsistent with) a checkpoint this installation signed."""


class SpoolError(Soc2AIError):
    """The dead-letter spool is corrupt or cannot be written."""


class VerificationError(Soc2AIError):
    """Something does not verify. ``index`` names the first bad ledger index when known."""

    def __init__(self, message: str, *, index: int | None = None) -> None:
        self.index = index
        super().__init__(message if index is None else f"index {index}: {message}")


class PolicyViolation(Soc2AIError):
    """A request or response was blocked by a scanner or policy."""


class AuthError(Soc2AIError):
    """An API key was unknown, revoked, expired, or not allowed to do this."""

    def __init__(self, message: str, *, status: int = 401, key: Any = None) -> None:
        self.status = status
        self.key = key  # the key that matched (revoked, expired, suspended), for the denial record
        super().__init__(message)


class ConnectorError(Soc2AIError):
    """A data connector could not complete an operation."""


class UpstreamError(Soc2AIError):
    """An upstream LLM provider failed."""
