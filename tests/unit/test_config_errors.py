"""soc2ai.toml errors name the file, the line and the field, in the register files' words."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from soc2ai.config import load_config, parse_config
from soc2ai.errors import ConfigError
from soc2ai.governance.checks import FAIL
from soc2ai.governance.incidents import IncidentRegister, check_incidents


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, source="soc2ai.toml")
    return exc.value


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        ('[ledger]\nretention_days = "365"\n', "ledger.retention_days", 2),
        ('[governance]\nrequire_signed = "yes"\n', "governance.require_signed", 2),
        ('[gateway]\nport = "8787"\n', "gateway.port", 2),
    ],
)
def test_quoted_number_or_boolean_is_a_wrong_type(text: str, field: str, line: int) -> None:
    """TOML has real numbers and booleans: a quoted one is a typo, not silently coerced."""
    err = _error(text)
    assert (err.field, err.line) == (field, line)


def test_unknown_and_missing_fields_use_the_register_wording() -> None:
    """Same words as the register files, not pydantic's "Extra inputs are not permitted"."""
    assert _error('[project]\nname = "x"\nnmae = "y"\n').reason == "unknown field"
    err = _error('[[monitor.sinks]]\ntype = "jsonl"\npath = "a"\n')
    assert err.reason == "required field is missing" and err.field == "monitor.sinks.0.name"


def test_section_check_without_its_own_header_still_names_a_line() -> None:
    """A [gateway] check on sub-tables only points at the first of them, not at no line."""
    err = _error(
        '[project]\nname = "x"\n\n[gateway.providers.openai]\nbase_url = "https://api.openai.com/v1"\n\n'
        '[gateway.models]\n"chat" = ["opnai:gpt-4o"]\n'
    )
    assert err.field == "gateway" and err.line == 4
    assert "opnai" in err.reason and not err.reason.startswith("Value error")


def test_byte_order_mark_is_not_a_syntax_error(tmp_path: Path) -> None:
    """A soc2ai.toml saved with a UTF-8 BOM loads like one without."""
    path = tmp_path / "soc2ai.toml"
    path.write_bytes(b'\xef\xbb\xbf[project]\nname = "bom"\n')
    assert load_config(path).project.name == "bom"


def test_misspelt_severity_in_incident_sla_is_an_error() -> None:
    err = _error("[governance.incident_sla_hours]\nhgih = 10\n")
    assert err.field == "governance.incident_sla_hours" and err.line == 1 and "hgih" in err.reason


def test_partial_sla_table_keeps_the_other_severities(tmp_path: Path) -> None:
    """Setting only `critical` must not leave `high` without an SLA (the check crashed on KeyError)."""
    config = parse_config("[governance.incident_sla_hours]\ncritical = 1\n", root=tmp_path)
    assert config.governance.incident_sla_hours["high"] == 72
    now = datetime(2026, 6, 1, tzinfo=UTC)
    reg = IncidentRegister(tmp_path / "registers" / "incidents", clock=lambda: now)
    reg.open(title="t", severity="high", source="s", description="d", detected_at=datetime(2026, 5, 1, tzinfo=UTC))
    results = check_incidents(config, now=now)
    late = [r for r in results if r.check_id == "incidents.sla"]
    assert [r.status for r in late] == [FAIL] and "72 h SLA" in late[0].message
