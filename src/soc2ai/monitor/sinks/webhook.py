"""Webhook sink: generic JSON, Slack-compatible, or PagerDuty Events API v2.

PagerDuty: severity maps CRITICAL→critical, HIGH→error, MEDIUM→warning, LOW→info; ``page_oncall`` and
HIGH/CRITICAL alerts carry urgency ``high`` (in ``custom_details``), the rest ``low``. ``dedup_key`` is
rule + group, so PagerDuty folds repeats of one incident into one page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from soc2ai.errors import KeyMaterialError
from soc2ai.monitor.sinks.interface import SinkError, test_event
from soc2ai.monitor.sinks.jsonl import generic_payload, iso

# iso and generic_payload live in .jsonl (shared with the jsonl sink); re-exported for callers.
__all__ = ["WebhookSink", "generic_payload", "iso", "pagerduty_payload", "read_secret_file", "slack_escape",
           "slack_payload", "urgency"]

PD_SEVERITY = {"CRITICAL": "critical", "HIGH": "error", "MEDIUM": "warning", "LOW": "info"}
SLACK_EMOJI = {"CRITICAL": ":red_circle:", "HIGH": ":rotating_light:", "MEDIUM": ":warning:",
               "LOW": ":information_source:"}


def slack_escape(text: object) -> str:
    """Slack's three control characters as entities: ``<...>`` in a record value (a group, a model name)
    would otherwise become a ``<!channel>`` ping or a disguised link (api.slack.com: formatting text)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: dict[str, Any], project: str) -> dict[str, Any]:
    """Slack incoming-webhook body: ``text`` (fallback) plus one section block."""
    e = slack_escape
    head = f"{SLACK_EMOJI.get(alert['severity'], '')} [{e(alert['severity'])}] {e(alert['rule'])}".strip()
    message = e(alert["message"])
    lines = [f"*{head}*", message, f"response: `{e(alert['response'])}` · project: `{e(project)}`"]
    if alert.get("incident_id"):
        lines.append(f"incident: `{e(alert['incident_id'])}`")
    text = "\n".join(lines)
    return {"text": f"{head}: {message}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def urgency(alert: dict[str, Any]) -> str:
    """PagerDuty urgency: high for paging responses and HIGH/CRITICAL, else low."""
    if alert["response"] == "page_oncall" or alert["severity"] in ("HIGH", "CRITICAL"):
        return "high"
    return "low"


def pagerduty_payload(alert: dict[str, Any], project: str, routing_key: str,
                      action: str = "trigger") -> dict[str, Any]:
    """PagerDuty Events API v2 event."""
    return {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": f"soc2ai:{project}:{alert['rule']}:{alert['group']}",
        "payload": {
            "summary": alert["message"][:1024],
            "source": project,
            "severity": PD_SEVERITY.get(alert["severity"], "warning"),
            "timestamp": iso(alert["ts"]),
            "component": "soc2ai",
            "group": alert["rule"],
            "class": alert["kind"],
            "custom_details": {"urgency": urgency(alert), "response": alert["response"],
                               "alert_id": alert["id"], "records": alert["records"],
                               "incident_id": alert.get("incident_id"), "details": alert.get("details", {})},
        },
    }


def read_secret_file(path: Path) -> str:
    """A secret from a file that only its owner can read."""
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise KeyMaterialError(f"{path} has mode {mode:o}; it must be 0600")
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise KeyMaterialError(f"cannot read {path}: {exc}") from exc


class WebhookSink:
    """POST alerts as JSON to ``url``."""

    def __init__(self, name: str, url: str, *, format: str = "json", project: str = "soc2ai",
                 headers: dict[str, str] | None = None, routing_key: str | None = None,
                 timeout_s: float = 5.0, client: httpx.Client | None = None) -> None:
        if format == "pagerduty" and not routing_key:
            raise KeyMaterialError(f"sink {name!r}: pagerduty needs a routing key")
        self.name = name
        self.url = url
        self.format = format
        self.project = project
        self.routing_key = routing_key or ""
        self._client = client or httpx.Client(timeout=timeout_s, headers=headers or {})
        self._own_client = client is None

    def payload(self, alert: dict[str, Any], action: str = "trigger") -> dict[str, Any]:
        """The body for this sink's format."""
        if self.format == "slack":
            return slack_payload(alert, self.project)
        if self.format == "pagerduty":
            return pagerduty_payload(alert, self.project, self.routing_key, action)
        return generic_payload(alert, self.project)

    def _post(self, body: dict[str, Any]) -> None:
        try:
            resp = self._client.post(self.url, content=orjson.dumps(body),
                                     headers={"content-type": "application/json"})
        except httpx.HTTPError as exc:
            raise SinkError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code < 300:
            return
        retry = resp.status_code in (408, 425, 429) or resp.status_code >= 500
        raise SinkError(f"{self.name}: HTTP {resp.status_code}", retryable=retry)

    def deliver(self, alert: dict[str, Any]) -> None:
        """POST the alert."""
        self._post(self.payload(alert))

    def probe(self) -> None:
        """POST a test event (PagerDuty: trigger then resolve the same dedup key)."""
        event = test_event(self.project, int(datetime.now(UTC).timestamp() * 1_000_000))
        self._post(self.payload(event))
        if self.format == "pagerduty":
            self._post(self.payload(event, action="resolve"))

    def close(self) -> None:
        """Close the HTTP client if this sink made it."""
        if self._own_client:
            self._client.close()
