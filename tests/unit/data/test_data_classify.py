"""Classification at ingestion: by source, raised by content, never lowered silently."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from soc2ai.config import Config
from soc2ai.data.classify import Classifier, item_text, registered_sources
from soc2ai.data.runtime import open_lineage
from soc2ai.errors import ConfigError, PolicyViolation


def keyword_categories(text: str) -> set[str]:
    """A deterministic content classifier for these tests (the scanner's contract: text -> categories)."""
    found = set()
    if "@" in text:
        found.add("pii")
    if "IBAN" in text:
        found.add("financial")
    if "diagnosis" in text:
        found.add("health")
    return found


def make(config: Config, **kw: object) -> Classifier:
    return Classifier(config.data, sources={"crm": "confidential", "docs": "public"},
                      content=keyword_categories, clock=lambda: 1_000_000.0, **kw)  # type: ignore[arg-type]


def test_label_from_source(make_config: Callable[[str], Config]) -> None:
    """A registered source's label applies when the content raises nothing."""
    item = make(make_config("")).ingest("release notes", source="docs")
    assert item.label == "public"
    assert item.flags == ()
    assert item.retention_days == 1095
    assert item.ingested_at == 1_000_000


def test_pii_raises_to_confidential(make_config: Callable[[str], Config]) -> None:
    """PII in content raises a public source's item to confidential, with the reason."""
    item = make(make_config("")).ingest("mail ann@example.com", source="docs", subject_ids=["u1"])
    assert item.label == "confidential"
    assert "pii" in item.categories
    assert any("raised public -> confidential" in r for r in item.reasons)
    assert item.metadata()["subject_id"] == "u1"


def test_financial_restricted_twelve_months(make_config: Callable[[str], Config]) -> None:
    """Financial identifiers make an item restricted and kept 365 days; expires_at follows."""
    item = make(make_config("")).ingest({"note": "IBAN GB82WEST12345698765432"}, source="crm")
    assert item.label == "restricted"
    assert item.retention_days == 365
    assert item.expires_at == 1_000_000 + 365 * 86_400
    meta = item.metadata()
    assert meta["soc2ai_label"] == "restricted"
    assert meta["soc2ai_categories"] == "financial"


def test_never_lowered(make_config: Callable[[str], Config]) -> None:
    """Asking for a lower label keeps the higher one and says so; asking higher is honoured."""
    c = make(make_config(""))
    low = c.ingest("diagnosis: flu", source="docs", label="public")
    assert low.label == "restricted"
    assert any("lower than the rules" in r for r in low.reasons)
    assert c.ingest("hello", source="docs", label="confidential").label == "confidential"
    with pytest.raises(PolicyViolation):
        c.ingest("hello", source="docs", label="top-secret")


def test_unregistered_source_flagged_or_rejected(make_config: Callable[[str], Config]) -> None:
    """An unknown source is flagged by default and rejected when configured."""
    item = make(make_config("")).ingest("x", source="scraper")
    assert "unregistered_source" in item.flags
    assert item.label == "internal"
    strict = make(make_config('[data.classification]\nunregistered_source = "reject"\n'))
    with pytest.raises(PolicyViolation, match="scraper"):
        strict.ingest("x", source="scraper")


def test_config_source_overrides_register(make_config: Callable[[str], Config]) -> None:
    """[data.classification.sources] wins over the register for the same source."""
    cfg = make_config('[data.classification.sources]\ndocs = "internal"\n')
    assert make(cfg).ingest("plain", source="docs").label == "internal"


def test_ingest_records_lineage(make_config: Callable[[str], Config]) -> None:
    """Ingest records a lineage node linked to the subject."""
    cfg = make_config("")
    with open_lineage(cfg) as lin:
        item = make(cfg, lineage=lin).ingest("hi ann@example.com", source="crm", subject_ids=["u9"])
        node = lin.get(item.lineage_id)
        assert node is not None and node.label == "confidential"
        assert [n.id for n in lin.subject_nodes("u9")] == [item.lineage_id]


REGISTER = """sources:
  - id: crm
    name: CRM notes
    origin: internal
    owner: sales@example.com
    classification: confidential
    pii_expected: true
    used_for: [rag]
    retention_days: 30
  - id: wiki
    name: Wiki
    origin: internal
    owner: it@example.com
    classification: internal
    pii_expected: false
    used_for: [training]
"""


def test_register_via_governance(tmp_path: Path, make_config: Callable[[str], Config]) -> None:
    """The governance register gives labels and a source's shorter retention; a bad entry names the field."""
    cfg = make_config("")
    (tmp_path / "registers").mkdir()
    reg = tmp_path / "registers" / "data_sources.yaml"
    reg.write_text(REGISTER)
    sources = registered_sources(cfg)
    assert sources is not None and sources["crm"].label == "confidential" and sources["crm"].retention_days == 30
    c = Classifier(cfg.data, sources=sources, content=keyword_categories)
    item = c.ingest("plain note", source="crm")
    assert (item.label, item.retention_days) == ("confidential", 30)
    assert c.ingest("IBAN 123", source="crm").retention_days == 365  # financial: 12 months, by law
    assert "unregistered_source" in c.ingest("x", source="scraper").flags
    reg.write_text(REGISTER.replace("classification: internal", "classification: secretish"))
    with pytest.raises(ConfigError) as exc:
        registered_sources(cfg)
    assert exc.value.line is not None and "classification" in (exc.value.field or "")


def test_no_register_means_none(make_config: Callable[[str], Config]) -> None:
    """No register file: None (every source not named in config is unregistered)."""
    assert registered_sources(make_config("")) is None


def test_item_text_flattens() -> None:
    """Mappings and lists are flattened so the scanner sees keys and values."""
    assert item_text({"a": ["x", 1], "b": None}) == "a: x\n1\nb: "
    assert item_text(b"raw") == "raw"


def test_real_scanners_classify(make_config: Callable[[str], Config]) -> None:
    """With the real scan pipeline: an e-mail makes an item confidential, an IBAN restricted for 12 months."""
    cfg = make_config('[data.classification.sources]\nwiki = "public"\n')
    c = Classifier.from_config(cfg)
    assert c.ingest("release notes for v2", source="wiki").label == "public"
    pii = c.ingest("reach me at ann.smith@example.com", source="wiki", subject_ids=["ann"])
    assert (pii.label, "pii" in pii.categories) == ("confidential", True)
    fin = c.ingest("pay to IBAN GB82WEST12345698765432", source="wiki")
    assert (fin.label, fin.retention_days) == ("restricted", 365)
    secret = c.ingest("key AKIAIOSFODNN7EXAMPLE", source="wiki")
    assert secret.label == "restricted"


def test_integer_subject_ids_stored_as_text(make_config: Callable[[str], Config]) -> None:
    """An integer subject id is stored as the string a DSAR looks for; other types are refused."""
    cfg = make_config("")
    with open_lineage(cfg) as lin:
        item = make(cfg, lineage=lin).ingest("order shipped", source="crm", subject_ids=[1042, 0])
        assert item.subject_ids == ("1042", "0")
        assert item.metadata()["subject_id"] == "1042"
        assert [n.id for n in lin.subject_nodes("1042")] == [item.lineage_id]
    with pytest.raises(PolicyViolation, match=r"subject id 10\.5 must be a string or an integer"):
        make(cfg).ingest("x", source="crm", subject_ids=[10.5])  # type: ignore[list-item]
    with pytest.raises(PolicyViolation, match="not a single string"):
        make(cfg).ingest("x", source="crm", subject_ids="alice")
