"""``soc2ai check``: audit readiness, one line per check (OK/WARN/FAIL, check id, criterion, message)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from soc2ai.cli._common import (
    EXIT_FINDING,
    EXIT_OK,
    ConfigOption,
    JsonOption,
    console,
    err_console,
    get_config,
    handle_errors,
    print_json,
)

STYLE = {"OK": "green", "WARN": "yellow", "FAIL": "red"}


def register(app: typer.Typer) -> None:
    """Add ``check`` to the top-level app."""
    app.command("check")(check)


@handle_errors
def check(
    notify: bool = typer.Option(False, "--notify", help="Send WARN/FAIL lines to the configured alert sinks."),
    warn_ok: bool = typer.Option(False, "--warn-ok", help="Exit 0 when there are warnings but no failures."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Run the readiness checks. Exit 0 when all OK, 1 on any WARN/FAIL (WARN only: 0 with --warn-ok)."""
    from soc2ai.readiness.runner import run

    cfg = get_config(config)
    if json_out:
        report = run(cfg, send=notify)
    else:
        with console.status("running readiness checks…"):
            report = run(cfg, send=notify)
    if json_out:
        print_json(report.to_dict())
    else:
        width = max((len(r.check_id) for r in report.results), default=10)
        for r in report.results:
            console.print(f"[{STYLE[r.status]}]{r.status:<4}[/]  {escape(r.check_id):<{width}}  "
                          f"{r.criterion:<6}  {escape(r.message)}", highlight=False, soft_wrap=True)
            if r.status != "OK" and r.remedy:
                console.print(f"      remedy: {escape(r.remedy)}", style="dim", highlight=False, soft_wrap=True)
        summary = f"{report.count('OK')} OK, {report.count('WARN')} WARN, {report.count('FAIL')} FAIL"
        if report.record_id is None:
            summary += " (the run could not be recorded in the ledger)"
        if notify:
            summary += f"; {report.notified} sent to sinks"
            if report.undelivered:
                summary += f", {report.undelivered} waiting in the outbox"
        err_console.print(summary)
    failing = report.count("FAIL") + (0 if warn_ok else report.count("WARN"))
    raise typer.Exit(EXIT_FINDING if failing else EXIT_OK)
