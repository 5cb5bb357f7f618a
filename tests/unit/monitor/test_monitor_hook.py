"""Monitor: the gateway hook (observe / observe_inference), incidents, alert records, routing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _monitor_records import T0, inference, scan

from soc2ai.config import parse_config
from soc2ai.monitor.engine import Alert, RuleEngine
from soc2ai.monitor.monitor import Monitor
from soc2ai.monitor.outbox import Dispatcher, Outbox
from soc2ai.monitor.settings import MonitorSettings

INJ = [scan("pre", "injection", "block", "PROMPT_INJECTION")]


class FakeLog:
    """Collects appended records (the ledger's append never raises; neither does this)."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    def append(self, record: Any) -> str:
        self.records.append(record)
        return str(record.id)


class Capture:
    """A sink that remembers what it was given."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.got: list[dict[str, Any]] = []

    def deliver(self, alert: dict[str, Any]) -> None:
        self.got.append(alert)

    def probe(self) -> None:
        return

    def close(self) -> None:
        return


def test_high_alert_opens_incident_and_records_it(tmp_path: Path) -> None:
    """A HIGH alert opens an incident (records linked) and the ledger alert record carries its id."""
    opened: list[Alert] = []

    def opener(alert: Alert) -> str:
        opened.append(alert)
        return "INC-0042"

    log = FakeLog()
    m = Monitor(RuleEngine.from_settings(MonitorSettings()), log=log, open_incident=opener)
    body = inference(T0, scans=INJ)
    [alert] = m.observe(body)
    assert alert.incident_id == "INC-0042" and opened[0].records == [body["id"]]
    [rec] = log.records
    assert (rec.kind, rec.rule, rec.severity, rec.incident_id, rec.records) == (
        "alert", "prompt_injection", "HIGH", "INC-0042", [body["id"]])
    assert rec.attrs["alert_id"] == alert.id


def test_medium_alert_opens_no_incident_but_open_incident_rule_does() -> None:
    """MEDIUM alerts do not open incidents, except rules whose response is open_incident."""
    calls: list[str] = []
    m = Monitor(RuleEngine.from_settings(MonitorSettings()), open_incident=lambda a: calls.append(a.rule) or "INC-1")
    errors = [inference(T0 + i, status=500 if i > 15 else 200) for i in range(21)]
    fired = [a for b in errors for a in m.observe(b)]
    assert [a.rule for a in fired] == ["provider_error_rate"] and fired[0].incident_id is None
    [mod] = m.observe(inference(T0 + 50, scans=[scan("post", "moderation", "block", "MODERATION")]))
    assert mod.incident_id == "INC-1" and calls == ["content_policy_violation"]


def test_observe_never_raises() -> None:
    """A failing incident register, ledger and sink setup do not reach the caller; the alert still goes out."""

    def broken(alert: Alert) -> str:
        raise OSError("disk full")

    class BadLog:
        def append(self, record: Any) -> str:
            raise RuntimeError("boom")

    m = Monitor(RuleEngine.from_settings(MonitorSettings()), log=BadLog(), open_incident=broken)
    alerts = m.observe(inference(T0, scans=INJ))
    assert len(alerts) == 1 and alerts[0].incident_id is None
    assert m.errors == 2 and "boom" in (m.last_error or "")
    assert m.observe({"kind": "inference", "ts": T0, "scans": "not-a-list"}) == []
    assert m.errors == 3


def test_observe_inference_takes_log_inference_keywords() -> None:
    """observe_inference builds the body from log_inference's keywords, dropping content and user id."""
    m = Monitor(RuleEngine.from_settings(MonitorSettings()))
    alerts = m.observe_inference("req-1", ts=T0, user_id="alice@example.com", model_id="m", prompt="secret",
                                 response="text", key_id="k1", scans=INJ, status=400, fallback_path=("openai",))
    assert [a.records for a in alerts] == [["req-1"]]
    assert "alice" not in repr(alerts) and "secret" not in repr(alerts)


def test_routing_by_rule_sinks_and_min_severity(tmp_path: Path) -> None:
    """Alerts go to the rule's sinks, or to every sink whose min_severity they reach."""
    cfg = parse_config(f"""
[monitor]
outbox_dir = "{tmp_path / 'ob'}"
[[monitor.sinks]]
name = "pager"
type = "jsonl"
path = "-"
min_severity = "HIGH"
[[monitor.sinks]]
name = "siem"
type = "jsonl"
path = "-"
[[monitor.rules]]
name = "token_volume_spike"
kind = "volume"
severity = "MEDIUM"
response = "alert_oncall"
params = {{ min_history = 1, min_volume = 10 }}
sinks = ["pager", "siem"]
""", root=tmp_path)
    pager, siem = Capture("pager"), Capture("siem")
    m = Monitor.from_config(cfg, sinks=[pager, siem], open_incident=lambda a: None)
    m.observe(inference(T0, scans=[scan("post", "pii", "redact", "EMAIL_ADDRESS")]))   # HIGH: both
    m.observe(inference(T0 + 1, provider="x", status=200))
    m.observe(inference(T0 + 3600 * 1_000_000, output_tokens=10_000))                 # rule sinks: both
    m.observe(inference(T0 + 2, key="k9", scans=[scan("pre", "moderation", "block", "MODERATION")]))  # MEDIUM
    assert m.flush(5)
    m.close()
    # Delivery order is submit order, or trigger-time order for alerts waiting together (the outbox files
    # sort by the record's ts; the moderation record here is older than the spike): compare as sets.
    assert sorted(a["rule"] for a in pager.got) == ["pii_in_output", "token_volume_spike"]
    assert sorted(a["rule"] for a in siem.got) == ["content_policy_violation", "pii_in_output", "token_volume_spike"]


def test_dispatcher_without_workers_keeps_alerts_on_disk(tmp_path: Path) -> None:
    """Submitting without started threads still persists the alert (delivered by the next start)."""
    sink = Capture("s")
    d = Dispatcher(Outbox(tmp_path), [sink])
    d.submit(Alert(id="a" * 32, rule="r", kind="count", severity="LOW", response="log", message="m", ts=T0,
                   group="*", records=[]).to_dict())
    assert len(d.outbox.pending("s")) == 1 and sink.got == []
    d.start()
    assert d.flush(5) and len(sink.got) == 1
    d.close()


def test_rule_error_is_counted_and_other_alerts_still_handled() -> None:
    """A record one rule cannot evaluate still raises (and records) the other rules' alerts; the error shows."""
    log = FakeLog()
    m = Monitor(RuleEngine.from_settings(MonitorSettings()), log=log, open_incident=lambda a: None)
    body = inference(T0, scans=INJ)
    body["output_tokens"] = "many"
    assert [a.rule for a in m.observe(body)] == ["prompt_injection"]
    assert [r.rule for r in log.records] == ["prompt_injection"]
    assert m.errors == 1 and "token_volume_spike" in (m.last_error or "")


def test_last_error_of_a_malformed_record_names_the_field_not_the_exception_class() -> None:
    """monitor.last_error shows the data error's message; a non-string kind is one too, not a TypeError."""
    m = Monitor(RuleEngine.from_settings(MonitorSettings()), open_incident=lambda a: None)
    body = inference(T0, rid="r1", scans=INJ)
    body["output_tokens"] = "many"
    m.observe(body)
    assert m.last_error == ("evaluate: rule 'token_volume_spike' on record 'r1': "
                            "field output_tokens: expected a number of tokens, got str")
    assert m.observe({**inference(T0 + 1, rid="r2", scans=INJ), "kind": ["inference"]}) == []
    assert m.errors == 2
    assert m.last_error == "evaluate: record 'r2': field kind: expected a string, got list"
