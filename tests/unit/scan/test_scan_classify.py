"""Categories for policy lookup and data classification."""

from __future__ import annotations

from soc2ai.scan.classify import category_of, classify_findings
from soc2ai.scan.interface import Finding


def _f(t: str) -> Finding:
    return Finding(t, 0, 1, 1.0, "r", "s")


def test_categories() -> None:
    """Each finding type maps to its policy category."""
    assert category_of("EMAIL_ADDRESS") == "pii"
    assert category_of("OPENAI_API_KEY") == "secret"
    assert category_of("PROMPT_INJECTION") == "injection"
    assert category_of("HIDDEN_CHARACTERS") == "hidden"
    assert category_of("MODERATION_VIOLENCE") == "moderation"
    assert category_of("CANARY_LEAK") == "canary"


def test_classify_findings_labels() -> None:
    """Cards are pii + financial, NHS numbers pii + health, keys secret; nothing found is empty."""
    assert classify_findings([_f("CREDIT_CARD")]) == {"pii", "financial"}
    assert classify_findings([_f("UK_NHS"), _f("EMAIL_ADDRESS")]) == {"pii", "health"}
    assert classify_findings([_f("AWS_ACCESS_KEY_ID")]) == {"secret"}
    assert classify_findings([]) == set()
