"""``soc2ai log ...``: verify, prove, inspect and maintain the ledger."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
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
from soc2ai.errors import StoreError, VerificationError
from soc2ai.ledger import AuditLog, Entry
from soc2ai.ledger.keys import load_verifiers, rotate_signing_key
from soc2ai.ledger.note import Verifier, open_checkpoint
from soc2ai.ledger.proofs import verify_bundle
from soc2ai.ledger.records import KINDS

app = typer.Typer(help="Verify, prove and maintain the signed ledger.", no_args_is_help=True)

PubkeyOption = typer.Option(None, "--pubkey", help="Verifier key file(s) (name+id+key). Default: keys dir.",
                            exists=True, dir_okay=False, readable=True)


def _known_kinds(value: str | list[str] | None) -> str | list[str] | None:
    """Reject a record kind the ledger never writes: filtering on a typo (config-change) would otherwise
    show an empty table, or prune nothing, and look like a clean answer. A usage error (exit 2)."""
    for k in [value] if isinstance(value, str) else value or []:
        if k not in KINDS:
            raise typer.BadParameter(f"unknown record kind {k!r}; valid kinds: {', '.join(KINDS)}")
    return value


def _open(config_path: Path | None, *, write: bool = False) -> AuditLog:
    cfg = get_config(config_path)
    try:
        return AuditLog.open(cfg, read_only=not write)
    except StoreError as exc:
        # No soc2ai.toml was found, so the defaults pointed at a ledger that is not there: the command was
        # run outside a project, a config error (exit 2). A project's own ledger missing or down stays 1.
        if cfg.source != Config.model_fields["source"].default:
            raise
        err_console.print(f"[red]error:[/] {escape(str(exc))}; no soc2ai.toml here: run inside a project, "
                          "pass -c PATH, or create one with `soc2ai init`")
        raise typer.Exit(EXIT_USAGE) from exc


def _verifiers(pubkeys: list[Path] | None, config_path: Path | None) -> list[Verifier]:
    if pubkeys:
        return [Verifier.decode(p.read_text()) for p in pubkeys]
    config = get_config(config_path)
    return load_verifiers(config.path(config.ledger.keys_dir))


def _emit_bundle(bundle: dict[str, Any], out: Path | None) -> None:
    """Write a proof bundle to ``out`` (with how to check it), or to stdout.

    (Files a command reads are declared ``exists=True``: a missing one is a usage error, exit 2.)
    """
    data = orjson.dumps(bundle, option=orjson.OPT_INDENT_2).decode() + "\n"
    if out is None:
        typer.echo(data, nl=False)
        return
    out.write_text(data)
    console.print(f"wrote {out}; check with: soc2ai log verify-proof {out} --pubkey signing.pub")


@app.command("verify")
@handle_errors
def verify(
    against: Path | None = typer.Option(None, "--against", help="A checkpoint exported earlier: detect "
                                        "truncation or rollback since then.", exists=True, dir_okay=False),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Recompute every record hash, tree node and root; check every checkpoint signature and consistency."""
    with _open(config) as log:
        total = log.size()
        cp = None
        try:
            cp = open_checkpoint(against.read_text(), log.verifiers) if against else None
            if json_out:
                report = log.verify(against=cp)
            else:
                with Progress(TextColumn("verifying"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                              console=err_console, transient=True) as bar:
                    task = bar.add_task("verify", total=total)
                    report = log.verify(against=cp, progress=lambda n: bar.update(task, completed=n))
        except VerificationError as exc:
            if json_out:
                print_json({"ok": False, "index": exc.index, "error": str(exc)})
                raise typer.Exit(EXIT_FINDING) from exc
            raise
    if json_out:
        print_json(report.to_json())
        return
    rate = report.size / report.elapsed_s if report.elapsed_s else 0
    console.print(f"[green]OK[/] {report.size} records, {report.checkpoints} checkpoints verified "
                  f"({report.pruned} bodies pruned by retention) in {report.elapsed_s:.2f}s ({rate:,.0f}/s)")
    console.print(f"root {base64.b64encode(report.root).decode()}")
    if cp is not None:
        console.print(f"consistent with the external checkpoint at size {cp.size}")


@app.command("prove")
@handle_errors
def prove(
    index: int = typer.Argument(..., help="Ledger index to prove."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the proof bundle here."),
    config: Path | None = ConfigOption,
) -> None:
    """Export an inclusion proof an auditor can check offline with only the public key."""
    with _open(config) as log:
        _emit_bundle(log.prove(index).to_json(), out)


@app.command("verify-proof")
@handle_errors
def verify_proof(
    proof: Path = typer.Argument(..., help="Inclusion or consistency proof bundle (JSON).", exists=True, dir_okay=False),
    pubkey: list[Path] | None = PubkeyOption,
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Check a proof bundle offline: signature, Merkle path, and the record it proves."""
    result = verify_bundle(proof.read_bytes(), _verifiers(pubkey, config))
    if json_out:
        print_json(result)
    else:
        # What was proven, from the signed checkpoints (not the bundle's unsigned fields).
        what = (f"size {result['old_size']} is extended by size {result['new_size']}"
                if result["type"] == "consistency" else f"index {result['index']}")
        console.print(f"[green]OK[/] {result['type']} proof verifies ({what})")


@app.command("consistency")
@handle_errors
def consistency(
    old_size: int = typer.Argument(..., help="Size of an earlier signed checkpoint."),
    new_size: int | None = typer.Argument(None, help="Later size (default: latest)."),
    out: Path | None = typer.Option(None, "--out", "-o"),
    config: Path | None = ConfigOption,
) -> None:
    """Export a consistency proof: the log at NEW_SIZE extends the log at OLD_SIZE."""
    with _open(config) as log:
        # A size with no signed checkpoint is a wrong argument, not a failed check (exit 2, not 1): the proof
        # is only ever made between stored checkpoints, and nothing about the log was found wrong.
        sizes = [s for s, _ in log.store.checkpoints()]
        for size in (old_size, new_size):
            if size is not None and size not in sizes:
                below = max((s for s in sizes if s < size), default=None)
                above = min((s for s in sizes if s > size), default=None)
                near = " and ".join(str(s) for s in (below, above) if s is not None) or "none"
                err_console.print(f"[red]error:[/] no signed checkpoint at size {size} "
                                  f"(nearest checkpoint sizes: {near})")
                raise typer.Exit(EXIT_USAGE)
        _emit_bundle(log.consistency(old_size, new_size).to_json(), out)


@app.command("checkpoint")
@handle_errors
def checkpoint(
    export: Path | None = typer.Option(None, "--export", help="Write the signed checkpoint to this file "
                                       "(keep it outside the database; use with verify --against)."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Show (or export) the latest signed checkpoint."""
    with _open(config) as log:
        cp = log.checkpoint()
    if export:
        export.write_text(cp.note)
    if json_out:
        print_json({"origin": cp.origin, "size": cp.size, "root": base64.b64encode(cp.root).decode(),
                    "note": cp.note})
    else:
        typer.echo(cp.note, nl=False)


@app.command("tail")
@handle_errors
def tail(
    n: int = typer.Option(20, "-n", help="How many records."),
    kind: str | None = typer.Option(None, "--kind", help="Only this record kind.", callback=_known_kinds),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Show the latest records (hashes and metadata; never content)."""
    with _open(config) as log:
        size = log.size()
        rows: list[Entry] = []
        start = size
        while start > 0 and len(rows) < n:
            start = max(0, start - max(n * 4, 256))
            rows = list(log.entries(start, size, kind))[-n:]
    if json_out:
        print_json([{"idx": e.idx, **(e.body or {"kind": e.kind, "ts": e.ts, "pruned": True})} for e in rows])
        return
    table = Table("idx", "time (UTC)", "kind", "subject", "model / target", "detail")
    for e in rows:
        b = e.body or {}
        when = datetime.fromtimestamp(e.ts / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S")
        subject = (b.get("subject_ref") or "")[:12]
        what = b.get("model") or b.get("target") or b.get("rule") or b.get("action") or ""
        if e.kind == "inference":
            detail = (f"{b.get('latency_us', 0) / 1000:.1f} ms, {b.get('input_tokens')}→{b.get('output_tokens')} tok"
                      + (", FLAGGED" if b.get("flagged") else ""))
        else:
            detail = str(b.get("decision") or b.get("outcome") or b.get("summary") or b.get("message") or "")
        # Record fields are data, not console markup.
        table.add_row(str(e.idx), when, escape(e.kind), escape(subject), escape(str(what)),
                      "(pruned)" if e.body is None else escape(detail))
    console.print(table)


@app.command("stats")
@handle_errors
def stats(config: Path | None = ConfigOption, json_out: bool = JsonOption) -> None:
    """Counts by kind, pruned bodies, spool and replay state."""
    with _open(config) as log:
        s = log.stats()
    if json_out:
        print_json(s)
        return
    table = Table("metric", "value")
    for k, v in s.items():
        table.add_row(k, ", ".join(f"{a}={b}" for a, b in v.items()) if isinstance(v, dict) else str(v))
    console.print(table)


@app.command("prune")
@handle_errors
def prune(
    days: int | None = typer.Option(None, "--days", help="Prune bodies older than this many days "
                                    "(default: ledger.retention_days)."),
    kind: list[str] | None = typer.Option(None, "--kind", help="Only these record kinds.", callback=_known_kinds),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Drop record bodies past retention; leaf hashes and checkpoints stay, so verify still passes."""
    # The same floor the readiness check holds the configured retention to (data.retention.ledger_days
    # cannot be set below it either): a one-off --days must not prune evidence the config has to keep.
    from soc2ai.data.settings import INFERENCE_FLOOR_DAYS

    if days is not None and days < INFERENCE_FLOOR_DAYS:
        err_console.print(f"[red]error:[/] --days {days} is below the minimum retention of "
                          f"{INFERENCE_FLOOR_DAYS} days for ledger bodies; nothing was pruned")
        raise typer.Exit(EXIT_USAGE)
    cfg = get_config(config)
    keep = days if days is not None else cfg.ledger.retention_days
    cutoff = int((datetime.now(UTC) - timedelta(days=keep)).timestamp() * 1e6)
    with AuditLog.open(cfg) as log:
        n = log.prune(cutoff, list(kind) if kind else None, actor="cli")
    if json_out:
        print_json({"pruned": n, "cutoff_ts": cutoff})
    else:
        console.print(f"pruned {n} record bodies older than {keep} days (receipt appended)")


@app.command("forget")
@handle_errors
def forget(
    subject: str = typer.Option(..., "--subject", help="The user id to crypto-shred."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Destroy a subject's keys: their records become unlinkable; every proof still verifies."""
    with AuditLog.open(get_config(config)) as log:
        result = log.forget(subject, actor="cli")
    if json_out:
        print_json({"subject_refs": result.subject_refs, "records": result.records, "receipt": result.receipt_id,
                    "spool_keys_erased": result.spool_keys_erased, "residue": list(result.residue)})
    elif result.subject_refs:
        console.print(f"shredded {len(result.subject_refs)} key(s) covering {result.records} records; "
                      f"receipt {result.receipt_id}")
    else:
        console.print("no such subject in the ledger (receipt appended)")
    if result.spool_keys_erased:
        console.print(f"erased {result.spool_keys_erased} key(s) from quarantined spool files")
    for note in result.residue:
        console.print(f"WARN {note}", markup=False)


@app.command("match")
@handle_errors
def match(
    index: int = typer.Argument(..., help="Ledger index of an inference record."),
    prompt_file: Path | None = typer.Option(None, "--prompt-file", exists=True, dir_okay=False),
    response_file: Path | None = typer.Option(None, "--response-file", exists=True, dir_okay=False),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Say whether this exact prompt/response is what record INDEX processed (recomputes the keyed hashes)."""
    if prompt_file is None and response_file is None:
        err_console.print("give --prompt-file and/or --response-file")
        raise typer.Exit(EXIT_USAGE)
    with _open(config) as log:
        size = log.size()
        if not 0 <= index < size:  # an index the log never had is a wrong argument, not a mismatch
            err_console.print(f"[red]error:[/] no record at index {index} (the log has {size} records)")
            raise typer.Exit(EXIT_USAGE)
        res = log.match(index, prompt=prompt_file.read_text() if prompt_file else None,
                        response=response_file.read_text() if response_file else None)
    if json_out:
        print_json({"index": index, "prompt": res.prompt, "response": res.response, "ok": res.ok})
    else:
        for label, val in (("prompt", res.prompt), ("response", res.response)):
            if val is not None:
                console.print(f"{label}: " + ("[green]MATCH[/]" if val else "[red]DIFFERENT[/]"))
    if not res.ok:
        raise typer.Exit(EXIT_FINDING)


@app.command("rotate-key")
@handle_errors
def rotate_key(config: Path | None = ConfigOption) -> None:
    """Start signing with a new key; the old public key stays trusted for the checkpoints it signed."""
    cfg = get_config(config)
    v = rotate_signing_key(cfg.path(cfg.ledger.keys_dir), cfg.project.name)
    console.print(f"new public key: {v.encode()}")


