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


def test_section_error_without_its_own_header_still_names_a_line() -> None:
    """An error on a section written only as sub-tables points at the first of them, not at no line."""
    err = _error('[project]\nname = "x"\n\n[gateway.breaker]\nfailure_threshold = 1\n\n[gateway.models]\n'
                 '"chat" = ["opnai:gpt-4o"]\n\n[gateway.roles]\ninference = ["*"]\n')
    assert err.field == "gateway.models.chat.0" and err.line == 8
    assert "opnai" in err.reason and not err.reason.startswith("Value error")


_PROVIDER = '[gateway.providers.openai]\nbase_url = "https://api.openai.com/v1"\n\n'
_RULE = 'kind = "count"\nseverity = "LOW"\nresponse = "log"\n'
_SINK = 'type = "jsonl"\npath = "-"\n'


# Cross-field (model-level) checks point at the entry they are about, not at the whole section.
@pytest.mark.parametrize(
    ("text", "field", "line", "words"),
    [
        (_PROVIDER + '[gateway.models]\nfast = ["openai:a"]\n"chat" = ["openai:gpt-4o", "opnai:gpt-4o"]\n',
         "gateway.models.chat.1", 6, "provider 'opnai' is not in [gateway.providers]"),
        (_PROVIDER + '[gateway.models]\nfast = ["openai:a"]\nchat = []\n',
         "gateway.models.chat", 6, "the fallback chain is empty"),
        (_PROVIDER + '[gateway.models]\nchat = ["openai"]\n',
         "gateway.models.chat.0", 5, "'openai' must be 'provider:model'"),
        (f'[[monitor.sinks]]\nname = "a"\n{_SINK}\n[[monitor.sinks]]\n{_SINK}name = "a"\n',
         "monitor.sinks.1.name", 9, "duplicate sink name 'a'"),
        (f'[[monitor.rules]]\nname = "x"\n{_RULE}\n[[monitor.rules]]\nname = "y"\n{_RULE}\n'
         f'[[monitor.rules]]\n{_RULE}name = "x"\n',
         "monitor.rules.2.name", 17, "duplicate rule name 'x'"),
        (f'[[monitor.sinks]]\nname = "a"\n{_SINK}\n[[monitor.rules]]\nname = "x"\n{_RULE}sinks = ["a"]\n\n'
         f'[[monitor.rules]]\nname = "y"\n{_RULE}sinks = ["nowhere"]\n',
         "monitor.rules.1.sinks.0", 18, "unknown sink 'nowhere'"),
        (f'[[monitor.rules]]\nname = "spike"\n{_RULE.replace("count", "volume")}'
         'params = { window_s = 0 }\n',
         "monitor.rules.0.params.window_s", 6, "greater than or equal to 1"),
        (f'[[monitor.rules]]\nname = "spike"\n{_RULE.replace("count", "volume")}\n'
         '[monitor.rules.params]\nmetric = "tokens"\nwindow_s = 0\n',
         "monitor.rules.0.params.window_s", 9, "greater than or equal to 1"),
        ('[data.retention]\nledger_days = 365\n\n[data.retention.label_days]\npublic = 1\ninternal = 1\n',
         "data.retention.label_days", 4, "missing confidential, restricted"),
        ('[data.retention]\nlabel_days = { public = 1, internal = 1, confidential = 1, restricted = 1, secret = 2 }\n',
         "data.retention.label_days.secret", 2, "unknown label"),
        ('[data.retention.label_days]\npublic = 1\ninternal = 0\nconfidential = 1\nrestricted = 1\n',
         "data.retention.label_days.internal", 3, "at least 1 day"),
        ('[[data.connectors]]\nname = "a"\ntype = "files"\npath = "x"\n'
         '[[data.connectors]]\ntype = "files"\npath = "y"\nname = "a"\n',
         "data.connectors.1.name", 8, "unique"),
        ('[[data.connectors]]\nname = "ledger"\ntype = "files"\npath = "x"\n',
         "data.connectors.0.name", 2, "'ledger'"),
        ('[[data.connectors]]\nname = "pg"\ntype = "postgres"\n', "data.connectors.0.url", 1, "needs url"),
        ('[[monitor.sinks]]\nname = "w"\ntype = "webhook"\nurl = "ftp://x"\n',
         "monitor.sinks.0.url", 4, "http:// or https://"),
        ('[[monitor.suppressions]]\nstart = 2026-03-01T23:00:00Z\nend = 2026-03-01T22:00:00Z\nreason = "r"\n',
         "monitor.suppressions.0.end", 3, "end must be after start"),
    ],
)
def test_cross_field_check_names_the_exact_field_and_line(text: str, field: str, line: int, words: str) -> None:
    err = _error(text)
    assert (err.file, err.field, err.line) == ("soc2ai.toml", field, line), str(err)
    assert words in err.reason and not err.reason.startswith("Value error")


def test_byte_order_mark_is_not_a_syntax_error(tmp_path: Path) -> None:
    """A soc2ai.toml saved with a UTF-8 BOM loads like one without."""
    path = tmp_path / "soc2ai.toml"
    path.write_bytes(b'\xef\xbb\xbf[project]\nname = "bom"\n')
    assert load_config(path).project.name == "bom"


def test_misspelt_severity_in_incident_sla_is_an_error() -> None:
    """The misspelt key itself is named, with its own line, not the [governance.incident_sla_hours] header."""
    err = _error("[governance.incident_sla_hours]\nhgih = 10\n")
    assert (err.file, err.field, err.line) == ("soc2ai.toml", "governance.incident_sla_hours.hgih", 2)
    assert "unknown severity 'hgih'" in err.reason and not err.reason.startswith("Value error")


# Table-valued fields whose validators check each key: the error names the bad key and its line.
@pytest.mark.parametrize(
    ("text", "field", "line", "words"),
    [
        ("[governance.incident_sla_hours]\ncritical = 24\nhgih = 10\n",
         "governance.incident_sla_hours.hgih", 3, "unknown severity 'hgih'"),
        ("[governance]\nrequire_signed = false\nincident_sla_hours = { critical = 24, low = 0 }\n",
         "governance.incident_sla_hours.low", 3, "SLA for 'low' must be a positive number of hours"),
        ('[gateway.roles]\ninference = ["*"]\nroot = ["*"]\n',
         "gateway.roles.root", 3, "unknown role 'root'"),
        ('[gateway.cache]\nbackend = "off"\n\n[gateway.cache.ttl_s]\npublic = 60\nsecret = 5\n',
         "gateway.cache.ttl_s.secret", 6, "unknown classification 'secret'"),
        ("[gateway.cache.ttl_s]\npublic = 60\ninternal = -1\n",
         "gateway.cache.ttl_s.internal", 3, "ttl for 'internal' must be >= 0"),
    ],
)
def test_table_key_check_names_the_key_and_its_line(text: str, field: str, line: int, words: str) -> None:
    err = _error(text)
    assert (err.file, err.field, err.line) == ("soc2ai.toml", field, line), str(err)
    assert words in err.reason and not err.reason.startswith("Value error")


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
