"""Alert sinks, one module each behind :class:`~soc2ai.monitor.sinks.interface.Sink`.

:func:`build_sink` makes one from its ``[[monitor.sinks]]`` entry; modules are imported lazily so that
importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from soc2ai.monitor.sinks.interface import Sink, SinkError, test_event

if TYPE_CHECKING:
    from soc2ai.config import Config
    from soc2ai.monitor.settings import SinkSettings

__all__ = ["Sink", "SinkError", "build_sink", "test_event"]


def build_sink(settings: SinkSettings, config: Config, **overrides: Any) -> Sink:
    """The sink for one configured entry (``overrides`` reach the constructor, e.g. ``client=``)."""
    project = config.project.name
    if settings.type == "jsonl":
        from soc2ai.monitor.sinks.jsonl import JsonlSink

        path = settings.path if settings.path in (None, "-") else config.path(settings.path)
        return JsonlSink(settings.name, path or "-", project=project)
    if settings.type == "webhook":
        from soc2ai.monitor.sinks.webhook import WebhookSink, read_secret_file

        key = read_secret_file(config.path(settings.routing_key_file)) if settings.routing_key_file else None
        return WebhookSink(settings.name, settings.url or "", format=settings.format, project=project,
                           headers=settings.headers, routing_key=key, timeout_s=settings.timeout_s, **overrides)
    if settings.type == "syslog":
        from soc2ai.monitor.sinks.syslog import SyslogSink

        return SyslogSink(settings.name, settings.host, settings.port, protocol=settings.protocol,
                          facility=settings.facility, app_name=settings.app_name, project=project,
                          timeout_s=settings.timeout_s)
    if settings.type == "ocsf":
        from soc2ai.monitor.sinks.ocsf import OcsfSink

        path = None
        if settings.path:
            path = settings.path if settings.path == "-" else config.path(settings.path)
        return OcsfSink(settings.name, path=path, url=settings.url, project=project, headers=settings.headers,
                        timeout_s=settings.timeout_s, **overrides)
    from soc2ai.monitor.sinks.otel import OtelSink

    return OtelSink(settings.name, endpoint=settings.endpoint, project=project, **overrides)
