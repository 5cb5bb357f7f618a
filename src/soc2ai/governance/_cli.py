"""Helpers shared by the governance CLI modules (rich output of check results, ledger look-ups)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import typer
from rich.table import Table

from soc2ai.cli._common import EXIT_FINDING, EXIT_USAGE, console, err_console, print_json
from soc2ai.config import Config
from soc2ai.governance.checks import FAIL, OK, WARN, CheckResult, worst

_STYLE = {OK: "green", WARN: "yellow", FAIL: "red"}


def show_results(results: Sequence[CheckResult], *, json_out: bool, title: str) -> None:
    """Print check lines (table or JSON) and exit 1 when any line is FAIL or WARN."""
    status = worst(results)
    if json_out:
        print_json({"status": status, "results": [r.to_dict() for r in results]})
    else:
        table = Table(title=title)
        for col in ("status", "check", "criterion", "message", "remedy"):
            table.add_column(col, overflow="fold")
        for r in results:
            table.add_row(f"[{_STYLE[r.status]}]{r.status}[/]", r.check_id, r.criterion, r.message, r.remedy)
        console.print(table)
        counts = {s: sum(r.status == s for r in results) for s in (OK, WARN, FAIL)}
        console.print(
            f"[{_STYLE[status]}]{status}[/]  {counts[OK]} ok, {counts[WARN]} warn, {counts[FAIL]} fail"
        )
    if status != OK:
        raise typer.Exit(EXIT_FINDING)


def parse_day(value: str | None, option: str) -> date | None:
    """``YYYY-MM-DD`` or None; a bad value exits 2 naming the option."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        err_console.print(f"[red]error:[/] {option}: expected YYYY-MM-DD, got {value!r}")
        raise typer.Exit(EXIT_USAGE) from exc


def ledger_entries(config: Config, kind: str) -> list[Any] | None:
    """Entries of ``kind`` from the configured ledger, or None when there is no ledger to read."""
    from soc2ai.errors import Soc2AIError

    url = config.ledger.store
    if url.startswith("sqlite:///"):
        raw = url[len("sqlite:///") :]
        if not config.path(raw).exists():
            return None
    try:
        from soc2ai.ledger import AuditLog

        with AuditLog.open(config, read_only=True) as log:
            return list(log.entries(kind=kind))
    except Soc2AIError as exc:
        err_console.print(f"[yellow]note:[/] ledger not readable ({exc}); continuing without it")
        return None


def git_actor(config: Config) -> str:
    """Who is acting: the git user e-mail of the repository, else ``cli``."""
    from soc2ai.governance import gitlog

    try:
        value = gitlog.git(config.root, "config", "user.email", check=False).strip()
    except Exception:  # git missing: not worth failing a register update over
        value = ""
    return value or "cli"
