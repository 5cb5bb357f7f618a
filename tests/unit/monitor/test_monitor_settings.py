"""Rule and sink settings: seed defaults, and bad definitions naming the rule and field."""

from __future__ import annotations

import pytest

from soc2ai.config import parse_config
from soc2ai.errors import ConfigError
from soc2ai.monitor.engine import RuleEngine, parse_rules
from soc2ai.monitor.settings import SEED_RULE_NAMES, MonitorSettings, seed_rules


def test_seed_rules_carry_the_seed_thresholds() -> None:
    """The four seed alerts ship with the seed's severities, responses and thresholds."""
    rules = {r.name: r for r in seed_rules()}
    assert set(SEED_RULE_NAMES) <= set(rules)
    assert (rules["prompt_injection"].severity, rules["prompt_injection"].response) == ("HIGH", "block_and_log")
    assert (rules["pii_in_output"].severity, rules["pii_in_output"].response) == ("HIGH", "redact_and_alert")
    vol = rules["token_volume_spike"]
    assert (vol.severity, vol.response, vol.params["multiplier"], vol.params["window_s"]) == (
        "MEDIUM", "alert_oncall", 3.0, 3600)
    err = rules["provider_error_rate"]
    assert (err.severity, err.response, err.params["threshold"], err.params["window_s"]) == (
        "MEDIUM", "page_oncall", 0.05, 300)
    assert rules["content_policy_violation"].response == "open_incident"


def test_configured_rule_overrides_seed_by_name() -> None:
    """A rule named like a seed rule replaces it; other rules are added after the seeds."""
    cfg = parse_config("""
[[monitor.rules]]
name = "prompt_injection"
kind = "detector"
severity = "critical"
response = "block_and_log"
params = { stage = "pre", types = ["PROMPT_INJECTION", "JAILBREAK"] }

[[monitor.rules]]
name = "many_denials"
kind = "count"
severity = "LOW"
response = "log"
params = { record_kind = "access", match = { decision = "deny" }, threshold = 3 }
""")
    rules = cfg.monitor.effective_rules()
    assert [r.name for r in rules][:1] == ["prompt_injection"]
    assert rules[0].severity == "CRITICAL"
    assert rules[-1].name == "many_denials"


def test_bad_param_in_config_names_rule_and_field() -> None:
    """A bad parameter fails at config load with the rule name, the parameter and a line number."""
    with pytest.raises(ConfigError) as err:
        parse_config("""
[[monitor.rules]]
name = "spike"
kind = "volume"
severity = "MEDIUM"
response = "alert_oncall"
params = { window_s = 0 }
""", source="soc2ai.toml")
    # The line of the parameter itself, not of the rule's [[monitor.rules]] header.
    assert (err.value.field, err.value.line) == ("monitor.rules.0.params.window_s", 7)
    # The field names the parameter; the text adds the rule's name but does not repeat the path.
    assert err.value.reason == "rule 'spike': Input should be greater than or equal to 1"
    assert str(err.value) == ("soc2ai.toml:7: monitor.rules.0.params.window_s: "
                              "rule 'spike': Input should be greater than or equal to 1")


@pytest.mark.parametrize(("item", "field"), [
    ({"name": "a", "kind": "volume", "severity": "LOW", "response": "log", "params": {"multiplier": 0.5}},
     "rules[a].params.multiplier"),
    ({"name": "b", "kind": "detector", "severity": "LOW", "response": "log", "params": {"stage": "middle"}},
     "rules[b].params.stage"),
    ({"name": "c", "kind": "error_rate", "severity": "LOW", "response": "log", "params": {"bogus": 1}},
     "rules[c].params.bogus"),
    ({"name": "d", "kind": "sideways", "severity": "LOW", "response": "log"}, "rules[d].kind"),
    ({"name": "e", "kind": "count", "severity": "URGENT", "response": "log"}, "rules[e].severity"),
])
def test_parse_rules_names_rule_and_field(item: dict[str, object], field: str) -> None:
    """parse_rules raises ConfigError whose field is rules[<name>].<field>."""
    with pytest.raises(ConfigError) as err:
        parse_rules([item], source="rules.json")
    assert err.value.field == field
    assert err.value.file == "rules.json"


def test_sink_needs_its_destination() -> None:
    """A webhook sink without url, or pagerduty without a routing key file, is a config error."""
    with pytest.raises(ConfigError, match="needs url"):
        parse_config('[[monitor.sinks]]\nname = "w"\ntype = "webhook"\n')
    with pytest.raises(ConfigError, match="routing_key_file"):
        parse_config('[[monitor.sinks]]\nname = "w"\ntype = "webhook"\nurl = "http://x"\nformat = "pagerduty"\n')


def test_rule_routing_to_unknown_sink_is_rejected() -> None:
    """A rule naming a sink that does not exist fails at load."""
    with pytest.raises(ConfigError, match="unknown sink"):
        parse_config('[[monitor.rules]]\nname = "x"\nkind = "count"\nseverity = "LOW"\nresponse = "log"\n'
                     'sinks = ["nowhere"]\n')


def test_no_enabled_rules_fails_closed() -> None:
    """An engine with nothing to evaluate is a configuration error, not a silent pass."""
    with pytest.raises(ConfigError, match="no enabled alert rules"):
        RuleEngine.from_settings(MonitorSettings(default_rules=False))


def test_cross_field_volume_error_names_the_parameter() -> None:
    """min_history above baseline_windows names params.min_history, not a location-less params.params."""
    item = {"name": "v", "kind": "volume", "severity": "LOW", "response": "log",
            "params": {"min_history": 5, "baseline_windows": 2}}
    with pytest.raises(ConfigError) as err:
        parse_rules([item], source="rules.json")
    assert err.value.field == "rules[v].params.min_history"
    assert "baseline_windows" in str(err.value) and "Value error" not in str(err.value)
    with pytest.raises(ConfigError) as cfg_err:
        parse_config('[[monitor.rules]]\nname = "v"\nkind = "volume"\nseverity = "LOW"\nresponse = "log"\n'
                     "params = { min_history = 5, baseline_windows = 2 }\n", source="soc2ai.toml")
    assert cfg_err.value.field == "monitor.rules.0.params.min_history"
    assert cfg_err.value.reason == "rule 'v': must not exceed baseline_windows (2)"


def test_parse_rules_takes_the_parameter_from_the_located_error() -> None:
    """A bad parameter given as data is located by the LocatedError (as parse_config does), not parsed
    back out of the message: the field names it once, the text keeps the rule name."""
    item = {"name": "spike", "kind": "volume", "severity": "LOW", "response": "log", "params": {"window_s": 0}}
    with pytest.raises(ConfigError) as err:
        parse_rules([item], source="rules.json")
    assert (err.value.file, err.value.line, err.value.field) == ("rules.json", None, "rules[spike].params.window_s")
    assert err.value.reason == "rule 'spike': Input should be greater than or equal to 1"
    assert str(err.value).count("params.window_s") == 1, str(err.value)
    # A nested parameter (a list entry) is located the same way.
    item = {"name": "d", "kind": "detector", "severity": "LOW", "response": "log", "params": {"types": ["A", 7]}}
    with pytest.raises(ConfigError) as err:
        parse_rules([item], source="rules.json")
    assert err.value.field == "rules[d].params.types.1"
    assert err.value.reason == "rule 'd': Input should be a valid string"
