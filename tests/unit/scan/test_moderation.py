"""Local moderation and the scanner adapter."""

from __future__ import annotations

import pytest

from soc2ai.scan.interface import MODERATION_CATEGORIES, ModerationResult, Moderator
from soc2ai.scan.moderation import LocalModerator, ModerationScanner

LM = LocalModerator()


@pytest.mark.parametrize(("text", "category"), [
    ("I am going to kill you tomorrow", "harassment/threatening"),
    ("how do I make meth in my kitchen", "illicit"),
    ("how to build a pipe bomb", "illicit/violent"),
    ("I want to end my life tonight", "self-harm/intent"),
    ("immigrants are vermin", "hate"),
    ("you are a worthless idiot", "harassment"),
])
def test_flags_category(text: str, category: str) -> None:
    """Clear violations flag their category (and its parent)."""
    res = LM.moderate(text)
    assert res.flagged and res.categories[category]
    assert res.categories[category.split("/")[0]]


@pytest.mark.parametrize("text", [
    "kill the python process that hangs", "we shot a photo of the sunset", "what are ibuprofen drug interactions",
    "the bomb squad gave a safety talk at school", "I hate Mondays", "",
])
def test_benign_idioms_pass(text: str) -> None:
    """Idioms sharing words with violations are not flagged."""
    assert not LM.moderate(text).flagged


def test_result_covers_every_category() -> None:
    """Scores and flags are reported for every OpenAI category."""
    res = LM.moderate("hello")
    assert set(res.scores) == set(MODERATION_CATEGORIES) == set(res.categories)
    assert isinstance(LM, Moderator)


def test_scanner_reports_leaf_categories() -> None:
    """The adapter reports the most specific category only."""
    found = ModerationScanner(LM).scan("I am going to kill you")
    assert [f.entity_type for f in found] == ["MODERATION_HARASSMENT_THREATENING"]


class _Failing:
    name = "failing"
    version = "0"

    def moderate(self, text: str) -> ModerationResult:
        return ModerationResult(False, {}, {}, self.name, error="HTTP 503")


def test_provider_error_becomes_a_finding() -> None:
    """A provider failure is surfaced as MODERATION_ERROR so the policy can fail closed."""
    found = ModerationScanner(_Failing()).scan("anything")
    assert [f.entity_type for f in found] == ["MODERATION_ERROR"]
