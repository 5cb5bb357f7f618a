"""``soc2ai incidents new|list|show|update|close``: the incident register (CC7.4, CC7.5)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from soc2ai.cli._common import ConfigOption, JsonOption, console, get_config, handle_errors, print_json
from soc2ai.config import Config
from soc2ai.errors import ConfigError
from soc2ai.governance.incidents import Incident, IncidentRegister

app = typer.Typer(
    help="Incidents: detection, actions, root cause, remediation (CC7.4, CC7.5).", no_args_is_help=True
)


class Sev(StrEnum):
    """Severities."""

    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


ActorOption = typer.Option(None, "--actor", help="Who is acting (default: git user.email).")


def _register(config: Config) -> IncidentRegister:
    from soc2ai.governance._paths import paths

    return IncidentRegister(paths(config).incidents, sla_hours=config.governance.incident_sla_hours)


def _actor(config: Config, actor: str | None) -> str:
    from soc2ai.governance._cli import git_actor

    return actor or git_actor(config)


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"expected an ISO 8601 time, got {value!r}", field=option) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _show(incident: Incident, register: IncidentRegister, json_out: bool) -> None:
    if json_out:
        print_json({**incident.model_dump(mode="json"), "deadline": register.deadline(incident)})
        return
    # Register text is printed as text: square brackets in it are not console markup.
    console.print(f"[bold]{incident.id}[/] {escape(f'[{incident.severity}] {incident.title}')}  "
                  f"status={incident.status}")
    console.print(
        f"detected {incident.detected_at.isoformat()}  source: {escape(incident.source)}  "
        f"close by {register.deadline(incident).isoformat()}"
    )
    console.print(incident.description, markup=False)
    if incident.records:
        console.print(f"ledger records: {', '.join(incident.records)}", markup=False)
    table = Table(title="timeline")
    for col in ("at", "actor", "action"):
        table.add_column(col, overflow="fold")
    for t in incident.timeline:
        table.add_row(t.at.isoformat(), escape(t.actor), escape(t.action))
    console.print(table)
    if incident.status == "closed":
        console.print(f"root cause: {incident.root_cause}\nremediation: {incident.remediation}", markup=False)


@app.command("new")
@handle_errors
def new(
    title: str = typer.Option(..., "--title"),
    severity: Sev = typer.Option(..., "--severity"),
    source: str = typer.Option("user report", "--source", help="Alert id, user report, ..."),
    description: str = typer.Option(..., "--description"),
    record: list[str] = typer.Option([], "--record", help="Ledger record id (repeatable)."),
    detected_at: str | None = typer.Option(None, "--detected-at", help="ISO time (default: now)."),
    actor: str | None = ActorOption,
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Open an incident."""
    cfg = get_config(config)
    reg = _register(cfg)
    inc = reg.open(
        title=title,
        severity=severity.value,
        source=source,
        description=description,
        records=record,
        detected_at=_when(detected_at, "--detected-at"),
        actor=_actor(cfg, actor),
    )
    if json_out:
        print_json(inc.model_dump(mode="json"))
    else:
        console.print(f"opened [bold]{inc.id}[/] ({inc.severity}), close by {reg.deadline(inc).isoformat()}")


@app.command("list")
@handle_errors
def list_(
    status: str | None = typer.Option(None, "--status", help="open, contained or closed."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Incidents with their SLA state."""
    from soc2ai.governance.incidents import overdue

    reg = _register(get_config(config))
    items = reg.list(status)
    late = {i.id for i in overdue(items, datetime.now(UTC), sla_hours=reg.sla_hours)}
    if json_out:
        print_json([{**i.model_dump(mode="json"), "overdue": i.id in late} for i in items])
        return
    table = Table(title="Incidents")
    for col in ("id", "severity", "status", "detected", "title", "SLA"):
        table.add_column(col, overflow="fold")
    for i in items:
        sla = "[red]overdue[/]" if i.id in late else ("met" if i.status == "closed" else "open")
        table.add_row(i.id, i.severity, i.status, i.detected_at.isoformat(), escape(i.title), sla)
    console.print(table)


@app.command("show")
@handle_errors
def show(
    incident_id: str = typer.Argument(...), config: Path | None = ConfigOption, json_out: bool = JsonOption
) -> None:
    """One incident with its timeline."""
    reg = _register(get_config(config))
    _show(reg.get(incident_id), reg, json_out)


@app.command("update")
@handle_errors
def update(
    incident_id: str = typer.Argument(...),
    action: str = typer.Option(..., "--action"),
    status: str | None = typer.Option(None, "--status", help="open or contained."),
    severity: Sev | None = typer.Option(None, "--severity"),
    record: list[str] = typer.Option([], "--record", help="Ledger record id (repeatable)."),
    actor: str | None = ActorOption,
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Record an action on an incident."""
    cfg = get_config(config)
    reg = _register(cfg)
    inc = reg.update(
        incident_id,
        action=action,
        actor=_actor(cfg, actor),
        status=status,
        severity=severity.value if severity else None,
        records=record,
    )
    _show(inc, reg, json_out)


@app.command("close")
@handle_errors
def close(
    incident_id: str = typer.Argument(...),
    root_cause: str = typer.Option(..., "--root-cause"),
    remediation: str = typer.Option(..., "--remediation"),
    actor: str | None = ActorOption,
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Close with root cause and remediation."""
    cfg = get_config(config)
    reg = _register(cfg)
    _show(
        reg.close(incident_id, root_cause=root_cause, remediation=remediation, actor=_actor(cfg, actor)),
        reg,
        json_out,
    )
