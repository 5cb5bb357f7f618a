"""Vendor register: stale SOC 2 reports, DPAs, reviews, SLAs, unmanaged vendors, the review report."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import orjson
import pytest
import yaml

from soc2ai.config import Config
from soc2ai.errors import ConfigError
from soc2ai.governance.checks import OK, WARN
from soc2ai.governance.vendors import ai_sdks, check_vendors, load_vendors, render_report, vendor_rows

TODAY = date(2026, 6, 1)


def _edit(project: Config, index: int, **changes: object) -> None:
    path = project.root / "registers" / "vendors.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            doc["vendors"][index].pop(key, None)
        else:
            doc["vendors"][index][key] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def _warnings(project: Config, today: date = TODAY, **kw: object) -> list[str]:
    results = check_vendors(project, today=today, providers=kw.pop("providers", []), **kw)  # type: ignore[arg-type]
    return [r.message for r in results if r.status == WARN]


def test_examples_pass(project: Config) -> None:
    """The scaffolded register has no findings on the day it was written."""
    results = check_vendors(project, today=TODAY, providers=["openai", "anthropic"])
    assert [r.status for r in results] == [OK]


def test_stale_report_by_date_and_by_period(project: Config) -> None:
    """A report older than 12 months, or whose period ended over 12 months ago, is stale."""
    _edit(
        project,
        0,
        soc2={
            "type": "II",
            "report_date": date(2025, 5, 1),
            "period_end": date(2025, 3, 31),
            "reference": "r.pdf",
        },
    )
    _edit(
        project,
        1,
        soc2={
            "type": "II",
            "report_date": date(2026, 1, 1),
            "period_end": date(2025, 4, 30),
            "reference": "r.pdf",
        },
    )
    msgs = _warnings(project)
    assert any(m.startswith("OpenAI: SOC 2 report dated 2025-05-01") for m in msgs)
    # A period ends on or before the report date (the register refuses the other order), so a report
    # stale by its date is stale by its period too.
    assert any(m.startswith("OpenAI: SOC 2 report period ended 2025-03-31") for m in msgs)
    assert any(m.startswith("Anthropic: SOC 2 report period ended 2025-04-30") for m in msgs)
    assert not any(m.startswith("Anthropic: SOC 2 report dated") for m in msgs)


def test_report_ages_with_time(project: Config) -> None:
    """The same register turns stale a year later: time is an input, not the wall clock."""
    assert _warnings(project, today=TODAY) == []
    later = _warnings(project, today=date(2027, 6, 1))
    assert any("SOC 2 report dated" in m for m in later)
    assert any("review overdue" in m for m in later)


def test_missing_dpa_sla_review_and_report(project: Config) -> None:
    """Missing DPA, SLA, review and SOC 2 report each warn."""
    _edit(project, 0, dpa=None, incident_notification_sla_hours=None, review=None, soc2=None)
    msgs = _warnings(project)
    assert {m.split(": ", 1)[1] for m in msgs} == {
        "no signed DPA recorded",
        "no incident notification SLA",
        "no vendor review recorded",
        "no SOC 2 report on file",
    }


def test_report_type_is_not_assumed(project: Config) -> None:
    """A report recorded without its type is not taken as Type II (the evidence an auditor needs)."""
    _edit(project, 0, soc2={"report_date": date(2026, 1, 1), "period_end": date(2025, 12, 31), "reference": "r.pdf"})
    assert _warnings(project) == ["OpenAI: SOC 2 report type not recorded (not taken as Type II)"]


def test_overdue_review(project: Config) -> None:
    """A review whose next date has passed warns."""
    _edit(project, 0, review={"last": date(2025, 1, 1), "next": date(2026, 1, 1)})
    assert _warnings(project) == ["OpenAI: vendor review overdue since 2026-01-01"]


def test_unmanaged_gateway_provider(project: Config) -> None:
    """A gateway provider with no register entry (by name or alias) is an unmanaged vendor."""
    msgs = _warnings(project, providers=["openai", "Azure-OpenAI", "mistral"])
    assert msgs == ["unmanaged vendor: gateway provider 'mistral' has no register entry"]


def test_unmanaged_sdk_in_dependencies(project: Config) -> None:
    """AI SDKs in pyproject.toml or requirements*.txt without a vendor entry warn."""
    (project.root / "pyproject.toml").write_text(
        '[project]\nname = "app"\ndependencies = ["openai>=1.40", "httpx"]\n'
        '[project.optional-dependencies]\nml = ["cohere==5.0"]\n',
        encoding="utf-8",
    )
    (project.root / "requirements-dev.txt").write_text(
        "# tools\nmistralai>=1 ; python_version>'3.10'\n-e .\n", encoding="utf-8"
    )
    assert set(ai_sdks(project.root)) == {"openai", "cohere", "mistralai"}
    msgs = _warnings(project)
    assert msgs == [
        "unmanaged vendor: cohere (cohere) in pyproject.toml has no register entry",
        "unmanaged vendor: mistralai (mistral) in requirements-dev.txt has no register entry",
    ]


def test_type_one_and_unlisted_subprocessor(project: Config) -> None:
    """A Type I report and a subprocessor missing from the privacy policy warn."""
    _edit(
        project,
        0,
        privacy_policy_listed=False,
        soc2={"type": "I", "report_date": date(2026, 3, 1), "period_end": date(2026, 2, 1), "reference": "r"},
    )
    msgs = _warnings(project)
    assert "OpenAI: SOC 2 report is Type I (design only)" in msgs
    assert "OpenAI: subprocessor not listed in the privacy policy" in msgs


def test_report_formats(project: Config) -> None:
    """The review table renders as Markdown, CSV and JSON with the same rows and findings."""
    _edit(project, 1, dpa=None)
    rows = vendor_rows(load_vendors(project.root / "registers" / "vendors.yaml", today=TODAY), today=TODAY)
    md = render_report(rows, "md", today=TODAY)
    assert md.count("\n| ") == 3 and "| OpenAI |" in md
    parsed = list(csv.DictReader(io.StringIO(render_report(rows, "csv", today=TODAY))))
    assert [r["vendor"] for r in parsed] == ["OpenAI", "Anthropic"]
    assert parsed[1]["findings"] == "no signed DPA recorded" and parsed[0]["findings"] == ""
    data = orjson.loads(render_report(rows, "json", today=TODAY))
    assert data["as_of"] == "2026-06-01" and data["vendors"][0]["soc2_type"] == "II"


GATEWAY_TOML = """\
[gateway.providers.openai]
kind = "openai"
base_url = "https://api.openai.com/v1"
[gateway.providers.together]
kind = "openai_compatible"
base_url = "https://api.together.xyz/v1"
[gateway.providers.local]
kind = "openai_compatible"
base_url = "http://127.0.0.1:11434/v1"
[gateway.models]
"support-chat" = ["openai:gpt-4o-mini", "together:meta-llama", "local:llama3.1:8b"]
"shadow" = ["local:llama3.1:8b"]
"""


def test_gateway_config_providers_and_models(project: Config) -> None:
    """Providers in [gateway] need a vendor entry (self-hosted ones do not); its model aliases a registry entry."""
    from soc2ai.config import parse_config
    from soc2ai.governance.checks import FAIL
    from soc2ai.governance.models import check_models

    config = parse_config(GATEWAY_TOML, source=str(project.root / "soc2ai.toml"), root=project.root)
    results = check_vendors(config, today=TODAY)
    assert [r.message for r in results if r.status == WARN] == [
        "unmanaged vendor: gateway provider 'together' has no register entry"
    ]
    fails = [r.message for r in check_models(config, today=TODAY) if r.status == FAIL]
    assert fails == ["gateway model alias 'shadow' is not in models.yaml"]


_TWO_VENDORS = """\
vendors:
  - name: OpenAI
    aliases: [openai, azure-openai]
    services: [chat]
    subprocessor: true
    soc2: {type: II, report_date: 2026-03-01, period_end: 2026-01-31, reference: x.pdf}
    review: {last: 2026-03-01, next: 2027-03-01}
    owner: sec@example.com
  - name: Anthropic
    aliases:
      - claude
      - anthropic-api
    services: [chat]
    subprocessor: true
    review:
      last: 2026-03-01
      next: 2027-03-01
    owner: sec@example.com
"""


@pytest.mark.parametrize(
    ("old", "new", "field", "line", "words"),
    [
        # Contradictory dates: the next review before the last one, a report dated before its period ends.
        ("next: 2027-03-01}", "next: 2025-03-01}", "vendors[0].review.next", 7,
         "next review 2025-03-01 is before the last review 2026-03-01"),
        ("      next: 2027-03-01", "      next: 2026-02-28", "vendors[1].review.next", 17, "before the last review"),
        ("period_end: 2026-01-31", "period_end: 2026-03-02", "vendors[0].soc2.period_end", 6,
         "period_end 2026-03-02 is after report_date 2026-03-01"),
        ("report_date: 2026-03-01, period_end: 2026-01-31,",
         "report_date: 2026-03-01, period_end: 2026-01-31, period_start: 2026-02-01,",
         "vendors[0].soc2.period_start", 6, "period_start 2026-02-01 is after period_end 2026-01-31"),
        # One name for two vendors would make `vendors check` match a provider to either of them.
        ("      - anthropic-api", "      - Azure_OpenAI", "vendors[1].aliases[1]", 12,
         "alias 'Azure_OpenAI' is already an alias of vendor 'OpenAI'"),
        ("      - claude", "      - open-ai", "vendors[1].aliases[0]", 11, "is the name of vendor 'OpenAI'"),
        ("[openai, azure-openai]", "[openai, anthropic]", "vendors[0].aliases[1]", 3,
         "alias 'anthropic' is the name of vendor 'Anthropic'"),
    ],
)
def test_contradictory_entries_are_refused(
    tmp_path: Path, old: str, new: str, field: str, line: int, words: str
) -> None:
    """The register refuses entries that contradict themselves or each other, naming line and field."""
    path = tmp_path / "vendors.yaml"
    assert old in _TWO_VENDORS
    path.write_text(_TWO_VENDORS.replace(old, new), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_vendors(path, today=TODAY)
    assert (exc.value.file, exc.value.field, exc.value.line) == (str(path), field, line), str(exc.value)
    assert words in exc.value.reason


def test_consistent_dates_and_own_aliases_load(tmp_path: Path) -> None:
    """A report dated the day its period ends, and a vendor whose alias is its own name, are fine."""
    text = _TWO_VENDORS.replace("period_end: 2026-01-31", "period_end: 2026-03-01").replace(
        "[openai, azure-openai]", "[OpenAI, openai, azure-openai]"
    )
    path = tmp_path / "vendors.yaml"
    path.write_text(text, encoding="utf-8")
    assert [v.name for v in load_vendors(path, today=TODAY)] == ["OpenAI", "Anthropic"]
