"""``soc2ai data check``: which datasets and collections hold unlabelled items (C1.1)."""

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
from soc2ai.data.retention import census
from soc2ai.data.runtime import open_workspace

app = typer.Typer(help="Data classification: find unlabelled data.", no_args_is_help=True)


@app.command("check")
@handle_errors
def check(
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Count items per collection and those without a classification label; exit 1 if any."""
    cfg = get_config(config)
    with open_workspace(cfg, write_log=False) as ws, err_console.status("counting"):
        report = census(ws.opened)
    if json_out:
        print_json(report.as_dict())
    else:
        table = Table(title="data check")
        for col in ("store", "collection", "items", "unlabelled", "status"):
            table.add_column(col)
        for c in report.census:
            status = "[red]UNLABELLED[/]" if c.unlabelled else "[green]OK[/]"
            table.add_row(c.connector, c.collection, str(c.total), str(c.unlabelled), status)
        console.print(table)
        for c in report.census:
            for note in c.notes[:10]:
                console.print(f"  [yellow]note[/] {c.connector}: {note}")
        for store, err in sorted(report.errors.items()):
            err_console.print(f"[red]unreachable:[/] {store}: {err}")
        if not report.census and not report.errors:
            console.print("no data connectors configured ([[data.connectors]] in soc2ai.toml)")
    if report.unlabelled or report.errors:
        raise typer.Exit(EXIT_FINDING)
