"""``soc2ai scan PATH...``: the PII / secrets / injection gate for training and RAG datasets.

Exit codes: 0 nothing found, 1 findings, 2 usage or config error. Each run appends a scan receipt to
the ledger unless ``--no-receipt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import orjson
import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from soc2ai.cli._common import (
    EXIT_FINDING,
    EXIT_OK,
    EXIT_USAGE,
    ConfigOption,
    JsonOption,
    console,
    err_console,
    get_config,
    handle_errors,
    print_json,
)
from soc2ai.errors import Soc2AIError

SHOW_FINDINGS = 20


def register(app: typer.Typer) -> None:
    """Add the top-level ``scan`` command."""
    app.command("scan")(scan)


@handle_errors
def scan(
    paths: list[Path] = typer.Argument(..., help="Files to scan (JSONL, CSV, Parquet or text)."),
    fmt: str | None = typer.Option(None, "--format", "-f", help="jsonl | csv | parquet | txt (default: by extension)."),
    fields: str | None = typer.Option(None, "--fields", help="Comma-separated fields/columns to scan (default: all)."),
    redact_to: Path | None = typer.Option(None, "--redact-to", help="Write a redacted copy here (one input)."),
    findings_out: str | None = typer.Option(None, "--findings", help="Write per-record findings as JSONL ('-' = stdout)."),
    injection: bool = typer.Option(False, "--injection", help="Also run the prompt-injection classifier (slower)."),
    no_receipt: bool = typer.Option(False, "--no-receipt", help="Do not append a scan receipt to the ledger."),
    allow_malformed: bool = typer.Option(False, "--allow-malformed",
                                         help="Pass even if some records cannot be read (they are still reported)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Scan datasets for PII and secrets; exit 1 if anything is found or a record cannot be read."""
    from soc2ai.scan.dataset import RecordFindings, scan_dataset
    from soc2ai.scan.receipt import write_receipt

    cfg = get_config(config)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        err_console.print(f"[red]error:[/] no such file: {', '.join(missing)}")
        raise typer.Exit(EXIT_USAGE)
    if findings_out == "-" and json_out:
        err_console.print("[red]error:[/] --findings - and --json both write to stdout; write the findings to a file")
        raise typer.Exit(EXIT_USAGE)
    field_list = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    sink: IO[str] | None = None
    if findings_out == "-":
        import sys

        sink = sys.stdout
    elif findings_out:
        sink = Path(findings_out).open("w", encoding="utf-8")
    shown: list[RecordFindings] = []

    def on_record(rf: RecordFindings) -> None:
        if sink is not None:
            sink.write(orjson.dumps(rf.to_dict()).decode() + "\n")
        if len(shown) < SHOW_FINDINGS:
            shown.append(rf)

    total = sum(p.stat().st_size for p in paths)
    progress = Progress(TextColumn("scanning"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        TimeRemainingColumn(), console=err_console, transient=True,
                        disable=quiet or json_out or not err_console.is_terminal)
    try:
        with progress:
            task = progress.add_task("scan", total=total)

            def on_bytes(n: int) -> None:
                progress.advance(task, n)

            report = scan_dataset(paths, cfg.scan, fmt=fmt, fields=field_list, redact_to=redact_to,
                                  injection=injection, on_record=on_record, on_bytes=on_bytes,
                                  allow_malformed=allow_malformed)
    finally:
        if sink is not None and findings_out != "-":
            sink.close()
    out: dict[str, Any] = report.to_dict()
    out["receipt"] = None
    receipt_error = None
    if not no_receipt:
        try:
            out["receipt"] = write_receipt(report, cfg)
        except Soc2AIError as exc:
            # No receipt means no evidence: report it and fail, after showing the scan result.
            receipt_error = f"{exc} (run `soc2ai init`, or pass --no-receipt)"
            out["receipt_error"] = receipt_error
    if json_out:
        print_json(out)
    elif findings_out != "-":
        _print_human(out, shown)
    if receipt_error:
        err_console.print(f"[red]error:[/] scan receipt not written: {receipt_error}")
        raise typer.Exit(EXIT_USAGE)
    raise typer.Exit(EXIT_OK if report.passed else EXIT_FINDING)


def _print_human(out: dict[str, Any], shown: list[Any]) -> None:
    table = Table(title="scan summary")
    table.add_column("type")
    table.add_column("count", justify="right")
    for etype, n in out["counts"].items():
        table.add_row(etype, str(n))
    if out["counts"]:
        console.print(table)
    for rf in shown:
        types = ", ".join(sorted({f.entity_type for f in rf.findings}))
        console.print(f"  {rf.path}:{rf.record} [{rf.field}] {types}")
    for e in out["errors"][:SHOW_FINDINGS]:
        err_console.print(f"[yellow]skipped[/] {e['path']}:{e['line']}: {e['error']}")
    if out["missing_fields"]:
        err_console.print(f"[red]no text under the field(s)[/] {escape(', '.join(out['missing_fields']))} "
                          "in any record: nothing was scanned there (check --fields)")
    status = "[green]PASS[/]" if out["passed"] else "[red]FAIL[/]"
    console.print(f"{status} {out['records']} records, {out['records_with_findings']} with findings, "
                  f"{out['error_count']} malformed, {out['bytes'] / 1e6:.1f} MB at {out['mb_per_s']} MB/s; "
                  f"dataset sha256 {out['dataset_hash'][:16]}…"
                  + (f"; receipt {out['receipt']}" if out["receipt"] else ""))
