"""``soc2ai retention run``: enforce retention per label in every store and the ledger (C1.2)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from soc2ai.cli._common import (
    EXIT_FINDING,
    ConfigOption,
    JsonOption,
    console,
    err_console,
    get_config,
    handle_errors,
    print_json,
)
from soc2ai.data.retention import run_retention
from soc2ai.data.runtime import open_workspace

app = typer.Typer(help="Retention: delete data past its label's retention period.", no_args_is_help=True)


@app.command("run")
@handle_errors
def run(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; delete nothing."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Delete expired items in every connector, prune expired ledger bodies, append a receipt."""
    cfg = get_config(config)
    with open_workspace(cfg, write_log=not dry_run) as ws, err_console.status("enforcing retention"):
        report = run_retention(ws.opened, cfg.data.retention, log=ws.log, dry_run=dry_run)
    if json_out:
        print_json(report.as_dict())
    else:
        table = Table(title="retention " + ("(dry run)" if dry_run else "run"))
        for col in ("store", "label", "items", "seconds"):
            table.add_column(col)
        for store, counts in sorted(report.counts.items()):
            if not counts:
                table.add_row(store, "-", "0", f"{report.seconds.get(store, 0):.3f}")
            for label, n in sorted(counts.items()):
                table.add_row(store, label, str(n), f"{report.seconds.get(store, 0):.3f}")
        console.print(table)
        verb = "would delete" if dry_run else "deleted"
        console.print(f"{verb} {report.total} item(s); receipt {report.receipt_id or '-'}")
        for store, err in sorted(report.errors.items()):
            err_console.print(f"[red]unreachable:[/] {store}: {err}")
    if report.errors:
        raise typer.Exit(EXIT_FINDING)
