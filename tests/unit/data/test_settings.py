"""The [data] section: defaults, validation errors that name the field and line."""

from __future__ import annotations

import pytest

from soc2ai.config import parse_config
from soc2ai.data.settings import DataSettings
from soc2ai.errors import ConfigError


def test_defaults_are_safe() -> None:
    """Defaults: PII confidential, financial/health restricted and kept 12 months, ledger >= 90 days."""
    s = DataSettings()
    assert s.classification.content["pii"] == "confidential"
    assert s.classification.content["financial"] == "restricted"
    assert s.retention.category_days == {"financial": 365, "health": 365}
    assert s.retention.ledger_days >= 90
    assert s.include_ledger


def test_ledger_retention_floor_named() -> None:
    """Inference logs under 90 days are rejected with the field and line."""
    text = "[data.retention]\nledger_days = 30\n"
    with pytest.raises(ConfigError) as exc:
        parse_config(text, source="s.toml")
    assert exc.value.field == "data.retention.ledger_days"
    assert exc.value.line == 2


def test_connector_needs_path() -> None:
    """A chroma connector without a path is a config error."""
    text = '[[data.connectors]]\nname = "v"\ntype = "chroma"\n'
    with pytest.raises(ConfigError, match="needs path"):
        parse_config(text, source="s.toml")


def test_connector_names_unique() -> None:
    """Two connectors with one name, or one called 'ledger', are rejected."""
    text = ('[[data.connectors]]\nname = "a"\ntype = "files"\npath = "x"\n'
            '[[data.connectors]]\nname = "a"\ntype = "files"\npath = "y"\n')
    with pytest.raises(ConfigError, match="unique"):
        parse_config(text, source="s.toml")


def test_unknown_label_rejected() -> None:
    """label_days with a made-up label fails."""
    text = "[data.retention.label_days]\npublic = 1\ninternal = 1\nconfidential = 1\nrestricted = 1\nsecret = 2\n"
    with pytest.raises(ConfigError, match="unknown label"):
        parse_config(text, source="s.toml")


def test_lineage_store_scheme() -> None:
    """The lineage store must be SQLite or PostgreSQL."""
    with pytest.raises(ConfigError):
        parse_config('[data]\nlineage_store = "mysql://x"\n', source="s.toml")
