"""Data-source register: terms for external data, retention for personal data, look-ups."""

from __future__ import annotations

from datetime import date

from soc2ai.config import Config
from soc2ai.governance.checks import OK, WARN
from soc2ai.governance.sources import SourceRegister, check_sources

TODAY = date(2026, 6, 1)

EXTRA = """\
  - id: crawl-2025
    name: Web crawl
    origin: scraped
    owner: data@example.com
    classification: public
    pii_expected: true
    used_for: [training]
  - id: vendor-set
    name: Purchased Q&A
    origin: purchased
    owner: data@example.com
    classification: internal
    pii_expected: false
    used_for: [fine-tuning]
    licence: Commercial licence 2026-01 (contract C-12)
"""


def test_examples_pass_and_lookup(project: Config) -> None:
    """The scaffolded register passes; ingestion can ask whether a source is registered."""
    assert [r.status for r in check_sources(project, today=TODAY)] == [OK]
    reg = SourceRegister.load(project.root / "registers" / "data_sources.yaml")
    assert "help-center" in reg and "unknown" not in reg
    src = reg.get("help-center")
    assert src is not None and src.classification == "public"


def test_external_data_without_terms_and_pii_without_retention(project: Config) -> None:
    """Scraped data with no DPA or licence warns, as does personal data with no retention."""
    path = project.root / "registers" / "data_sources.yaml"
    path.write_text(path.read_text(encoding="utf-8") + EXTRA, encoding="utf-8")
    results = check_sources(project, today=TODAY)
    warns = [(r.check_id, r.message) for r in results if r.status == WARN]
    assert warns == [
        ("sources.terms", "crawl-2025: scraped data without a DPA or licence"),
        ("sources.retention", "crawl-2025: personal data with no retention period"),
    ]
