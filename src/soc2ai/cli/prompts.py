"""``soc2ai prompts list|show|render|diff|status``: the prompt registry (CC8.1)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from soc2ai.cli._common import (
    EXIT_FINDING,
    ConfigOption,
    JsonOption,
    console,
    get_config,
    handle_errors,
    print_json,
)
from soc2ai.errors import ConfigError

if TYPE_CHECKING:
    from soc2ai.config import Config
    from soc2ai.governance.prompts import PromptRegistry

app = typer.Typer(help="Versioned prompt templates and their change evidence (CC8.1).", no_args_is_help=True)


def _registry(config_path: Path | None) -> tuple[Config, PromptRegistry]:
    from soc2ai.governance._paths import paths
    from soc2ai.governance.prompts import PromptRegistry

    config = get_config(config_path)
    return config, PromptRegistry.load(paths(config).prompts)


@app.command("list")
@handle_errors
def list_(config: Path | None = ConfigOption, json_out: bool = JsonOption) -> None:
    """Every template version with owner, status and content hash."""
    _, reg = _registry(config)
    rows: list[dict[str, Any]] = [
        {
            "ref": t.ref,
            "status": t.status,
            "owner": t.owner,
            "variables": list(t.variables),
            "content_hash": t.content_hash,
            "description": t.description,
        }
        for t in reg.list()
    ]
    if json_out:
        print_json(rows)
        return
    table = Table(title="Prompt templates")
    for col in ("ref", "status", "owner", "variables", "content hash", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*(escape(str(v)) for v in (r["ref"], r["status"], r["owner"], ", ".join(r["variables"]),
                                                   r["content_hash"][:23] + "…", r["description"])))
    console.print(table)


@app.command("show")
@handle_errors
def show(
    ref: str = typer.Argument(..., help="NAME or NAME@vN (default: current version)."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Header and body of a template version."""
    _, reg = _registry(config)
    t = reg.get(ref)
    if json_out:
        print_json(
            {
                "ref": t.ref,
                "status": t.status,
                "owner": t.owner,
                "description": t.description,
                "variables": list(t.variables),
                "content_hash": t.content_hash,
                "path": str(t.path),
                "body": t.body,
            }
        )
        return
    console.print(f"[bold]{escape(t.ref)}[/]  " + escape(f"status={t.status}  owner={t.owner}  {t.content_hash}"))
    if t.description:
        console.print(t.description, markup=False)
    console.print(f"variables: {', '.join(t.variables) or '-'}\n", markup=False)
    sys.stdout.write(t.body)


@app.command("render")
@handle_errors
def render(
    ref: str = typer.Argument(..., help="NAME or NAME@vN."),
    var: list[str] = typer.Option([], "--var", help="name=value (repeatable)."),
    vars_file: Path | None = typer.Option(None, "--vars-file", help="JSON object of variables."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Render a template in the sandbox (missing or unknown variables are errors)."""
    _, reg = _registry(config)
    variables: dict[str, object] = {}
    if vars_file is not None:
        try:
            loaded = orjson.loads(vars_file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read variables: {exc}", file=str(vars_file)) from exc
        if not isinstance(loaded, dict):
            raise ConfigError("expected a JSON object", file=str(vars_file))
        variables.update(loaded)
    for item in var:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--var expects name=value, got {item!r}", field="--var")
        variables[name] = value
    out = reg.render(ref, variables)
    if json_out:
        print_json({"ref": out.ref, "content_hash": out.content_hash, "text": out.text})
    else:
        sys.stdout.write(out.text)


@app.command("diff")
@handle_errors
def diff(
    a: str = typer.Argument(..., help="NAME@vN"),
    b: str = typer.Argument(..., help="NAME@vM"),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Unified diff between two template versions."""
    _, reg = _registry(config)
    text = reg.diff(a, b)
    if json_out:
        print_json({"from": a, "to": b, "diff": text})
    else:
        sys.stdout.write(text or "(no differences)\n")


@app.command("status")
@handle_errors
def status(
    pr_export: Path | None = typer.Option(None, "--pr-export", help="`gh pr list --json ...` output."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Each version joined with git: when, who, through which PR, reviewed or UNREVIEWED."""
    from soc2ai.governance._paths import paths
    from soc2ai.governance.prompt_status import prompt_status

    cfg, reg = _registry(config)
    p = paths(cfg)
    statuses = prompt_status(reg, p.prompts, cfg.governance, pr_export=pr_export or p.pr_export)
    bad = [s for s in statuses if s.state != "reviewed"]
    if json_out:
        print_json({"unreviewed": len(bad), "versions": [s.to_dict() for s in statuses]})
    else:
        table = Table(title="Prompt change evidence")
        for col in ("ref", "state", "changed", "by", "via", "reviewers", "approvals", "reasons"):
            table.add_column(col, overflow="fold")
        for s in statuses:
            last = s.last
            style = "green" if s.state == "reviewed" else "red"
            table.add_row(
                escape(s.ref),
                f"[{style}]{s.state}[/]",
                last.date.date().isoformat() if last else "",
                escape(last.author if last else ""),
                escape(s.via()),
                escape(", ".join(last.reviewers) if last else ""),
                escape(", ".join(last.approvals) if last else ""),
                escape("; ".join(s.reasons)),
            )
        console.print(table)
        console.print(f"{len(statuses) - len(bad)} reviewed, [{'red' if bad else 'green'}]{len(bad)} not[/]")
    if bad:
        raise typer.Exit(EXIT_FINDING)
