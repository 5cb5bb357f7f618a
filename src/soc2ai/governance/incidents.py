"""The incident register: one YAML file per incident under ``registers/incidents/`` (CC7.4, CC7.5).

Incidents are opened by people (``soc2ai incidents new``) or by monitoring from HIGH alerts through
:meth:`IncidentRegister.open`; every action is appended to the timeline, and closing requires a root
cause and the remediation, so a caught and fixed violation becomes complete audit evidence.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, AwareDatetime, Field, Strict, ValidationError, model_validator

from soc2ai.errors import ConfigError
from soc2ai.governance._yaml import LocatedError, NotNumber, RegisterModel, _not_future, read_yaml, validate
from soc2ai.governance.checks import FAIL, OK, WARN, CheckResult
from soc2ai.governance.settings import DEFAULT_SLA_HOURS

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES = ("low", "medium", "high", "critical")
Moment = Annotated[AwareDatetime, Strict(False), NotNumber, AfterValidator(_not_future)]
_ID = re.compile(r"^INC-(\d{4,})$")


class TimelineEntry(RegisterModel):
    """One action taken on an incident."""

    at: Moment
    actor: str = Field(min_length=1)
    action: str = Field(min_length=1)


class Incident(RegisterModel):
    """One incident and how it was handled."""

    id: str = Field(pattern=_ID.pattern)
    title: str = Field(min_length=1)
    severity: Severity
    status: Literal["open", "contained", "closed"] = "open"
    source: str = Field(min_length=1)
    description: str = Field(min_length=1)
    detected_at: Moment
    owner: str | None = None
    affected_data: list[str] = Field(default_factory=list)
    affected_subjects: int | None = Field(default=None, ge=0)
    records: list[str] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(min_length=1)
    root_cause: str | None = None
    remediation: str | None = None
    closed_at: Moment | None = None

    @model_validator(mode="after")
    def _closed_complete(self) -> Incident:
        # Located, so the error points at the line to fix rather than at the top of the file.
        if self.status == "closed":
            missing = [f for f in ("closed_at", "root_cause", "remediation") if not getattr(self, f)]
            if missing:
                raise LocatedError(f"a closed incident needs {', '.join(missing)}", ("status",))
        if self.closed_at is not None and self.closed_at < self.detected_at:
            raise LocatedError("closed_at is before detected_at", ("closed_at",))
        return self

    def to_yaml(self) -> str:
        """The file form (ISO timestamps, fields in declaration order)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=100)


class IncidentRegister:
    """The directory of incident files."""

    def __init__(
        self,
        directory: Path,
        *,
        sla_hours: Mapping[str, int] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.dir = directory
        # A partial mapping overrides only the severities it names (the check looks every one up).
        self.sla_hours = {**DEFAULT_SLA_HOURS, **(sla_hours or {})}
        self._clock = clock or (lambda: datetime.now(UTC))

    def _build(self, data: dict[str, Any]) -> Incident:
        """Validate an incident built by this API; bad arguments become ConfigError naming the field."""
        try:
            return Incident.model_validate(data, context={"today": self._now(None).date()})
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in err["loc"]) or "incident"
            raise ConfigError(err["msg"], file=str(self.dir), field=loc) from exc

    def _now(self, at: datetime | None) -> datetime:
        moment = at or self._clock()
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def _path(self, incident_id: str) -> Path:
        if not _ID.match(incident_id):
            raise ConfigError(
                f"invalid incident id {incident_id!r} (expected INC-0001)", file=str(self.dir), field="id"
            )
        return self.dir / f"{incident_id}.yaml"

    def _load(self, path: Path) -> Incident:
        data, node = read_yaml(path)
        if data is None:
            raise ConfigError("incident file is empty", file=str(path), line=1)
        incident = validate(Incident, data, node, str(path), today=self._clock().date())
        if path.stem != incident.id:
            raise ConfigError(f"file name does not match id {incident.id!r}", file=str(path), field="id")
        return incident

    def _write(self, incident: Incident, *, new: bool = False) -> None:
        path = self._path(incident.id)
        text = incident.to_yaml()
        if new:
            with path.open("x", encoding="utf-8") as fh:  # exclusive: two openers never share an id
                fh.write(text)
            return
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

    def list(self, status: str | None = None) -> list[Incident]:
        """All incidents (optionally of one status), oldest id first. A missing directory is an error."""
        if not self.dir.is_dir():
            raise ConfigError("incident register not found (run `soc2ai init`)", file=str(self.dir))
        out = [self._load(p) for p in sorted(self.dir.glob("INC-*.yaml"))]
        return [i for i in out if status is None or i.status == status]

    def get(self, incident_id: str) -> Incident:
        """One incident; unknown id -> ConfigError."""
        path = self._path(incident_id)
        if not path.is_file():
            raise ConfigError(f"unknown incident {incident_id}", file=str(self.dir), field="id")
        return self._load(path)

    def open(
        self,
        *,
        title: str,
        severity: str,
        source: str,
        description: str,
        records: Iterable[str] = (),
        detected_at: datetime | None = None,
        owner: str | None = None,
        affected_data: Iterable[str] = (),
        affected_subjects: int | None = None,
        actor: str = "soc2ai",
    ) -> Incident:
        """Record a new incident (detected now unless given) and return it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        now = self._now(None)
        detected = self._now(detected_at)
        for _ in range(100):
            numbers = [int(m.group(1)) for p in self.dir.glob("INC-*.yaml") if (m := _ID.match(p.stem))]
            incident_id = f"INC-{max(numbers, default=0) + 1:04d}"
            incident = self._build(
                {
                    "id": incident_id,
                    "title": title,
                    "severity": severity,
                    "source": source,
                    "description": description,
                    "detected_at": detected,
                    "owner": owner,
                    "affected_data": list(affected_data),
                    "affected_subjects": affected_subjects,
                    "records": list(records),
                    "timeline": [{"at": now, "actor": actor, "action": f"opened (source: {source})"}],
                }
            )
            try:
                self._write(incident, new=True)
            except FileExistsError:
                continue  # another process took this id; take the next one
            return incident
        raise ConfigError("could not allocate an incident id", file=str(self.dir))

    def update(
        self,
        incident_id: str,
        *,
        action: str,
        actor: str = "soc2ai",
        status: str | None = None,
        severity: str | None = None,
        owner: str | None = None,
        records: Iterable[str] = (),
        affected_data: Iterable[str] = (),
        affected_subjects: int | None = None,
        at: datetime | None = None,
    ) -> Incident:
        """Append an action to the timeline, optionally changing status/severity and adding records."""
        current = self.get(incident_id)
        # Name the incident file, as every register error does (these read "<config>: status: ...").
        file = str(self._path(incident_id))
        if current.status == "closed":
            raise ConfigError(f"{incident_id} is closed; open a new incident", file=file, field="status")
        if status == "closed":
            raise ConfigError(
                "closing needs a root cause and the remediation: use close (`soc2ai incidents close`)",
                file=file,
                field="status",
            )
        data = current.model_dump()
        data["timeline"].append({"at": self._now(at), "actor": actor, "action": action})
        data["records"] += [r for r in records if r not in data["records"]]
        data["affected_data"] += [d for d in affected_data if d not in data["affected_data"]]
        for key, value in (
            ("status", status),
            ("severity", severity),
            ("owner", owner),
            ("affected_subjects", affected_subjects),
        ):
            if value is not None:
                data[key] = value
        updated = self._build(data)
        self._write(updated)
        return updated

    def close(
        self,
        incident_id: str,
        *,
        root_cause: str,
        remediation: str,
        actor: str = "soc2ai",
        at: datetime | None = None,
    ) -> Incident:
        """Close with root cause and remediation (both required)."""
        file = str(self._path(incident_id))
        if not root_cause.strip() or not remediation.strip():
            raise ConfigError("closing needs a root cause and the remediation", file=file, field="root_cause")
        current = self.get(incident_id)
        if current.status == "closed":
            raise ConfigError(f"{incident_id} is already closed", file=file, field="status")
        when = self._now(at)
        data = current.model_dump()
        data["timeline"].append({"at": when, "actor": actor, "action": "closed"})
        data.update(status="closed", root_cause=root_cause, remediation=remediation, closed_at=when)
        updated = self._build(data)
        self._write(updated)
        return updated

    def deadline(self, incident: Incident) -> datetime:
        """When the incident must be closed by, per its severity's SLA."""
        return incident.detected_at + timedelta(
            hours=self.sla_hours.get(incident.severity, DEFAULT_SLA_HOURS[incident.severity])
        )


def overdue(
    incidents: IncidentRegister | Iterable[Incident],
    now: datetime,
    *,
    sla_hours: Mapping[str, int] | None = None,
) -> list[Incident]:
    """Incidents not closed within the SLA hours of their severity."""
    if isinstance(incidents, IncidentRegister):
        sla = dict(sla_hours or incidents.sla_hours)
        items: Iterable[Incident] = incidents.list()
    else:
        sla = dict(sla_hours or DEFAULT_SLA_HOURS)
        items = incidents
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    return [
        i
        for i in items
        if i.status != "closed"
        and now - i.detected_at > timedelta(hours=sla.get(i.severity, DEFAULT_SLA_HOURS[i.severity]))
    ]


def check_incidents(config: Any, *, now: datetime) -> list[CheckResult]:
    """Register present and readable; open incidents within their SLA."""
    from soc2ai.governance._paths import paths

    register = IncidentRegister(
        paths(config).incidents, sla_hours=config.governance.incident_sla_hours, clock=lambda: now
    )
    try:
        items = register.list()
    except ConfigError as exc:
        return [
            CheckResult("incidents.register", "CC7.4", FAIL, str(exc), "fix the file, or run `soc2ai init`")
        ]
    late = overdue(items, now, sla_hours=register.sla_hours)
    results = [
        CheckResult(
            "incidents.register",
            "CC7.4",
            OK,
            f"{len(items)} incidents on file, {sum(i.status != 'closed' for i in items)} open",
        )
    ]
    for i in late:
        status = FAIL if i.severity in ("high", "critical") else WARN
        results.append(
            CheckResult(
                "incidents.sla",
                "CC7.4",
                status,
                f"{i.id} ({i.severity}) open past its {register.sla_hours[i.severity]} h SLA",
                "contain and close it with root cause and remediation, or record why not",
            )
        )
    return results
