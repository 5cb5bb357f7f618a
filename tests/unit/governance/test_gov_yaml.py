"""Register files: syntax errors, unknown fields, wrong types, missing fields, future dates, empties."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from soc2ai.config import Config
from soc2ai.errors import ConfigError
from soc2ai.governance._yaml import RegisterNewerError, register_remedy
from soc2ai.governance.checks import FAIL
from soc2ai.governance.models import ModelRegistry, check_models
from soc2ai.governance.sources import SourceRegister, check_sources
from soc2ai.governance.vendors import check_vendors, load_vendors

TODAY = date(2026, 6, 1)

VENDOR = """\
vendors:
  - name: OpenAI
    services: [chat]
    subprocessor: true
    privacy_policy_listed: true
    soc2: {type: II, report_date: 2026-03-01, period_end: 2026-01-31, reference: x.pdf}
    dpa: {signed: 2025-06-01}
    review: {last: 2026-03-01, next: 2027-03-01}
    incident_notification_sla_hours: 72
    owner: sec@example.com
"""


def _write(tmp_path: Path, text: str, name: str = "vendors.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_vendor_file_loads(tmp_path: Path) -> None:
    """The reference vendor entry validates and keeps its dates as dates."""
    vendors = load_vendors(_write(tmp_path, VENDOR), today=TODAY)
    assert vendors[0].name == "OpenAI"
    assert vendors[0].soc2 is not None and vendors[0].soc2.report_date == date(2026, 3, 1)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    """A YAML syntax error reports the file and the line of the problem."""
    path = _write(tmp_path, VENDOR.replace("services: [chat]", "services: [chat"))
    with pytest.raises(ConfigError) as exc:
        load_vendors(path, today=TODAY)
    assert exc.value.file == str(path)
    assert exc.value.line is not None and 3 <= exc.value.line <= 5
    assert "invalid YAML" in str(exc.value)


def test_unknown_field_names_field_and_line(tmp_path: Path) -> None:
    """A misspelt key is rejected with its dotted path and its own line."""
    path = _write(tmp_path, VENDOR.replace("    owner: sec", "    ownr: sec"))
    with pytest.raises(ConfigError) as exc:
        load_vendors(path, today=TODAY)
    assert exc.value.field == "vendors[0].ownr"
    assert exc.value.line == 10
    assert "unknown field" in str(exc.value)


def test_wrong_type_is_not_coerced(tmp_path: Path) -> None:
    """A string where a boolean belongs is an error (no 'yes' -> True coercion)."""
    path = _write(tmp_path, VENDOR.replace("subprocessor: true", 'subprocessor: "yes"'))
    with pytest.raises(ConfigError) as exc:
        load_vendors(path, today=TODAY)
    assert exc.value.field == "vendors[0].subprocessor"
    assert exc.value.line == 4


def test_wrong_type_for_sla(tmp_path: Path) -> None:
    """A non-integer SLA names the field and the line."""
    path = _write(tmp_path, VENDOR.replace("sla_hours: 72", "sla_hours: soon"))
    with pytest.raises(ConfigError) as exc:
        load_vendors(path, today=TODAY)
    assert exc.value.field == "vendors[0].incident_notification_sla_hours"
    assert exc.value.line == 9


def test_missing_required_field(tmp_path: Path) -> None:
    """A missing required field is named; the line points at the entry."""
    path = _write(tmp_path, VENDOR.replace("    owner: sec@example.com\n", ""))
    with pytest.raises(ConfigError) as exc:
        load_vendors(path, today=TODAY)
    assert exc.value.field == "vendors[0].owner"
    assert exc.value.line == 2
    assert "required" in str(exc.value)


def test_future_date_rejected(tmp_path: Path) -> None:
    """A SOC 2 report dated after today is a data-entry error, not a fresh report."""
    path = _write(tmp_path, VENDOR.replace("report_date: 2026-03-01", "report_date: 2026-09-01"))
    with pytest.raises(ConfigError) as exc:
        load_vendors(path, today=TODAY)
    assert exc.value.field == "vendors[0].soc2.report_date"
    assert exc.value.line == 6
    assert "future" in str(exc.value)


def test_invalid_calendar_date(tmp_path: Path) -> None:
    """An impossible date string is an error naming the field."""
    path = _write(tmp_path, VENDOR.replace("signed: 2025-06-01", 'signed: "2025-02-30"'))
    with pytest.raises(ConfigError) as exc:
        load_vendors(path, today=TODAY)
    assert exc.value.field == "vendors[0].dpa.signed"


def test_duplicate_key_rejected(tmp_path: Path) -> None:
    """A key given twice is an error (PyYAML would silently keep the last one)."""
    path = _write(
        tmp_path,
        VENDOR.replace(
            "    owner: sec@example.com\n", "    owner: sec@example.com\n    owner: other@example.com\n"
        ),
    )
    with pytest.raises(ConfigError) as exc:
        load_vendors(path, today=TODAY)
    assert exc.value.field == "owner"
    assert exc.value.line == 11


def test_duplicate_vendor_rejected(tmp_path: Path) -> None:
    """Two entries for the same vendor are an error."""
    body = VENDOR.split("\n", 1)[1]
    path = _write(tmp_path, VENDOR + body)
    with pytest.raises(ConfigError, match="duplicate vendor"):
        load_vendors(path, today=TODAY)


def test_empty_and_missing_registers_fail(project: Config) -> None:
    """An empty or missing register is a FAIL, never a pass."""
    (project.root / "registers" / "vendors.yaml").write_text("", encoding="utf-8")
    (project.root / "registers" / "models.yaml").write_text("models: []\n", encoding="utf-8")
    (project.root / "registers" / "data_sources.yaml").unlink()
    vendors = check_vendors(project, today=TODAY, providers=[])
    models = check_models(project, gateway_models=[], today=TODAY)
    sources = check_sources(project, today=TODAY)
    assert [r.status for r in vendors] == [FAIL] and "empty" in vendors[0].message
    assert [r.status for r in models] == [FAIL] and "no models" in models[0].message
    assert [r.status for r in sources] == [FAIL] and "not found" in sources[0].message


def test_top_level_list_instead_of_mapping(tmp_path: Path) -> None:
    """A register that is a bare list (not `models:`) is rejected with a clear message."""
    path = _write(tmp_path, "- alias: x\n", "models.yaml")
    with pytest.raises(ConfigError) as exc:
        ModelRegistry.load(path, today=TODAY)
    assert exc.value.file == str(path)
    assert exc.value.line == 1


def test_source_register_wrong_enum(tmp_path: Path) -> None:
    """An unknown origin value names the field and line."""
    path = _write(
        tmp_path,
        """\
sources:
  - id: s1
    name: S
    origin: borrowed
    owner: a@example.com
    classification: internal
    pii_expected: false
    used_for: [rag]
""",
        "data_sources.yaml",
    )
    with pytest.raises(ConfigError) as exc:
        SourceRegister.load(path)
    assert exc.value.field == "sources[0].origin"
    assert exc.value.line == 4


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ("report_date: 2025-02-29", "vendors[0].soc2.report_date"),  # not a leap year
        ("report_date: 2026-02-30", "vendors[0].soc2.report_date"),
    ],
)
def test_impossible_date_names_file_line_and_field(tmp_path: Path, bad: str, field: str) -> None:
    """PyYAML builds dates itself; an impossible one is a register error, not a ValueError traceback."""
    path = _write(tmp_path, VENDOR.replace("report_date: 2026-03-01", bad))
    with pytest.raises(ConfigError) as exc:
        load_vendors(path, today=TODAY)
    assert exc.value.file == str(path) and exc.value.line == 6 and exc.value.field == field
    assert bad.split(": ")[1] in str(exc.value)


def test_impossible_date_in_check_is_a_fail_line(project: Config) -> None:
    """`vendors check` reports the bad date as a FAIL line naming the place (no crash)."""
    path = project.root / "registers" / "vendors.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    i = next(n for n, line in enumerate(lines) if "dpa: {signed:" in line)
    lines[i] = "    dpa: {signed: 2025-02-29}\n"
    path.write_text("".join(lines), encoding="utf-8")
    results = check_vendors(project, today=TODAY, providers=[])
    assert [r.status for r in results] == [FAIL]
    assert f"vendors.yaml:{i + 1}: vendors[0].dpa.signed: invalid value '2025-02-29'" in results[0].message


def test_bad_tagged_int_names_the_field(tmp_path: Path) -> None:
    """Other PyYAML value errors (an explicit !!int that is not one) are located the same way."""
    path = _write(tmp_path, VENDOR.replace("hours: 72", "hours: !!int seventy"))
    with pytest.raises(ConfigError) as exc:
        load_vendors(path, today=TODAY)
    assert exc.value.field == "vendors[0].incident_notification_sla_hours" and exc.value.line == 9


def test_duplicate_vendor_names_the_second_entry(tmp_path: Path) -> None:
    """A duplicate points at the repeated entry's name, not at the `vendors:` line."""
    path = _write(tmp_path, VENDOR + VENDOR.split("\n", 1)[1].replace("name: OpenAI", "name: openai"))
    with pytest.raises(ConfigError) as exc:
        load_vendors(path, today=TODAY)
    assert (exc.value.field, exc.value.line) == ("vendors[1].name", 11)
    assert exc.value.reason == "duplicate vendor 'openai'"


def test_duplicate_model_alias_and_source_id_name_the_entry(tmp_path: Path) -> None:
    entry = "  - alias: a\n    provider: p\n    model_id: m\n    data_classes: [public]\n    owner: o\n"
    with pytest.raises(ConfigError) as exc:
        ModelRegistry.load(_write(tmp_path, "models:\n" + entry + entry, "models.yaml"), today=TODAY)
    assert (exc.value.field, exc.value.line) == ("models[1].alias", 7)
    source = (
        "  - id: s\n    name: S\n    origin: internal\n    owner: o\n    classification: public\n"
        "    pii_expected: false\n    used_for: [rag]\n"
    )
    with pytest.raises(ConfigError) as exc:
        SourceRegister.load(_write(tmp_path, "sources:\n" + source + source, "data_sources.yaml"))
    assert (exc.value.field, exc.value.line) == ("sources[1].id", 9)


@pytest.mark.parametrize("value", ["0", "1767225600", "20260301"])
def test_number_for_a_date_is_a_wrong_type(tmp_path: Path, value: str) -> None:
    """Numbers are not Unix timestamps here: `report_date: 0` is not 1970-01-01."""
    path = _write(tmp_path, VENDOR.replace("report_date: 2026-03-01", f"report_date: {value}"))
    with pytest.raises(ConfigError) as exc:
        load_vendors(path, today=TODAY)
    assert (exc.value.field, exc.value.line) == ("vendors[0].soc2.report_date", 6)
    assert "not a number" in exc.value.reason


def test_future_date_rejected_without_an_explicit_today(tmp_path: Path) -> None:
    """Readers that pass no date (`sources list`, `models list`, the gateway) still refuse the future."""
    path = _write(tmp_path, VENDOR.replace("signed: 2025-06-01", "signed: 2999-01-01"))
    with pytest.raises(ConfigError) as exc:
        load_vendors(path)
    assert exc.value.field == "vendors[0].dpa.signed" and "future" in exc.value.reason


def test_wrong_shape_says_what_is_expected(tmp_path: Path) -> None:
    """Not "Input should be a valid dictionary or instance of VendorsFile": the key and the shape."""
    with pytest.raises(ConfigError) as exc:
        load_vendors(_write(tmp_path, "- name: OpenAI\n"), today=TODAY)
    assert exc.value.field == "vendors" and exc.value.line == 1
    assert exc.value.reason == "expected a mapping with a `vendors:` key, got a list"
    nested = VENDOR.replace("dpa: {signed: 2025-06-01}", "dpa: [2025-06-01]")
    with pytest.raises(ConfigError) as exc:
        load_vendors(_write(tmp_path, nested), today=TODAY)
    assert exc.value.field == "vendors[0].dpa" and exc.value.reason == "expected a mapping (key: value), got a list"


def test_validator_messages_have_no_pydantic_prefix(tmp_path: Path) -> None:
    path = _write(tmp_path, VENDOR.replace("report_date: 2026-03-01", "report_date: 2026-09-01"))
    with pytest.raises(ConfigError) as exc:
        load_vendors(path, today=TODAY)
    assert exc.value.reason == "date 2026-09-01 is in the future (today is 2026-06-01)"
    with pytest.raises(RegisterNewerError) as newer:
        load_vendors(path, today=TODAY, as_of=True)
    assert newer.value.reason == "date 2026-09-01 is after 2026-06-01, the day checked: the register is read as it stands now"


def test_future_date_against_the_real_today(tmp_path: Path) -> None:
    """Without a check date, a date after today is an error in the register itself."""
    path = _write(tmp_path, VENDOR.replace("report_date: 2026-03-01", "report_date: 2999-09-01"))
    with pytest.raises(ConfigError) as exc:
        load_vendors(path)
    assert exc.value.reason.startswith("date 2999-09-01 is in the future (today is ")
    assert not isinstance(exc.value, RegisterNewerError)
    assert register_remedy(exc.value) == "fix the register, or run `soc2ai init`"


def test_check_as_of_an_earlier_day_names_the_way_out(project: Config) -> None:
    """`check --today` before a recorded date: the register is newer than that day, not wrong, and the
    remedy says how to check it as it stood then (not "fix the register")."""
    for check in (check_vendors, check_models):
        results = check(project, today=date(2025, 1, 1), as_of=True)
        assert len(results) == 1 and results[0].status == FAIL, check
        assert "is after 2025-01-01, the day checked" in results[0].message
        assert "git show" in results[0].remedy and "fix the register" not in results[0].remedy
        results = check(project, today=date(2025, 1, 1))  # a clock set back: the register is wrong
        assert "is in the future" in results[0].message and results[0].remedy.startswith("fix the register")
