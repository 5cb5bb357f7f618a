"""``soc2ai sources list|check``: the data-source register (C1.1)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from soc2ai.cli._common import ConfigOption, JsonOption, console, get_config, handle_errors, print_json

app = typer.Typer(help="Sources of training and RAG data, with their terms (C1.1).", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_(config: Path | None = ConfigOption, json_out: bool = JsonOption) -> None:
    """Registered data sources."""
    from soc2ai.governance._paths import paths
    from soc2ai.governance.sources import SourceRegister

    reg = SourceRegister.load(paths(get_config(config)).sources)
    if json_out:
        print_json([s.model_dump(mode="json") for s in reg.list()])
        return
    table = Table(title="Data sources")
    for col in ("id", "origin", "classification", "PII", "used for", "terms", "retention", "owner"):
        table.add_column(col, overflow="fold")
    for s in reg.list():
        terms = f"DPA {s.dpa.signed}" if s.dpa else (s.licence or "")
        table.add_row(*(escape(str(v)) for v in (
            s.id,
            s.origin,
            s.classification,
            "yes" if s.pii_expected else "no",
            ", ".join(s.used_for),
            terms,
            f"{s.retention_days} d" if s.retention_days else "",
            s.owner,
        )))
    console.print(table)


@app.command("check")
@handle_errors
def check(
    today: str | None = typer.Option(None, "--today", hidden=True),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Register present and non-empty; external data has a DPA or licence; personal data has retention."""
    from soc2ai.governance._cli import parse_day, show_results
    from soc2ai.governance.sources import check_sources

    results = check_sources(get_config(config), today=parse_day(today, "--today") or date.today())
    show_results(results, json_out=json_out, title="Data-source register check")
