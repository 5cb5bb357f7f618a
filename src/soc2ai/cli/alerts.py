"""``soc2ai alerts watch|test``: follow the ledger with the alert rules, or replay a file of records."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import typer
from rich.markup import escape
from rich.table import Table

from soc2ai.cli._common import (
    EXIT_FINDING,
    EXIT_OK,
    ConfigOption,
    JsonOption,
    console,
    err_console,
    get_config,
    handle_errors,
    print_json,
)
from soc2ai.errors import ConfigError

app = typer.Typer(help="Alert rules on the ledger stream (CC7.2-CC7.4).", no_args_is_help=True)


def _alert_table(alerts: list[dict[str, object]]) -> Table:
    table = Table("time", "severity", "rule", "response", "group", "records", "message")
    from soc2ai.monitor.sinks.webhook import iso

    for a in alerts:
        records = a["records"]
        table.add_row(iso(int(str(a["ts"]))), str(a["severity"]), str(a["rule"]), str(a["response"]),
                      str(a["group"]), str(len(records) if isinstance(records, list) else 0), str(a["message"]))
    return table


@app.command("test")
@handle_errors
def test(
    file: Path = typer.Argument(..., help="JSON lines of ledger record bodies ('-' = stdin)."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Replay records through the configured rules and print what would fire (nothing is sent or recorded).

    Exit 0 when nothing fires, 1 when something would.
    """
    import sys

    from soc2ai.monitor.engine import RuleEngine
    from soc2ai.monitor.watch import read_jsonl, replay

    cfg = get_config(config)
    engine = RuleEngine.from_settings(cfg.monitor)
    if str(file) == "-":
        count, fired = replay(engine, read_jsonl(sys.stdin.buffer, source="<stdin>"))
    else:
        try:
            stream = file.open("rb")
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc}", file=str(file)) from exc
        with stream:
            count, fired = replay(engine, read_jsonl(stream, source=str(file)))
    alerts = [a.to_dict() for a in fired]
    if json_out:
        print_json({"records": count, "alerts": alerts, "stats": engine.stats})
    else:
        if alerts:
            console.print(_alert_table(alerts))
        console.print(f"{count} records, {len(alerts)} alerts would fire "
                      f"({engine.stats['deduplicated']} deduplicated, {engine.stats['suppressed']} suppressed)")
    raise typer.Exit(EXIT_FINDING if alerts else EXIT_OK)


@app.command("watch")
@handle_errors
def watch(
    once: bool = typer.Option(False, "--once", help="Evaluate what is in the ledger now, then exit."),
    poll: float = typer.Option(0.2, "--poll", min=0.01, max=60.0, help="Seconds between ledger polls."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Follow the ledger from the stored cursor, raising alerts to the configured sinks.

    Each record is evaluated once across restarts (cursor + rule state in monitor.cursor_file).
    Alerts are recorded in the ledger; HIGH alerts open incidents. Stop with Ctrl-C.
    """
    from soc2ai.ledger import AuditLog
    from soc2ai.monitor.engine import Alert
    from soc2ai.monitor.monitor import Monitor
    from soc2ai.monitor.watch import watch as follow

    cfg = get_config(config)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGINT, _stop)
    previous_term = signal.signal(signal.SIGTERM, _stop)

    def show(alert: Alert) -> None:
        if json_out:
            import orjson

            typer.echo(orjson.dumps(alert.to_dict()).decode())
        else:
            inc = f" incident {alert.incident_id}" if alert.incident_id else ""
            console.print(f"[bold]{alert.severity}[/] {escape(alert.message)}{inc}", highlight=False)

    try:
        with AuditLog.open(cfg) as writer, AuditLog.open(cfg, read_only=True) as reader:
            monitor = Monitor.from_config(cfg, log=writer)
            try:
                stats = follow(monitor, reader, cfg.path(cfg.monitor.cursor_file), follow=not once,
                               poll_s=poll, stop=stop, on_alert=show)
            finally:
                monitor.close(timeout=5.0)
            sinks = monitor.dispatcher.stats() if monitor.dispatcher else {}
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    pending = sum(int(s["pending"]) for s in sinks.values())
    if json_out:
        print_json({"records": stats.records, "alerts": stats.alerts, "cursor": stats.cursor, "sinks": sinks,
                    "monitor_errors": monitor.errors})
    else:
        err_console.print(f"{stats.records} records evaluated, {stats.alerts} alerts, cursor {stats.cursor}"
                          + (f", {pending} alerts waiting in the outbox" if pending else ""))
        if monitor.errors:
            err_console.print(f"[yellow]monitor errors:[/] {monitor.errors} (last: {monitor.last_error})")
