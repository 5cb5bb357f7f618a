"""Finding types -> categories (policy keys, data classification at ingestion)."""

from __future__ import annotations

from collections.abc import Iterable

from soc2ai.scan.interface import Finding

PII_TYPES = frozenset({
    "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "IP_ADDRESS", "PERSON", "LOCATION", "ORGANIZATION", "NRP",
    "US_ITIN", "UK_NHS", "DE_TAX_ID", "FR_NIR", "ES_NIF", "ES_NIE", "IT_FISCAL_CODE", "NL_BSN", "IN_AADHAAR",
    "IN_PAN", "BR_CPF", "CA_SIN", "AU_TFN",
})
FINANCIAL_TYPES = frozenset({"CREDIT_CARD", "IBAN_CODE", "US_EIN"})
HEALTH_TYPES = frozenset({"UK_NHS", "MEDICAL_RECORD", "HEALTH_CONDITION"})
SECRET_TYPES = frozenset({
    "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN",
    "SLACK_TOKEN", "SLACK_WEBHOOK", "GOOGLE_API_KEY", "GOOGLE_OAUTH_SECRET", "STRIPE_KEY", "PRIVATE_KEY", "JWT",
    "CONNECTION_STRING", "PASSWORD", "HIGH_ENTROPY_SECRET", "GITLAB_TOKEN", "HUGGINGFACE_TOKEN", "NPM_TOKEN",
    "SENDGRID_API_KEY", "PYPI_TOKEN",
})
# Not findings in text: request parts the scanners cannot read (soc2ai.gateway.core.media_kinds).
MEDIA_TYPES = frozenset({"MEDIA_IMAGE", "MEDIA_AUDIO", "MEDIA_FILE", "MEDIA_VIDEO"})


def category_of(entity_type: str) -> str:
    """The policy category of one finding type: pii, secret, injection, hidden, moderation, canary, media."""
    if entity_type in SECRET_TYPES:
        return "secret"
    if entity_type == "PROMPT_INJECTION":
        return "injection"
    if entity_type == "HIDDEN_CHARACTERS":
        return "hidden"
    if entity_type.startswith("MODERATION"):
        return "moderation"
    if entity_type == "CANARY_LEAK":
        return "canary"
    if entity_type in MEDIA_TYPES:
        return "media"
    return "pii"


def classify_findings(findings: Iterable[Finding]) -> set[str]:
    """Data-classification labels for a record: ``pii``, ``financial``, ``health``, ``secret``, ...

    A record can carry several (a card number is ``pii`` and ``financial``); an empty set means no
    sensitive content was found.
    """
    out: set[str] = set()
    for f in findings:
        t = f.entity_type
        if t in FINANCIAL_TYPES:
            out.update(("pii", "financial"))
        elif t in HEALTH_TYPES:
            out.update(("pii", "health"))
        elif t in SECRET_TYPES:
            out.add("secret")
        else:
            out.add(category_of(t))
    return out
