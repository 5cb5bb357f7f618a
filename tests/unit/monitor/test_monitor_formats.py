"""Sink payload formats: Slack, PagerDuty Events v2, RFC 5424, OCSF Detection Finding, OpenTelemetry."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from soc2ai.monitor.engine import Alert
from soc2ai.monitor.sinks.interface import test_event as make_test_event
from soc2ai.monitor.sinks.ocsf import OCSF_VERSION, detection_finding
from soc2ai.monitor.sinks.syslog import format_5424
from soc2ai.monitor.sinks.webhook import pagerduty_payload, slack_payload

T0 = 1_767_225_600_123_456


def alert(**kw: Any) -> dict[str, Any]:
    base = Alert(id="a" * 32, rule="prompt_injection", kind="detector", severity="HIGH",
                 response="block_and_log", message='prompt_injection: PROMPT_INJECTION at "pre" ]',
                 ts=T0, group="key-1", records=["r1", "r2"], details={"types": ["PROMPT_INJECTION"]},
                 incident_id="INC-0001", description="Prompt injection attempt")
    return {**base.to_dict(), **kw}


def test_pagerduty_event_v2_shape() -> None:
    """PagerDuty events carry routing key, trigger action, dedup key, mapped severity and urgency."""
    body = pagerduty_payload(alert(), "acme", "R" * 32)
    assert body["routing_key"] == "R" * 32 and body["event_action"] == "trigger"
    assert body["dedup_key"] == "soc2ai:acme:prompt_injection:key-1"
    p = body["payload"]
    assert (p["severity"], p["source"], p["timestamp"]) == ("error", "acme", "2026-01-01T00:00:00.123456Z")
    assert p["custom_details"]["urgency"] == "high"
    medium = pagerduty_payload(alert(severity="MEDIUM", response="alert_oncall"), "acme", "k")
    assert (medium["payload"]["severity"], medium["payload"]["custom_details"]["urgency"]) == ("warning", "low")
    paged = pagerduty_payload(alert(severity="MEDIUM", response="page_oncall"), "acme", "k")
    assert paged["payload"]["custom_details"]["urgency"] == "high"


def test_slack_payload_has_text_and_block() -> None:
    """Slack-compatible body: a text fallback and a mrkdwn section naming rule, response, incident."""
    body = slack_payload(alert(), "acme")
    assert body["text"].startswith(":rotating_light: [HIGH] prompt_injection")
    section = body["blocks"][0]["text"]["text"]
    assert "`block_and_log`" in section and "INC-0001" in section


RFC5424 = re.compile(
    rb"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (?P<host>[!-~]{1,255}) "
    rb"(?P<app>[!-~]{1,48}) (?P<proc>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) "
    rb"(?P<sd>\[soc2ai@32473( [a-z_]+=\"([^\"\\\]]|\\[\"\\\]])*\")+\]) \xef\xbb\xbf(?P<msg>.*)$", re.S)


def test_syslog_message_is_rfc5424() -> None:
    """Header fields, PRI from facility and severity, escaped structured data, BOM-prefixed UTF-8 message."""
    raw = format_5424(alert(), facility=13, app_name="soc2ai", hostname="gw 1", procid=42, project="acme")
    m = RFC5424.match(raw)
    assert m is not None, raw
    assert int(m["pri"]) == 13 * 8 + 3
    assert (m["host"], m["proc"], m["msgid"]) == (b"gw1", b"42", b"DETECTOR")
    assert b'incident="INC-0001"' in m["sd"] and b'records="2"' in m["sd"]
    assert m["msg"].decode() == alert()["message"]
    low = RFC5424.match(format_5424(alert(severity="LOW"), facility=16, hostname="h", procid=1))
    assert low is not None and int(low["pri"]) == 16 * 8 + 5


# --- OCSF: validated against the published 1.5.0 schema, offline -------------------------------------

def _schema_path() -> Path:
    ojs = pytest.importorskip("ocsf_json_schema")
    return Path(ojs.__file__).parent / "ocsf" / f"{OCSF_VERSION}.json"


@cache
def ocsf_schema() -> Any:
    """The compiled OCSF schema, parsed by ocsf-lib."""
    from ocsf.schema import from_file

    return from_file(str(_schema_path()))


def _check_obj(schema: Any, attrs: dict[str, Any], data: dict[str, Any], profiles: set[str], where: str,
               errors: list[str]) -> None:
    """Walk an event with ocsf-lib's model: required attrs, unknown attrs, enums, nested objects, types."""
    for name, attr in attrs.items():
        if attr.requirement == "required" and (attr.profile is None or attr.profile in profiles) \
                and name not in data:
            errors.append(f"{where}.{name}: required")
    for name, value in data.items():
        attr = attrs.get(name)
        if attr is None:
            errors.append(f"{where}.{name}: not in the schema")
            continue
        values = value if attr.is_array else [value]
        if attr.is_array and not isinstance(value, list):
            errors.append(f"{where}.{name}: expected an array")
            continue
        for v in values:
            if attr.enum and str(v) not in attr.enum:
                errors.append(f"{where}.{name}: {v!r} not in enum")
            if attr.type in ("integer_t", "long_t", "timestamp_t") and not isinstance(v, int):
                errors.append(f"{where}.{name}: expected integer")
            if attr.type == "string_t" and not isinstance(v, str):
                errors.append(f"{where}.{name}: expected string")
            if attr.type == "boolean_t" and not isinstance(v, bool):
                errors.append(f"{where}.{name}: expected boolean")
            obj = schema.objects.get(attr.type)
            if obj is not None and attr.type != "object":
                if not isinstance(v, dict):
                    errors.append(f"{where}.{name}: expected object")
                    continue
                group = (obj.constraints or {}).get("at_least_one")
                if group and not any(k in v for k in group):
                    errors.append(f"{where}.{name}: needs one of {group}")
                _check_obj(schema, obj.attributes, v, profiles, f"{where}.{name}", errors)


def ocsf_errors(event: dict[str, Any]) -> list[str]:
    """Everything wrong with ``event`` as a Detection Finding (empty = valid)."""
    schema = ocsf_schema()
    cls = next(c for c in schema.classes.values() if c.uid == event.get("class_uid"))
    errors: list[str] = []
    profiles = set(event.get("metadata", {}).get("profiles", []))
    _check_obj(schema, cls.attributes, event, profiles, cls.name, errors)
    if event["type_uid"] != event["class_uid"] * 100 + event["activity_id"]:
        errors.append("type_uid != class_uid * 100 + activity_id")
    return errors


def jsonschema_errors(event: dict[str, Any]) -> list[str]:
    """Validate with the JSON Schema generated from the same packaged OCSF schema (draft 2020-12)."""
    import jsonschema
    from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

    s = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=OCSF_VERSION))
    js = s.get_class_schema(class_name="detection_finding", profiles=event["metadata"]["profiles"])
    validator = jsonschema.Draft202012Validator(js)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(event)]


@pytest.mark.parametrize(("kind", "severity", "response"), [
    ("detector", "HIGH", "block_and_log"), ("detector", "HIGH", "redact_and_alert"),
    ("volume", "MEDIUM", "alert_oncall"), ("error_rate", "MEDIUM", "page_oncall"),
    ("detector", "MEDIUM", "open_incident"), ("count", "LOW", "log"), ("count", "CRITICAL", "log"),
])
def test_ocsf_detection_finding_validates(kind: str, severity: str, response: str) -> None:
    """Every alert shape maps to a Detection Finding (2004) valid against the OCSF 1.5.0 schema."""
    event = detection_finding(alert(kind=kind, severity=severity, response=response), project="acme")
    assert event["class_uid"] == 2004 and event["type_uid"] == 200401
    assert ocsf_errors(event) == []
    assert jsonschema_errors(event) == []


def test_probe_event_is_valid_ocsf() -> None:
    """The readiness probe's test event is a valid finding too (SIEMs reject malformed events)."""
    event = detection_finding(make_test_event("acme", T0), project="acme")
    assert ocsf_errors(event) == [] and jsonschema_errors(event) == []


def test_validators_catch_a_broken_event() -> None:
    """The schema checks fail on a missing required field, a bad enum and an unknown attribute."""
    event = detection_finding(alert(), project="acme")
    del event["finding_info"]["uid"]
    event["severity_id"] = 42
    event["surprise"] = 1
    errs = ocsf_errors(event)
    assert any("finding_info.uid: required" in e for e in errs)
    assert any("severity_id: 42" in e for e in errs)
    assert any("surprise: not in the schema" in e for e in errs)
    assert jsonschema_errors(event)


def test_otel_sink_emits_log_record() -> None:
    """The OTel sink emits one log record per alert with severity and soc2ai.alert.* attributes."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    from soc2ai.monitor.sinks.otel import OtelSink

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    sink = OtelSink("otel", logger_provider=provider, project="acme")
    sink.deliver(alert())
    sink.probe()
    logs = exporter.get_finished_logs()
    assert len(logs) == 2
    rec = logs[0].log_record
    assert rec.severity_number is not None and rec.severity_number.value == 17
    assert rec.body == alert()["message"] and rec.timestamp == T0 * 1000
    assert rec.attributes is not None
    assert rec.attributes["soc2ai.alert.rule"] == "prompt_injection"
    assert rec.attributes["soc2ai.incident.id"] == "INC-0001"
    assert tuple(rec.attributes["soc2ai.alert.records"]) == ("r1", "r2")
    sink.close()
    provider.shutdown()


def test_slack_escapes_record_values() -> None:
    """A group or message carrying Slack's <, >, & cannot ping @channel or disguise a link."""
    body = slack_payload(alert(group="<!channel>", message="x: <!channel> & <https://evil|ok> for key <!here>"),
                         "acme")
    section = body["blocks"][0]["text"]["text"]
    for text in (body["text"], section):
        assert "<!" not in text and "<https" not in text
        assert "&lt;!channel&gt; &amp; &lt;https://evil|ok&gt;" in text


def test_jsonl_line_is_the_documented_generic_payload(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """The jsonl sink writes the same generic JSON as the webhook json format, "time" (RFC 3339) included."""
    import orjson

    from soc2ai.monitor.sinks.jsonl import JsonlSink
    from soc2ai.monitor.sinks.webhook import generic_payload

    JsonlSink("file", "-", project="acme").deliver(alert())
    line = orjson.loads(capsysbinary.readouterr().out)
    assert line["time"] == "2026-01-01T00:00:00.123456Z"
    assert line == generic_payload(alert(), "acme")


def _otlp_collector(accept: bool) -> tuple[Any, str, list[Any]]:
    """A local OTLP/gRPC logs collector that accepts every export, or refuses it with UNAVAILABLE."""
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc

    received: list[Any] = []

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # the gRPC method name
            if not accept:
                context.abort(grpc.StatusCode.UNAVAILABLE, "collector down")
            received.extend(rec for rl in request.resource_logs for sl in rl.scope_logs for rec in sl.log_records)
            return logs_service_pb2.ExportLogsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"http://127.0.0.1:{port}", received


@pytest.mark.parametrize("accept", [True, False], ids=["collector-up", "collector-refuses"])
def test_otel_endpoint_sink_reports_whether_the_collector_took_the_alert(accept: bool) -> None:
    """With an OTLP endpoint, probe and deliver succeed only when the collector accepted the record: a
    refused export is a SinkError (the alert stays in the outbox, `soc2ai check` says unreachable)
    instead of being dropped by the SDK's batch processor while reported delivered."""
    from soc2ai.monitor.sinks.interface import SinkError
    from soc2ai.monitor.sinks.otel import OtelSink

    server, url, received = _otlp_collector(accept)
    sink = OtelSink("otel", endpoint=url, project="acme", export_timeout_s=1.0)
    try:
        if accept:
            sink.deliver(alert())
            sink.probe()
            assert len(received) == 2 and received[0].body.string_value == alert()["message"]
        else:
            with pytest.raises(SinkError):
                sink.probe()
            with pytest.raises(SinkError) as exc:
                sink.deliver(alert())
            assert exc.value.retryable
    finally:
        sink.close()
        server.stop(0)
