"""``[governance]`` section of soc2ai.toml.

Example::

    [governance]
    prompts_dir = "prompts"
    registers_dir = "registers"          # models.yaml, vendors.yaml, data_sources.yaml, incidents/
    main_branch = "main"
    pr_export = "evidence/prs.json"      # optional: `gh pr list --state merged --json ...` output
    change_paths = ["prompts/", "registers/", "soc2ai.toml", "src/"]
    ticket_patterns = ['\\b[A-Z][A-Z0-9]{1,9}-[1-9][0-9]*\\b', '(?<![\\w/])#[1-9][0-9]*\\b']

    [governance.incident_sla_hours]
    critical = 24
    high = 72
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from soc2ai._validation import LocatedError

# Jira/Linear keys ("ABC-123"), GitHub issue refs ("#123") and Linear/Jira issue URLs.
DEFAULT_TICKET_PATTERNS: tuple[str, ...] = (
    r"https?://linear\.app/[\w.-]+/issue/[A-Z][A-Z0-9]*-\d+\S*",
    r"https?://[\w.-]+\.atlassian\.net/browse/[A-Z][A-Z0-9]*-\d+",
    r"https?://github\.com/[\w.-]+/[\w.-]+/issues/\d+",
    r"\b[A-Z][A-Z0-9]{1,9}-[1-9][0-9]*\b",
    r"(?<![\w/&])#[1-9][0-9]*\b",
)
# Key-like tokens that are not tickets (standards, algorithms, model names).
DEFAULT_TICKET_IGNORE: tuple[str, ...] = (
    "UTF",
    "SHA",
    "ISO",
    "RFC",
    "AES",
    "TLS",
    "SSL",
    "HTTP",
    "GPT",
    "CVE",
    "CWE",
    "PEP",
    "SOC",
    "CC",
    "PI",
    "HMAC",
    "ECDSA",
    "RSA",
    "X",
)


# Time to close an incident, per severity (hours).
DEFAULT_SLA_HOURS: dict[str, int] = {"critical": 24, "high": 72, "medium": 168, "low": 720}


class GovernanceSettings(BaseModel):
    """Settings for soc2ai.governance: where the registers live and how change evidence is read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    prompts_dir: str = "prompts"
    registers_dir: str = "registers"
    # Last-seen content hashes of registers/prompts, so only real changes become config_change records.
    state_file: str = ".soc2ai/governance-state.json"
    main_branch: str = Field(default="main", min_length=1)
    pr_export: str | None = None
    # Paths whose changes are production changes (git pathspec prefixes); empty = the whole repository.
    change_paths: list[str] = Field(default_factory=list)
    ticket_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_TICKET_PATTERNS))
    ticket_ignore: list[str] = Field(default_factory=lambda: list(DEFAULT_TICKET_IGNORE))
    # Flag main-branch commits without a good signature (%G? == "G") as exceptions.
    require_signed: bool = False
    # Time to close an incident, per severity.
    incident_sla_hours: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_SLA_HOURS))
    # A SOC 2 report (or its period end) older than this is stale.
    soc2_max_age_days: int = Field(default=365, ge=1)

    @field_validator("ticket_patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
        return value

    # LocatedError: the error names governance.incident_sla_hours.<severity> and its line, not the table.
    @field_validator("incident_sla_hours")
    @classmethod
    def _sla_positive(cls, value: dict[str, int]) -> dict[str, int]:
        for severity, hours in value.items():
            if severity not in DEFAULT_SLA_HOURS:
                # A misspelt severity ("hgih") would otherwise be ignored and leave "high" unset.
                raise LocatedError(f"unknown severity {severity!r}; use {', '.join(DEFAULT_SLA_HOURS)}",
                                   (severity,))
            if hours <= 0:
                raise LocatedError(f"SLA for {severity!r} must be a positive number of hours", (severity,))
        # A partial table overrides only the severities it names; every severity needs an SLA
        # (the incident check looks each one up).
        return {**DEFAULT_SLA_HOURS, **value}
