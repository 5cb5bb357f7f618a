"""``soc2ai dsar find|export|delete``: a data subject's data across every store (P4.2, P4.3, CC6.5)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from soc2ai.cli._common import (
    EXIT_FINDING,
    EXIT_USAGE,
    ConfigOption,
    JsonOption,
    console,
    err_console,
    get_config,
    handle_errors,
    print_json,
)
from soc2ai.data.connectors._match import mask
from soc2ai.data.dsar import Dsar, DsarReport
from soc2ai.data.runtime import open_workspace

app = typer.Typer(help="Data-subject requests: find, export and delete a person's data everywhere.",
                  no_args_is_help=True)

SubjectOption = typer.Option(..., "--subject", help="The subject's user id (as the product knows it).")
IdentifierOption = typer.Option(None, "--identifier", help="Extra identifier to discover, e.g. "
                                "email=ann@example.com or phone=+44...; repeatable.")
ShowAllOption = typer.Option(False, "--all", help="List every location (default: the first 20 per store).")


def _identifiers(values: list[str] | None) -> list[tuple[str, str]]:
    out = []
    for value in values or []:
        kind, sep, ident = value.partition("=")
        if not sep or not kind.strip() or not ident.strip():
            err_console.print(f"[red]error:[/] --identifier must look like kind=value (got {value!r})")
            raise typer.Exit(EXIT_USAGE)
        out.append((kind.strip(), ident.strip()))
    return out


def _run(config_path: Path | None, write: bool, fn: str, *args: object, **kwargs: object) -> DsarReport:
    config = get_config(config_path)
    with open_workspace(config, write_log=write) as ws:
        status = err_console.status("working", spinner="dots")
        status.start()
        try:
            dsar = Dsar(ws.opened, lineage=ws.lineage, log=ws.log, state_dir=config.path(config.data.state_dir),
                        progress=lambda msg: status.update(msg))
            report: DsarReport = getattr(dsar, fn)(*args, **kwargs)
        finally:
            status.stop()
    return report


def _render(report: DsarReport, subject: str, show_all: bool) -> None:
    title = f"dsar {report.action} — subject {mask(subject)}"
    table = Table(title=title)
    for col in ("store", "type", "items", "found by", "seconds", "status"):
        table.add_column(col, justify="right" if col in ("items", "seconds") else "left")
    for s in report.stores:
        how: dict[str, int] = {}
        for loc in s.locations:
            how[loc.how] = how.get(loc.how, 0) + 1
        if s.error:
            status = f"[red]{s.error}[/]"
        elif s.verified:
            status = f"[green]deleted {s.deleted}, verified gone[/]"
        elif s.deleted is not None:
            status = f"deleted {s.deleted}"
        else:
            status = "ok"
        if s.notes:
            status += f" ({len(s.notes)} note(s))"
        items = str(len(s.locations))
        if s.type == "ledger" and s.locations:  # one subject key links many records: show both
            records = sum(int(loc.detail.split()[0]) for loc in s.locations if loc.detail.split()[0].isdigit())
            items = f"{records} records"
        table.add_row(s.name, s.type, items, ", ".join(f"{k} {v}" for k, v in sorted(how.items())),
                      f"{s.seconds:.3f}", status)
    console.print(table)
    for s in report.stores:
        shown = s.locations if show_all else s.locations[:20]
        for loc in shown:
            console.print(f"  {s.name}: {loc.collection} / {loc.item_id} [dim]({loc.how}{', ' + loc.detail if loc.detail else ''})[/]")
        if len(shown) < len(s.locations):
            console.print(f"  {s.name}: … {len(s.locations) - len(shown)} more (--all)")
        for note in s.notes[:20]:
            console.print(f"  [yellow]note[/] {s.name}: {note}")
    if report.lineage_nodes:
        console.print(f"lineage: {report.lineage_nodes} recorded node(s) for this subject")
    if report.action in ("find", "export") and report.total == 0 and not report.unreachable:
        console.print("[bold]No data found for this subject[/] in any reachable store "
                      "(unknown subject, or already deleted).")
    if report.unreachable:
        err_console.print(f"[red]unreachable:[/] {', '.join(report.unreachable)} — the answer is incomplete")


def _finish(report: DsarReport, subject: str, json_out: bool, show_all: bool, failed: bool) -> None:
    if json_out:
        print_json(report.as_dict())
    else:
        _render(report, subject, show_all)
    if failed:
        raise typer.Exit(EXIT_FINDING)


@app.command("find")
@handle_errors
def find(
    subject: str = SubjectOption,
    identifier: list[str] | None = IdentifierOption,
    show_all: bool = ShowAllOption,
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Every place the subject's data lives: lineage (exact) plus a discovery scan of identifiers."""
    report = _run(config, True, "find", subject, _identifiers(identifier))
    if not json_out:
        console.print(f"{report.total} item(s) in {sum(1 for s in report.stores if s.locations)} store(s), "
                      f"{report.seconds:.2f}s; receipt {report.receipt_id or '-'}")
    _finish(report, subject, json_out, show_all, bool(report.unreachable))


@app.command("export")
@handle_errors
def export(
    subject: str = SubjectOption,
    out: Path = typer.Option(..., "--out", help="Directory for the bundle (created, mode 0700)."),
    identifier: list[str] | None = IdentifierOption,
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Write the subject's data as a bundle: one JSONL per store, copied files, a manifest of hashes."""
    report = _run(config, True, "export", subject, _identifiers(identifier), out)
    if not json_out:
        console.print(f"bundle written to {report.bundle}: {report.total} item(s); receipt {report.receipt_id or '-'}")
    _finish(report, subject, json_out, False, bool(report.unreachable))


@app.command("delete")
@handle_errors
def delete(
    subject: str = SubjectOption,
    identifier: list[str] | None = IdentifierOption,
    yes: bool = typer.Option(False, "--yes", help="Really delete (default is a dry run)."),
    show_all: bool = ShowAllOption,
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Delete the subject everywhere, prove nothing remains, append a receipt. Dry run without --yes."""
    report = _run(config, yes, "delete", subject, _identifiers(identifier), dry_run=not yes)
    if not json_out:
        if report.dry_run:
            console.print(f"[bold]dry run[/]: would delete {report.total} item(s); re-run with --yes to delete")
        elif report.outcome == "complete":
            console.print(f"[green]deleted and verified[/] in {report.seconds:.2f}s"
                          f"{' (resumed)' if report.resumed else ''}; receipt {report.receipt_id or '-'}")
        else:
            err_console.print(f"[red]INCOMPLETE[/]: not every store was deleted and verified; receipt "
                              f"{report.receipt_id or '-'}; run again to resume")
    _finish(report, subject, json_out, show_all,
            bool(report.unreachable) or report.outcome == "incomplete")
