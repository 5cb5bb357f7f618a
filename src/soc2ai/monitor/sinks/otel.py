"""OpenTelemetry logs sink: each alert becomes a log record with ``soc2ai.alert.*`` attributes.

Needs the ``otel`` extra. Pass a ``LoggerProvider`` (tests use the SDK's in-memory exporter), or an
OTLP/gRPC ``endpoint`` to build one with a batch processor.
"""

from __future__ import annotations

from typing import Any

from soc2ai.monitor.sinks.interface import SinkError, test_event

# OTel SeverityNumber values (logs data model): INFO=9, WARN=13, ERROR=17, FATAL=21.
OTEL_SEVERITY = {"LOW": 9, "MEDIUM": 13, "HIGH": 17, "CRITICAL": 21}


def _require_otel() -> Any:
    try:
        from opentelemetry import _logs
        from opentelemetry.sdk import _logs as sdk_logs
    except ImportError as exc:  # pragma: no cover - the otel extra is installed in CI
        raise SinkError("the otel sink needs the 'otel' extra: pip install 'soc2ai[otel]'",
                        retryable=False) from exc
    return _logs, sdk_logs


class _ResultRecorder:
    """Wraps the OTLP exporter so the sink learns whether an export was accepted.

    The SDK's processors log a failed export and carry on (``force_flush`` still returns True), so without
    this a collector that is down would look reachable to ``soc2ai check`` and every alert would leave the
    outbox as delivered and be lost.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.failed = False

    def export(self, batch: Any) -> Any:
        self.failed = True  # until the collector accepts it: an exception (swallowed by the SDK) leaves it set
        result = self._inner.export(batch)
        self.failed = getattr(result, "name", "") != "SUCCESS"
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self._inner.force_flush(timeout_millis))

    def shutdown(self) -> None:
        self._inner.shutdown()


class OtelSink:
    """Emit alerts as OpenTelemetry log records."""

    def __init__(self, name: str, *, logger_provider: Any = None, endpoint: str | None = None,
                 project: str = "soc2ai", export_timeout_s: float = 10.0) -> None:
        self.name = name
        self.project = project
        logs_api, sdk_logs = _require_otel()
        self._api = logs_api
        self._own = logger_provider is None
        self._recorder: _ResultRecorder | None = None
        if logger_provider is None:
            logger_provider = sdk_logs.LoggerProvider()
            if endpoint:
                from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
                from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

                self._recorder = _ResultRecorder(OTLPLogExporter(
                    endpoint=endpoint, insecure=endpoint.startswith("http://"), timeout=export_timeout_s))
                # Duck-typed exporter: the SDK is an optional extra, so the wrapper cannot subclass it.
                # Simple (synchronous) processor: each alert is exported as it is emitted, so deliver()
                # knows the outcome; alerts are few, and the outbox already batches and retries.
                recorder: Any = self._recorder
                logger_provider.add_log_record_processor(SimpleLogRecordProcessor(recorder))
        self._provider = logger_provider
        self._logger = logger_provider.get_logger("soc2ai.monitor")

    def deliver(self, alert: dict[str, Any]) -> None:
        """Emit one log record."""
        attrs: dict[str, Any] = {
            "soc2ai.project": self.project,
            "soc2ai.alert.id": alert["id"], "soc2ai.alert.rule": alert["rule"],
            "soc2ai.alert.kind": alert["kind"], "soc2ai.alert.severity": alert["severity"],
            "soc2ai.alert.response": alert["response"], "soc2ai.alert.group": alert["group"],
            "soc2ai.alert.records": list(alert.get("records") or []),
            "soc2ai.alert.repeats": int(alert.get("repeats") or 0),
        }
        if alert.get("incident_id"):
            attrs["soc2ai.incident.id"] = alert["incident_id"]
        if self._recorder is not None:
            self._recorder.failed = False
        try:
            self._logger.emit(self._api.LogRecord(
                timestamp=alert["ts"] * 1000, severity_number=self._api.SeverityNumber(
                    OTEL_SEVERITY.get(alert["severity"], 13)),
                severity_text=alert["severity"], body=alert["message"], attributes=attrs,
                event_name="soc2ai.alert"))
        except Exception as exc:  # the SDK's exporters raise anything; map at the boundary
            raise SinkError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        if self._recorder is not None and self._recorder.failed:
            # Only an export the collector accepted counts as delivered; otherwise the alert stays in the
            # outbox and is retried.
            raise SinkError(f"{self.name}: the OTLP collector did not accept the log record")

    def probe(self) -> None:
        """Emit a test record and flush."""
        import time

        self.deliver(test_event(self.project, time.time_ns() // 1000))
        if not self._provider.force_flush(5000):
            raise SinkError(f"{self.name}: exporter did not flush within 5 s")

    def close(self) -> None:
        """Flush and shut down a provider this sink created."""
        if self._own:
            self._provider.shutdown()
