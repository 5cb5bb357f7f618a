"""The ``Scanner`` protocol and the finding shape every detector returns.

Findings are Presidio-compatible in shape (``entity_type``, ``start``, ``end``, ``score``) so results can
be compared with, or fed to, Presidio tooling. Offsets index the *original* text (after normalisation
they are mapped back).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


class Action(StrEnum):
    """What the policy does with a finding at a stage."""

    ALLOW = "allow"
    FLAG = "flag"
    REDACT = "redact"
    BLOCK = "block"


class Stage(StrEnum):
    """Where in the request a scan runs."""

    PRE = "pre"    # on the prompt, before generation
    POST = "post"  # on the output, after generation


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected span: type (e.g. ``EMAIL_ADDRESS``, ``PROMPT_INJECTION``), offsets, score, rule."""

    entity_type: str
    start: int
    end: int
    score: float
    rule_id: str
    scanner: str
    action: Action = Action.FLAG
    meta: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Scanner(Protocol):
    """Text in, findings out. Implementations must be thread-safe and never do network I/O."""

    name: str
    version: str

    def scan(self, text: str) -> list[Finding]:
        """Return findings for ``text`` (offsets into ``text``)."""
        ...
