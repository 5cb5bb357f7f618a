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


# The OpenAI moderation API's category names; local moderators report over the same set.
MODERATION_CATEGORIES: tuple[str, ...] = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)


@dataclass(frozen=True, slots=True)
class ModerationResult:
    """One moderation verdict: flagged categories and a score per category in [0, 1]."""

    flagged: bool
    categories: dict[str, bool]
    scores: dict[str, float]
    provider: str
    error: str | None = None


@runtime_checkable
class Moderator(Protocol):
    """Content moderation over :data:`MODERATION_CATEGORIES`."""

    name: str
    version: str

    def moderate(self, text: str) -> ModerationResult:
        """Classify ``text``; remote implementations report failures in ``error`` rather than raising."""
        ...
