"""OpenTelemetry spans with GenAI semantic-convention attributes (``opentelemetry-sdk``, ``otel`` extra).

Spans carry model, provider, token usage, response id and finish reason; never prompts or outputs unless
``unsafe_capture_content`` is set.
"""

from __future__ import annotations

from typing import Any

from soc2ai.errors import ConfigError
from soc2ai.gateway.settings import OtelSettings

_PROVIDER_NAMES = {"openai": "openai", "azure": "azure.ai.openai", "anthropic": "anthropic",
                   "openai_compatible": "openai"}


class Tracing:
    """Starts one span per model call; a no-op object when tracing is off."""

    def __init__(self, settings: OtelSettings, tracer_provider: Any = None) -> None:
        self.enabled = settings.enabled or tracer_provider is not None
        self.capture_content = settings.unsafe_capture_content
        self._tracer: Any = None
        if not self.enabled:
            return
        try:
            from opentelemetry import trace
        except ImportError as exc:  # pragma: no cover - part of [all]
            raise ConfigError("gateway.otel needs the 'otel' extra: pip install 'soc2ai[otel]'",
                              field="gateway.otel.enabled") from exc
        if tracer_provider is None and settings.endpoint:
            tracer_provider = _otlp_provider(settings)
        self._tracer = trace.get_tracer("soc2ai.gateway", tracer_provider=tracer_provider)

    def span(self, operation: str, start_ns: int, attrs: dict[str, Any], *, error: str | None = None) -> None:
        """Emit one finished span for a call that started at ``start_ns`` (epoch ns)."""
        if self._tracer is None:
            return
        from opentelemetry.trace import SpanKind, Status, StatusCode

        model = attrs.get("gen_ai.request.model") or ""
        span = self._tracer.start_span(f"{operation} {model}".strip(), kind=SpanKind.CLIENT, start_time=start_ns)
        kind = attrs.pop("provider_kind", None)
        if kind:
            attrs["gen_ai.provider.name"] = _PROVIDER_NAMES.get(kind, kind)
        attrs["gen_ai.operation.name"] = operation
        for k, v in attrs.items():
            if v is not None:
                span.set_attribute(k, v)
        if error:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()


def _otlp_provider(settings: OtelSettings) -> Any:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.endpoint, insecure=True)))
    return provider
