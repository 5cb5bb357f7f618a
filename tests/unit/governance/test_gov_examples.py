"""`soc2ai init` scaffolding: the examples pass every governance check and are never overwritten."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from soc2ai.config import Config
from soc2ai.governance.checks import OK
from soc2ai.governance.examples import write_examples
from soc2ai.governance.incidents import check_incidents
from soc2ai.governance.models import check_models
from soc2ai.governance.prompts import PromptRegistry
from soc2ai.governance.sources import check_sources
from soc2ai.governance.vendors import check_vendors

TODAY = date(2026, 6, 1)


def test_examples_pass_every_check(project: Config) -> None:
    """Models, vendors, sources and incidents checks are all OK on the scaffold."""
    results = [
        *check_models(project, gateway_models=["support-chat"], today=TODAY),
        *check_vendors(project, today=TODAY, providers=["openai"]),
        *check_sources(project, today=TODAY),
        *check_incidents(project, now=datetime(2026, 6, 1, tzinfo=UTC)),
    ]
    assert {r.status for r in results} == {OK}
    reg = PromptRegistry.load(project.root / "prompts")
    out = reg.render("support_reply", {"customer_name": "Ada", "question": "q?", "context": "c"})
    assert "Ada" in out.text


def test_existing_files_are_kept(tmp_path: Path) -> None:
    """A second run writes nothing and leaves edited registers alone."""
    first = write_examples(tmp_path, today=TODAY)
    assert len(first) == 6
    (tmp_path / "registers" / "vendors.yaml").write_text("vendors: []\n", encoding="utf-8")
    assert write_examples(tmp_path, today=TODAY) == []
    assert (tmp_path / "registers" / "vendors.yaml").read_text(encoding="utf-8") == "vendors: []\n"
