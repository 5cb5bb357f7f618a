"""The ``soc2ai`` command line: a thin typer app over the public API.

Each command group lives in its own module and registers itself here (one line per group).
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="soc2ai",
    help="SOC 2 controls and auditor evidence for AI products.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


_registered: list[bool] = []


def _register() -> None:
    # Imported here, not at module import, so `import soc2ai.cli` stays cheap and side-effect free.
    if _registered:
        return
    _registered.append(True)
    from soc2ai.cli import demo, init, log

    init.register(app)
    demo.register(app)
    app.add_typer(log.app, name="log")
    from soc2ai.cli import data as data_cli
    from soc2ai.cli import dsar as dsar_cli
    from soc2ai.cli import lineage as lineage_cli
    from soc2ai.cli import retention as retention_cli
    app.add_typer(data_cli.app, name="data")
    app.add_typer(lineage_cli.app, name="lineage")
    app.add_typer(retention_cli.app, name="retention")
    app.add_typer(dsar_cli.app, name="dsar")
    from soc2ai.cli import alerts as alerts_cli
    app.add_typer(alerts_cli.app, name="alerts")
    from soc2ai.cli import check as check_cli
    check_cli.register(app)
    from soc2ai.cli import prompts as prompts_cli
    app.add_typer(prompts_cli.app, name="prompts")
    from soc2ai.cli import models as models_cli
    app.add_typer(models_cli.app, name="models")
    from soc2ai.cli import vendors as vendors_cli
    app.add_typer(vendors_cli.app, name="vendors")
    from soc2ai.cli import sources as sources_cli
    app.add_typer(sources_cli.app, name="sources")
    from soc2ai.cli import incidents as incidents_cli
    app.add_typer(incidents_cli.app, name="incidents")
    from soc2ai.cli import changes as changes_cli
    app.add_typer(changes_cli.app, name="changes")
    from soc2ai.cli import gateway as gateway_cli
    gateway_cli.register(app)
    from soc2ai.cli import keys as keys_cli
    app.add_typer(keys_cli.app, name="keys")
    from soc2ai.cli import scan as scan_cli
    scan_cli.register(app)
    from soc2ai.cli import evidence as evidence_cli
    app.add_typer(evidence_cli.app, name="evidence")


def main() -> None:
    """Console-script entry point."""
    _register()
    app()
