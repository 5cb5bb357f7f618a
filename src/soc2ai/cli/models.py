"""``soc2ai models list|check``: the model registry (CC8.1)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from soc2ai.cli._common import ConfigOption, JsonOption, console, get_config, handle_errors, print_json

app = typer.Typer(
    help="Production models: ticket, evaluation, approval, data classes (CC8.1).", no_args_is_help=True
)


@app.command("list")
@handle_errors
def list_(config: Path | None = ConfigOption, json_out: bool = JsonOption) -> None:
    """Registered models and the data classes each may receive."""
    from soc2ai.governance._paths import paths
    from soc2ai.governance.models import ModelRegistry

    reg = ModelRegistry.load(paths(get_config(config)).models)
    if json_out:
        print_json([e.model_dump(mode="json") for e in reg.list()])
        return
    table = Table(title="Model registry")
    for col in ("alias", "env", "provider", "model", "data classes", "ticket", "approved by", "owner"):
        table.add_column(col, overflow="fold")
    for e in reg.list():
        table.add_row(*(escape(str(v)) for v in (
            e.alias,
            e.environment,
            e.provider,
            e.model_id,
            ", ".join(e.data_classes),
            e.ticket or "",
            e.approval.by if e.approval else "",
            e.owner,
        )))
    console.print(table)


@app.command("check")
@handle_errors
def check(
    gateway_model: list[str] = typer.Option(
        [], "--gateway-model", help="Alias served by the gateway (default: [gateway])."
    ),
    today: str | None = typer.Option(None, "--today", hidden=True),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Fail on production models missing ticket/eval/approval, changed eval files, unscanned fine-tune
    data, and gateway aliases that are not registered."""
    from soc2ai.governance._cli import ledger_entries, parse_day, show_results
    from soc2ai.governance.models import check_models

    cfg = get_config(config)
    entries = ledger_entries(cfg, "scan")
    scans = (
        None
        if entries is None
        else {str(e.body["id"]): e.body for e in entries if isinstance(e.body, dict) and "id" in e.body}
    )
    results = check_models(
        cfg,
        gateway_models=gateway_model or None,
        scan_records=scans,
        today=parse_day(today, "--today") or date.today(),
        as_of=today is not None,
    )
    show_results(results, json_out=json_out, title="Model registry check")
