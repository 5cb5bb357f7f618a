"""``soc2ai evidence export``: the auditor's bundle for a period (see :mod:`soc2ai.evidence.export`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn

from soc2ai.cli._common import (
    ConfigOption,
    JsonOption,
    console,
    err_console,
    get_config,
    handle_errors,
    print_json,
)

app = typer.Typer(help="The auditor's evidence bundle for a period (CC4.1).", no_args_is_help=True)


@app.command("export")
@handle_errors
def export(
    since: str = typer.Option(..., "--since", help="First day of the period (YYYY-MM-DD, UTC)."),
    until: str = typer.Option(..., "--until", help="Last day of the period (YYYY-MM-DD, UTC, inclusive)."),
    out: Path = typer.Option(..., "--out", "-o", help="A new (or empty) directory for the bundle."),
    no_readiness: bool = typer.Option(False, "--no-readiness", help="Do not run (and record) `soc2ai check`."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Export the ledger segment of the period (complete, checkable with only the public key), the
    populations by record kind, the change population and the readiness results, with SHA256SUMS."""
    from soc2ai.evidence import export_evidence
    from soc2ai.governance._cli import parse_day

    cfg = get_config(config)
    lo, hi = parse_day(since, "--since"), parse_day(until, "--until")
    assert lo is not None and hi is not None  # noqa: S101 - both options are required
    with Progress(TextColumn("exporting the ledger segment"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  console=err_console, transient=True, disable=json_out) as bar:
        task = bar.add_task("ledger", total=None)
        bundle = export_evidence(cfg, lo, hi, out, readiness=not no_readiness,
                                 progress=lambda n, total: bar.update(task, completed=n, total=total))
    if json_out:
        print_json(bundle.manifest)
        return
    led = bundle.manifest["ledger"]
    console.print(f"wrote {out}: ledger records {led['start_size']}..{led['end_size'] - 1} "
                  f"({led['records']}, {led['pruned']} pruned), "
                  + ", ".join(f"{k} {n}" for k, n in bundle.counts.items()) + " in the period")
    for note in bundle.manifest["notes"]:
        err_console.print(f"note: {note}")
    console.print(f"auditor: python auditor/verify_proof.py --evidence {out} --pubkey signing.pub")
