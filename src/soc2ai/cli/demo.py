"""``soc2ai demo``: the main job end to end on the embedded default, with a summary."""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from soc2ai.cli._common import console, handle_errors, print_json
from soc2ai.cli._scenario import commit_reviewed, run_scenario
from soc2ai.cli.init import init_project
from soc2ai.config import DEFAULT_CONFIG_NAME, Config, load_config
from soc2ai.ledger import AuditLog
from soc2ai.ledger.records import AccessRecord, ConfigChangeRecord

MODELS = [("support-bot", "gpt-4o-mini", "openai"), ("summarizer", "claude-3-5-haiku", "anthropic"),
          ("rag-answer", "gpt-4o", "openai"), ("classifier", "llama-3.1-8b", "vllm")]
PROMPTS = ["How do I reset my password?", "Summarise this contract clause for a non-lawyer.",
           "What is our refund policy for annual plans?", "Classify this ticket: 'app crashes on login'",
           "Draft a polite reply declining the meeting.", "Which regions do you store data in?"]


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the app."""

    @app.command("demo")
    @handle_errors
    def demo(
        directory: Path = typer.Option(Path("soc2ai-demo"), "--dir", help="Demo project directory."),
        records: int = typer.Option(5000, "--records", "-n", min=10, help="Inference records to write."),
        rate: int = typer.Option(5000, "--rate", min=100, help="Records per second offered."),
        fresh: bool = typer.Option(False, "--fresh", help="Delete the demo directory first."),
        seed: int = typer.Option(7, "--seed"),
        gateway: bool = typer.Option(True, "--gateway/--no-gateway", help="Also run the live gateway scenario."),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """The main job end to end: ledger stream, gateway scenario with alerts and incidents, readiness check."""
        summary = run_demo(directory, records=records, rate=rate, fresh=fresh, seed=seed, quiet=json_out,
                           gateway=gateway)
        if json_out:
            print_json(summary)
        else:
            _print_summary(summary, directory)


def _ensure_project(directory: Path, fresh: bool) -> Config:
    if fresh and directory.exists():
        shutil.rmtree(directory)
    if not (directory / DEFAULT_CONFIG_NAME).exists():
        init_project(directory, name="demo")
        commit_reviewed(directory.resolve())
    return load_config(directory / DEFAULT_CONFIG_NAME)


def run_demo(directory: Path, *, records: int, rate: int, fresh: bool, seed: int,
             quiet: bool = False, gateway: bool = True) -> dict[str, Any]:
    """The demo as a function (the CLI and tests call it)."""
    config = _ensure_project(directory, fresh)
    rng = random.Random(seed)  # noqa: S311 - synthetic demo traffic, not security
    users = [f"user-{i:03d}@example.com" for i in range(40)]
    t_start = time.perf_counter()
    with AuditLog.open(config) as log:
        start_size = log.size()
        log.append(ConfigChangeRecord(target="gateway", action="start", actor="demo",
                                      summary="demo run started"))
        t0 = time.perf_counter()
        caller_ns: list[int] = []
        for i in range(records):
            due = t0 + i / rate
            ahead = due - time.perf_counter()
            if ahead > 0.001:  # open-loop pacing; sleeping (not spinning) like a real I/O-bound caller
                time.sleep(ahead)
            alias, model, provider = rng.choice(MODELS)
            prompt = rng.choice(PROMPTS) + f" (ticket {rng.randint(1000, 99999)})"
            response = "Here is what I found: " + " ".join(rng.choice(PROMPTS).split()[:8])
            c0 = time.perf_counter_ns()
            log.log_inference(
                user_id=rng.choice(users), model_id=alias, prompt=prompt, response=response,
                latency_us=rng.randint(150_000, 2_500_000), input_tokens=rng.randint(20, 900),
                output_tokens=rng.randint(5, 400), flagged=rng.random() < 0.01,
                model_served=model, provider=provider, endpoint="chat.completions", tenant="acme",
                params={"temperature": rng.choice([0.0, 0.2, 0.7]), "max_tokens": 512},
                finish_reason="stop", classification=rng.choice(["internal", "confidential"]))
            caller_ns.append(time.perf_counter_ns() - c0)
            if i % 500 == 0:
                log.append(AccessRecord(action="auth", decision="deny", reason="revoked key",
                                        key_id=f"key-{rng.randint(1, 9)}", status=401))
        durable = log.flush(timeout=60)
        stats = log.stats()
        report = log.verify()
        cp = log.checkpoint()
    caller_ns.sort()
    scenario = run_scenario(config) if gateway else None
    return {
        "scenario": scenario,
        "directory": str(directory.resolve()),
        "records_written": records,
        "log_size": durable,
        "new_records": durable - start_size,
        "checkpoint": cp.note,
        "verify": report.to_json(),
        "caller_us": {"p50": caller_ns[len(caller_ns) // 2] / 1000,
                      "p99": caller_ns[int(len(caller_ns) * 0.99)] / 1000},
        "seal_latency_us": stats.get("seal_latency_us"),
        "spooled": stats.get("spooled_total"),
        "caller_errors": stats.get("caller_errors"),
        "elapsed_s": round(time.perf_counter() - t_start, 2),
    }


def _print_summary(s: dict[str, Any], directory: Path) -> None:
    table = Table("", "", title="soc2ai demo", show_header=False)
    lat = s["seal_latency_us"] or {}
    table.add_row("records written", f"{s['records_written']:,} inference (+ access/config records)")
    table.add_row("ledger size", f"{s['log_size']:,} records under {s['verify']['checkpoints']:,} signed checkpoints")
    table.add_row("verify", f"OK in {s['verify']['elapsed_s']} s")
    table.add_row("caller cost", f"p50 {s['caller_us']['p50']:.1f} µs, p99 {s['caller_us']['p99']:.1f} µs")
    if lat.get("p50") is not None:
        table.add_row("call → signed checkpoint", f"p50 {lat['p50'] / 1000:.1f} ms, p99 {lat['p99'] / 1000:.1f} ms")
    table.add_row("lost / caller errors", f"0 / {s['caller_errors']}")
    sc = s.get("scenario")
    if sc:
        gw = sc["gateway"]
        calls = ", ".join(f"{phase} {len(codes)}x{'/'.join(sorted({str(c) for c in codes}))}"
                          for phase, codes in gw["statuses"].items())
        table.add_row("gateway calls (phase countxstatus)", calls)
        table.add_row("screening", f"injection blocked ({gw['injection_status']}), "
                      f"PII in output {'redacted' if gw['pii_redacted'] else 'NOT redacted'}")
        table.add_row("alerts → webhook + syslog", f"{', '.join(sc['alerts'])} ({sc['syslog_messages']} syslog)")
        table.add_row("incidents opened", ", ".join(f"{i['id']} ({i['source'].rsplit('/', 1)[-1]})"
                                                    for i in sc["incidents"]) or "none")
        counts = {st: sum(1 for c in sc["check"] if c["status"] == st) for st in ("OK", "WARN", "FAIL")}
        bad = [f"{c['status']} {c['check_id']}" for c in sc["check"] if c["status"] != "OK"]
        table.add_row("readiness check", f"{counts['OK']} OK, {counts['WARN']} WARN, {counts['FAIL']} FAIL"
                      + (f": {', '.join(bad)}" if bad else ""))
    console.print(table)
    console.print("Latest checkpoint (C2SP signed note):")
    console.print(s["checkpoint"], markup=False, highlight=False)
    cfg = directory / DEFAULT_CONFIG_NAME
    console.print("Try it: tamper with a record, then verify:")
    sql = r"UPDATE ledger_leaves SET body = replace(body, '\"flagged\":false', '\"flagged\":true') WHERE idx = 42"
    console.print(f'  sqlite3 {directory}/.soc2ai/audit.db "{sql}"', markup=False, highlight=False, soft_wrap=True)
    console.print(f"  soc2ai log verify -c {cfg}", markup=False, highlight=False)
    console.print(f"  soc2ai check -c {cfg}      # the ledger check now names the same index",
                  markup=False, highlight=False)
