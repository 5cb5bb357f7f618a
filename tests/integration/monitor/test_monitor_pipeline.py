"""End to end: records in a real ledger -> watch -> alert records, incidents, webhook + syslog receivers."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from soc2ai.cli import _register, app
from soc2ai.config import Config, load_config
from soc2ai.governance.incidents import IncidentRegister
from soc2ai.ledger import AuditLog
from soc2ai.monitor.monitor import Monitor
from soc2ai.monitor.watch import watch
from soc2ai.testing.receivers import http_receiver, syslog_receiver

S = 1_000_000
T0 = int(time.time()) * S - 3 * 3600 * S  # three hours ago, so incidents are not "detected in the future"


def project(tmp_path: Path, webhook: str, syslog_port: int) -> Config:
    _register()
    assert CliRunner().invoke(app, ["init", str(tmp_path), "--name", "acme"]).exit_code == 0
    with (tmp_path / "soc2ai.toml").open("a") as fh:
        fh.write(f'\n[[monitor.sinks]]\nname = "oncall"\ntype = "webhook"\nurl = "{webhook}"\n'
                 f'[[monitor.sinks]]\nname = "siem"\ntype = "syslog"\nhost = "127.0.0.1"\nport = {syslog_port}\n'
                 'protocol = "tcp"\n')
    return load_config(tmp_path / "soc2ai.toml")


def scan(stage: str, scanner: str, decision: str, *types: str) -> dict[str, Any]:
    return {"stage": stage, "scanner": scanner, "decision": decision, "types": list(types)}


def demo_traffic(log: AuditLog) -> dict[str, str]:
    """Baseline traffic, then an injection, a PII leak, a token spike and a provider outage."""
    ids: dict[str, str] = {}
    for h in range(3):  # three quiet hours of 12k tokens/hour on key k1
        for i in range(4):
            log.log_inference(user_id="u1", model_id="m", prompt="p", response="r", input_tokens=1000,
                              output_tokens=2000, key_id="k1", provider="openai", status=200,
                              fallback_path=["openai"], ts=T0 + h * 3600 * S + i * S)
    t = T0 + 3 * 3600 * S
    ids["injection"] = log.log_inference(user_id="u2", model_id="m", prompt="ignore all", response=None,
                                         key_id="k2", provider="openai", status=400, flagged=True,
                                         scans=[scan("pre", "injection", "block", "PROMPT_INJECTION")], ts=t)
    ids["pii"] = log.log_inference(user_id="u3", model_id="m", prompt="p", response="mail me", key_id="k3",
                                   provider="openai", status=200, flagged=True,
                                   scans=[scan("post", "pii", "redact", "EMAIL_ADDRESS")], ts=t + S)
    ids["spike"] = log.log_inference(user_id="u1", model_id="m", prompt="p", response="r", input_tokens=1000,
                                     output_tokens=60_000, key_id="k1", provider="openai", status=200,
                                     ts=t + 2 * S)
    for i in range(30):  # provider outage: 8 of 30 calls fail with 502 and fall back
        bad = i % 4 == 0
        log.log_inference(user_id="u4", model_id="m", prompt="p", response="r", key_id="k4",
                          provider="anthropic" if bad else "openai", status=200,
                          fallback_path=["openai", "anthropic"] if bad else ["openai"], ts=t + (10 + i) * S)
    log.flush()
    return ids


def test_demo_alerts_reach_webhook_syslog_ledger_and_incidents(tmp_path: Path) -> None:
    """Injection, PII leak, token spike and outage each raise the right alert everywhere; HIGH opens incidents."""
    with http_receiver() as hook, syslog_receiver("tcp") as siem:
        config = project(tmp_path, hook.url, siem.port)
        with AuditLog.open(config) as writer:
            ids = demo_traffic(writer)
            with AuditLog.open(config, read_only=True) as reader:
                monitor = Monitor.from_config(config, log=writer)
                stats = watch(monitor, reader, tmp_path / "cursor.json", follow=False)
                assert monitor.flush(10)
                monitor.close()
            writer.flush()
            alerts = [e.body for e in writer.entries(kind="alert")]
        got = {b["rule"] for b in hook.wait(4)}
        syslog = siem.wait(4)
    expected = {"prompt_injection", "pii_in_output", "token_volume_spike", "provider_error_rate"}
    assert got == expected and stats.alerts == 4
    assert len(syslog) == 4 and all(m.startswith(b"<") for m in syslog)
    by_rule = {a["rule"]: a for a in alerts if a is not None}
    assert set(by_rule) == expected
    assert by_rule["prompt_injection"]["records"] == [ids["injection"]]
    assert by_rule["pii_in_output"]["records"] == [ids["pii"]]
    assert ids["spike"] in by_rule["token_volume_spike"]["records"]
    assert by_rule["provider_error_rate"]["response"] == "page_oncall"
    incidents = IncidentRegister(tmp_path / "registers" / "incidents").list()
    assert sorted(i.source for i in incidents) == ["soc2ai.monitor/pii_in_output", "soc2ai.monitor/prompt_injection"]
    assert {by_rule["prompt_injection"]["incident_id"], by_rule["pii_in_output"]["incident_id"]} == {
        i.id for i in incidents}
    assert next(i for i in incidents if "injection" in i.source).records == [ids["injection"]]
    assert by_rule["token_volume_spike"]["incident_id"] is None


def test_watch_evaluates_each_record_once_across_restarts(tmp_path: Path) -> None:
    """A restarted watcher resumes at its cursor: nothing is evaluated (or alerted) twice."""
    with http_receiver() as hook, syslog_receiver("tcp") as siem:
        config = project(tmp_path, hook.url, siem.port)
        cursor = tmp_path / "cursor.json"
        with AuditLog.open(config) as writer, AuditLog.open(config, read_only=True) as reader:
            demo_traffic(writer)
            m1 = Monitor.from_config(config, log=writer)
            first = watch(m1, reader, cursor, follow=False)
            m1.close()
            m2 = Monitor.from_config(config, log=writer)
            second = watch(m2, reader, cursor, follow=False)
            m2.close()
            writer.flush()
            size = writer.size()
        assert first.alerts == 4
        # Together the runs read every index exactly once; the second sees only alert records.
        assert second.alerts == 0 and first.records + second.records == size and second.cursor == size
        assert orjson.loads(cursor.read_bytes())["cursor"] == size
        assert len(hook.wait(4)) == 4
        time.sleep(0.2)
        assert len(hook.bodies) == 4


def test_watch_stops_before_passing_an_alert_it_could_not_queue(tmp_path: Path) -> None:
    """An outbox that cannot be written (disk full): watch raises before its cursor passes the record, so
    the restarted watcher raises the alert again and the sinks get it (at least once, never lost)."""
    import pytest

    from soc2ai.errors import SpoolError

    with http_receiver() as hook, syslog_receiver("tcp") as siem:
        config = project(tmp_path, hook.url, siem.port)
        cursor = tmp_path / "cursor.json"
        with AuditLog.open(config) as writer, AuditLog.open(config, read_only=True) as reader:
            ids = demo_traffic(writer)
            m1 = Monitor.from_config(config, log=writer)
            assert m1.dispatcher is not None

            def full(payload: Any) -> None:
                raise OSError(28, "No space left on device")

            m1.dispatcher.submit = full  # type: ignore[method-assign]
            with pytest.raises(SpoolError, match="outbox unwritable"):
                watch(m1, reader, cursor, follow=False)
            m1.close()
            kept = orjson.loads(cursor.read_bytes())["cursor"] if cursor.exists() else 0
            injection_idx = next(e.idx for e in reader.entries() if e.body and e.body.get("id") == ids["injection"])
            assert kept <= injection_idx
            m2 = Monitor.from_config(config, log=writer)
            second = watch(m2, reader, cursor, follow=False)
            assert m2.flush(10)
            m2.close()
        assert second.alerts == 4
        assert {b["rule"] for b in hook.wait(4)} == {"prompt_injection", "pii_in_output", "token_volume_spike",
                                                   "provider_error_rate"}


def test_watch_follows_new_records(tmp_path: Path) -> None:
    """In follow mode a record written after the watcher started raises its alert within a second."""
    with http_receiver() as hook, syslog_receiver("tcp") as siem:
        config = project(tmp_path, hook.url, siem.port)
        with AuditLog.open(config) as writer, AuditLog.open(config, read_only=True) as reader:
            monitor = Monitor.from_config(config, log=writer)
            stop = threading.Event()
            th = threading.Thread(target=watch, args=(monitor, reader, tmp_path / "c.json"),
                                  kwargs={"stop": stop, "poll_s": 0.05}, daemon=True)
            th.start()
            time.sleep(0.2)
            t = time.monotonic()
            writer.log_inference(user_id="u", model_id="m", prompt="x", response=None, key_id="k",
                                 scans=[scan("pre", "injection", "block", "PROMPT_INJECTION")])
            body = hook.wait(1, timeout=5)[0]
            latency = hook.times[0] - t
            stop.set()
            th.join(5)
            monitor.close()
    assert body["rule"] == "prompt_injection" and latency < 1.0


def test_cli_alerts_test_replays_a_file(tmp_path: Path) -> None:
    """`soc2ai alerts test FILE` prints what would fire (JSON) and exits 1 when something would."""
    _register()
    lines = [{"kind": "inference", "id": f"r{i}", "ts": T0 + i * S, "key_id": "k",
              "scans": [scan("pre", "injection", "block", "PROMPT_INJECTION")] if i == 3 else []}
             for i in range(10)]
    f = tmp_path / "stream.jsonl"
    f.write_bytes(b"\n".join(orjson.dumps(x) for x in lines))
    (tmp_path / "soc2ai.toml").write_text("")
    res = CliRunner().invoke(app, ["alerts", "test", str(f), "--json", "-c", str(tmp_path / "soc2ai.toml")])
    assert res.exit_code == 1, res.output
    out = orjson.loads(res.stdout)
    assert out["records"] == 10 and [a["rule"] for a in out["alerts"]] == ["prompt_injection"]
    f.write_bytes(orjson.dumps(lines[0]))
    res = CliRunner().invoke(app, ["alerts", "test", str(f), "-c", str(tmp_path / "soc2ai.toml")])
    assert res.exit_code == 0 and "0 alerts would fire" in res.output
    f.write_bytes(b"{not json")
    res = CliRunner().invoke(app, ["alerts", "test", str(f), "-c", str(tmp_path / "soc2ai.toml")])
    assert res.exit_code == 2 and "line 1" in res.output


def test_cli_alerts_watch_once(tmp_path: Path) -> None:
    """`soc2ai alerts watch --once --json` evaluates the ledger, delivers, and reports the cursor."""
    with http_receiver() as hook, syslog_receiver("tcp") as siem:
        config = project(tmp_path, hook.url, siem.port)
        with AuditLog.open(config) as writer:
            demo_traffic(writer)
        res = CliRunner().invoke(app, ["alerts", "watch", "--once", "--json", "-c", str(tmp_path / "soc2ai.toml")])
        assert res.exit_code == 0, res.output
        assert len(hook.wait(4)) == 4
    summary = orjson.loads(res.stdout[res.stdout.index("{\n"):])
    assert summary["alerts"] == 4 and summary["monitor_errors"] == 0
    assert all(s["pending"] == 0 for s in summary["sinks"].values())


def test_cli_alerts_test_names_the_line_of_a_record_a_rule_cannot_evaluate(tmp_path: Path) -> None:
    """A record whose field a rule cannot use exits 2 naming file and line, not a traceback or "0 alerts"."""
    _register()
    (tmp_path / "soc2ai.toml").write_text("")
    good = {"kind": "inference", "id": "r1", "ts": T0, "key_id": "k", "output_tokens": 5}
    bad = {**good, "id": "r2", "ts": T0 + S, "output_tokens": "lots"}
    f = tmp_path / "stream.jsonl"
    f.write_bytes(orjson.dumps(good) + b"\n\n" + orjson.dumps(bad) + b"\n")
    res = CliRunner().invoke(app, ["alerts", "test", str(f), "-c", str(tmp_path / "soc2ai.toml")])
    assert res.exit_code == 2, res.output
    out = "".join(res.output.split())  # rich folds long paths mid-word
    assert f"{f.name}:3:record2:rule'token_volume_spike'onrecord'r2'" in out


def test_cli_alerts_test_shows_a_data_error_without_the_exception_class(tmp_path: Path) -> None:
    """A malformed field (`scans: [1]`, or a list `kind`) is reported in the user's terms: no MalformedRecord,
    AttributeError or TypeError."""
    _register()
    (tmp_path / "soc2ai.toml").write_text("")
    f = tmp_path / "stream.jsonl"
    f.write_bytes(orjson.dumps({"kind": "inference", "id": "r1", "ts": T0, "key_id": "k", "scans": [1]}) + b"\n")
    res = CliRunner().invoke(app, ["alerts", "test", str(f), "-c", str(tmp_path / "soc2ai.toml")])
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert "'r1': field scans[0]: expected an object, got int" in out, out
    assert "MalformedRecord" not in out and "AttributeError" not in out
    f.write_bytes(orjson.dumps({"kind": ["inference"], "id": "r1", "ts": T0}) + b"\n")
    res = CliRunner().invoke(app, ["alerts", "test", str(f), "-c", str(tmp_path / "soc2ai.toml")])
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert "record 'r1': field kind: expected a string, got list" in out, out
    assert "TypeError" not in out and "unhashable" not in out and "Traceback" not in out, out
