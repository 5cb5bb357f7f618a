"""OCSF sink: alerts as OCSF 1.5.0 Detection Finding events (class_uid 2004) for SIEM ingestion.

Written as JSON lines to ``path`` and/or POSTed to ``url``. The event uses the ``security_control``
profile (``action_id``/``disposition_id`` from the rule's response) and keeps soc2ai-only fields under
``unmapped``. The tests validate events against the published OCSF 1.5.0 schema.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from soc2ai.monitor.sinks.interface import SinkError, test_event
from soc2ai.monitor.sinks.jsonl import JsonlSink

OCSF_VERSION = "1.5.0"
CLASS_UID = 2004
CATEGORY_UID = 2
ACTIVITY_CREATE = 1
# OCSF severity_id: 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical.
SEVERITY_ID = {"LOW": 2, "MEDIUM": 3, "HIGH": 4, "CRITICAL": 5}
SEVERITY_NAME = {2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
# security_control profile: (action_id, action, disposition_id, disposition) per response.
CONTROL = {
    "block_and_log": (2, "Denied", 2, "Blocked"),
    "redact_and_alert": (4, "Modified", 11, "Corrected"),
    "alert_oncall": (3, "Observed", 19, "Alert"),
    "page_oncall": (3, "Observed", 19, "Alert"),
    "open_incident": (3, "Observed", 19, "Alert"),
    "log": (3, "Observed", 17, "Logged"),
}
# analytic.type_id: 1 Rule, 3 Statistical.
ANALYTIC_TYPE = {"detector": (1, "Rule"), "count": (1, "Rule"), "volume": (3, "Statistical"),
                 "error_rate": (3, "Statistical"), "probe": (1, "Rule")}


def detection_finding(alert: dict[str, Any], *, project: str = "soc2ai",
                      product_version: str = "0.1.0") -> dict[str, Any]:
    """The OCSF Detection Finding for one alert."""
    ms = alert["ts"] // 1000
    sev = SEVERITY_ID.get(alert["severity"], 3)
    action_id, action, disp_id, disp = CONTROL.get(alert["response"], CONTROL["log"])
    a_type, a_name = ANALYTIC_TYPE.get(alert["kind"], (1, "Rule"))
    return {
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Detection Finding: Create",
        "time": ms,
        "severity_id": sev,
        "severity": SEVERITY_NAME[sev],
        "status_id": 1,
        "status": "New",
        "is_alert": True,
        "message": alert["message"],
        "count": int(alert.get("repeats") or 0) + 1,
        "action_id": action_id,
        "action": action,
        "disposition_id": disp_id,
        "disposition": disp,
        "metadata": {
            "version": OCSF_VERSION,
            "profiles": ["security_control"],
            "uid": alert["id"],
            "correlation_uid": f"{alert['rule']}:{alert['group']}",
            "log_name": "soc2ai.alerts",
            "log_provider": project,
            "product": {"name": "soc2ai", "vendor_name": "soc2ai", "version": product_version,
                        "uid": project},
        },
        "finding_info": {
            "uid": alert["id"],
            "title": alert.get("description") or alert["rule"],
            "desc": alert["message"],
            "created_time": ms,
            "types": [alert["kind"]],
            "analytic": {"uid": alert["rule"], "name": alert["rule"], "type_id": a_type, "type": a_name},
            "related_events": [{"uid": rid} for rid in alert.get("records") or []],
        },
        "unmapped": {"soc2ai": {"response": alert["response"], "group": alert["group"],
                                "incident_id": alert.get("incident_id"),
                                "details": alert.get("details") or {}}},
    }


class OcsfSink:
    """Write and/or POST OCSF Detection Findings."""

    def __init__(self, name: str, *, path: str | Path | None = None, url: str | None = None,
                 project: str = "soc2ai", headers: dict[str, str] | None = None, timeout_s: float = 5.0,
                 client: httpx.Client | None = None) -> None:
        if path is None and url is None:
            raise SinkError(f"{name}: the ocsf sink needs path or url", retryable=False)
        self.name = name
        self.project = project
        self.url = url
        self._file = JsonlSink(name, path, project=project) if path is not None else None
        self._client = client or (httpx.Client(timeout=timeout_s, headers=headers or {}) if url else None)
        self._own_client = client is None

    def _write(self, event: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write_line(orjson.dumps(event) + b"\n")
        if self._client is not None and self.url is not None:
            try:
                resp = self._client.post(self.url, content=orjson.dumps(event),
                                         headers={"content-type": "application/json"})
            except httpx.HTTPError as exc:
                raise SinkError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
            if resp.status_code >= 300:
                retry = resp.status_code in (408, 425, 429) or resp.status_code >= 500
                raise SinkError(f"{self.name}: HTTP {resp.status_code}", retryable=retry)

    def deliver(self, alert: dict[str, Any]) -> None:
        """Write/POST one Detection Finding."""
        self._write(detection_finding(alert, project=self.project))

    def probe(self) -> None:
        """File: writable; URL: POST a test finding."""
        if self._file is not None:
            self._file.probe()
        if self.url is not None:
            event = detection_finding(test_event(self.project, time.time_ns() // 1000), project=self.project)
            file, self._file = self._file, None
            try:
                self._write(event)
            finally:
                self._file = file

    def close(self) -> None:
        """Close the HTTP client if this sink made it."""
        if self._client is not None and self._own_client:
            self._client.close()
