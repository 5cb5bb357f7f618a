"""``soc2ai changes population|sample|record``: change evidence for the auditor's sample (CC8.1)."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from soc2ai.cli._common import (
    EXIT_FINDING,
    EXIT_USAGE,
    ConfigOption,
    JsonOption,
    console,
    err_console,
    get_config,
    handle_errors,
    print_json,
)
from soc2ai.config import Config
from soc2ai.governance.changes import Change, Reconciliation

app = typer.Typer(
    help="Production changes in a period: population, sample, evidence (CC8.1).", no_args_is_help=True
)

SinceOption = typer.Option(..., "--since", help="First day of the period (YYYY-MM-DD, UTC).")
UntilOption = typer.Option(..., "--until", help="Last day of the period (YYYY-MM-DD, UTC, inclusive).")
PrExportOption = typer.Option(
    None,
    "--pr-export",
    help="`gh pr list --state merged --json "
    "number,title,url,author,mergedAt,mergeCommit,reviews,labels` output.",
)
RepoOption = typer.Option(None, "--repo", help="Git repository (default: the config's directory).")
CSV_COLUMNS = (
    "id",
    "date",
    "kind",
    "title",
    "author",
    "committer",
    "ticket",
    "tickets",
    "branch",
    "pr",
    "pr_url",
    "reviewers",
    "approvals",
    "signature",
    "revert_of",
    "config_change",
    "live_at",
    "flags",
    "files",
)


class Format(StrEnum):
    """Output formats."""

    table = "table"
    csv = "csv"
    json = "json"


def _population(
    cfg: Config, since: str, until: str, pr_export: Path | None, repo: Path | None
) -> tuple[list[Change], Reconciliation]:
    from soc2ai.governance import gitlog
    from soc2ai.governance._cli import ledger_entries, parse_day
    from soc2ai.governance._paths import paths
    from soc2ai.governance.audit import config_change_index
    from soc2ai.governance.changes import changes_population, reconcile

    lo, hi = parse_day(since, "--since"), parse_day(until, "--until")
    assert lo is not None and hi is not None  # noqa: S101 - both options are required
    if hi < lo:  # a usage error like a bad date (exit 2), not a traceback from the population builder
        err_console.print(f"[red]error:[/] --until ({hi}) is before --since ({lo})")
        raise typer.Exit(EXIT_USAGE)
    root = gitlog.repo_root(repo or cfg.root)
    entries = ledger_entries(cfg, "config_change")
    index = config_change_index(entries) if entries else None
    with Progress(
        TextColumn("reading git history"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("git", total=None)
        population = changes_population(
            root,
            lo,
            hi,
            cfg.governance,
            pr_export=pr_export or paths(cfg).pr_export,
            config_changes=index,
            progress=lambda n, total: bar.update(task, completed=n, total=total),
        )
    return population, reconcile(root, population, lo, hi, cfg.governance)


def _print_reconciliation(rec: Reconciliation, *, stderr: bool) -> None:
    out = err_console if stderr else console
    mark = "[green]reconciled[/]" if rec.matches else "[red]DOES NOT RECONCILE[/]"
    out.print(
        f"{mark}: population {rec.population} = {rec.rev_list} from `{rec.command}` "
        f"({rec.commits_in_range} first-parent commits on the branch in the period)"
    )


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "; ".join(map(str, value))
    return str(value)


def _row(c: Change) -> dict[str, str]:
    d = c.to_dict()
    return {k: _cell(d[k]) for k in CSV_COLUMNS}


def _emit(
    changes: Sequence[Change], rec: Reconciliation, fmt: Format, out: Path | None, extra: dict[str, object]
) -> None:
    if fmt is Format.json:
        payload = {**extra, "reconciliation": rec.to_dict(), "changes": [c.to_dict() for c in changes]}
        if out is None:
            print_json(payload)
            return
        import orjson

        out.write_bytes(orjson.dumps(payload, default=str, option=orjson.OPT_INDENT_2))
    elif fmt is Format.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_row(c) for c in changes)
        text = buf.getvalue()
        if out is None:
            sys.stdout.write(text)
        else:
            out.write_text(text, encoding="utf-8")
    else:
        table = Table(title=f"{len(changes)} production changes")
        for col in (
            "date",
            "commit",
            "kind",
            "title",
            "author",
            "ticket",
            "PR",
            "reviewers",
            "approvals",
            "flags",
        ):
            table.add_column(col, overflow="fold")
        for c in changes:
            flags = ", ".join(f for f in c.flags if f != "revert")
            # Commit subjects and names are text ("[PROJ-1] fix"), not console markup.
            table.add_row(
                c.date.date().isoformat(),
                c.id[:10],
                c.kind,
                escape(c.title),
                escape(c.author),
                escape(c.ticket or ""),
                f"#{c.pr}" if c.pr else "",
                escape(", ".join(c.reviewers)),
                escape(", ".join(c.approvals)),
                f"[red]{escape(flags)}[/]" if flags else "[green]ok[/]",
            )
        console.print(table)
    if out is not None:
        console.print(f"wrote {len(changes)} changes to {out}")
    _print_reconciliation(rec, stderr=fmt is not Format.table and out is None)


@app.command("population")
@handle_errors
def population(
    since: str = SinceOption,
    until: str = UntilOption,
    fmt: Format = typer.Option(Format.csv, "--format", "-f", help="csv, json or table."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to a file instead of stdout."),
    pr_export: Path | None = PrExportOption,
    repo: Path | None = RepoOption,
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Every production change in the period, reconciled with `git rev-list`."""
    cfg = get_config(config)
    changes, rec = _population(cfg, since, until, pr_export, repo)
    _emit(changes, rec, Format.json if json_out else fmt, out, {"since": since, "until": until})
    if not rec.matches:
        raise typer.Exit(EXIT_FINDING)


@app.command("sample")
@handle_errors
def sample_(
    since: str = SinceOption,
    until: str = UntilOption,
    n: int = typer.Option(5, "-n", "--size", min=1, help="Sample size."),
    seed: str = typer.Option(..., "--seed", help="Seed: the same seed draws the same sample."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json."),
    out: Path | None = typer.Option(None, "--out", "-o"),
    pr_export: Path | None = PrExportOption,
    repo: Path | None = RepoOption,
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """A reproducible sample with ticket, review and approval; exit 1 when a sampled change has an exception."""
    from soc2ai.governance.changes import sample

    cfg = get_config(config)
    changes, rec = _population(cfg, since, until, pr_export, repo)
    picked = sample(changes, n, seed)
    _emit(
        picked,
        rec,
        Format.json if json_out else fmt,
        out,
        {"since": since, "until": until, "seed": seed, "n": n, "population": len(changes)},
    )
    exceptions = [c for c in picked if set(c.flags) - {"revert"}]
    if fmt is Format.table and not json_out:
        console.print(
            f"sampled {len(picked)} of {len(changes)} (seed {seed!r}); {len(exceptions)} with exceptions"
        )
    if exceptions or not rec.matches:
        raise typer.Exit(EXIT_FINDING)


@app.command("record")
@handle_errors
def record(config: Path | None = ConfigOption, json_out: bool = JsonOption) -> None:
    """Append a config_change ledger record for each register/prompt changed since the last run (run on deploy)."""
    from soc2ai.governance._cli import git_actor
    from soc2ai.governance.audit import record_register_changes
    from soc2ai.ledger import AuditLog

    cfg = get_config(config)
    with AuditLog.open(cfg) as log:
        ids = record_register_changes(log, cfg, actor=git_actor(cfg))
        log.flush()
    if json_out:
        print_json({"records": ids})
    else:
        console.print(
            f"{len(ids)} config_change records appended" if ids else "no register or prompt changes"
        )
