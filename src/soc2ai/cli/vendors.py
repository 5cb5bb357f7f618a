"""``soc2ai vendors check|report``: the vendor register (CC9.2)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path

import typer

from soc2ai.cli._common import ConfigOption, JsonOption, console, get_config, handle_errors

app = typer.Typer(
    help="AI vendors and subprocessors: SOC 2 reports, DPAs, reviews (CC9.2).", no_args_is_help=True
)


class Format(StrEnum):
    """Report formats."""

    md = "md"
    csv = "csv"
    json = "json"


@app.command("check")
@handle_errors
def check(
    provider: list[str] = typer.Option(
        [], "--provider", help="Provider in use (default: [gateway] providers)."
    ),
    today: str | None = typer.Option(None, "--today", help="Evaluate as of this date (YYYY-MM-DD)."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """WARN on stale SOC 2 reports, missing DPAs/SLAs, overdue reviews and unmanaged vendors."""
    from soc2ai.governance._cli import parse_day, show_results
    from soc2ai.governance.vendors import check_vendors

    results = check_vendors(
        get_config(config),
        today=parse_day(today, "--today") or date.today(),
        providers=provider or None,
        as_of=today is not None,
    )
    show_results(results, json_out=json_out, title="Vendor register check")


@app.command("report")
@handle_errors
def report(
    fmt: Format = typer.Option(Format.md, "--format", "-f", help="md, csv or json."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to this file instead of stdout."),
    today: str | None = typer.Option(None, "--today", help="As of this date (YYYY-MM-DD)."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """The vendor review table auditors ask for."""
    import sys

    from soc2ai.governance._cli import parse_day
    from soc2ai.governance._paths import paths
    from soc2ai.governance.vendors import load_vendors, render_report, vendor_rows

    cfg = get_config(config)
    day = parse_day(today, "--today") or date.today()
    rows = vendor_rows(
        load_vendors(paths(cfg).vendors, today=day, as_of=today is not None), today=day, max_age=cfg.governance.soc2_max_age_days
    )
    text = render_report(rows, "json" if json_out else fmt.value, today=day)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {len(rows)} vendors to {out}")
