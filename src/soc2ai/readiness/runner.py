"""Run the readiness checks, keep their state, record the run in the ledger, notify sinks."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from soc2ai.errors import Soc2AIError
from soc2ai.governance.checks import FAIL, OK, WARN, CheckResult
from soc2ai.readiness.checks import CHECKS, Check, Context, utcnow

if TYPE_CHECKING:
    from soc2ai.config import Config


CRITERIA = {"logs": "CC7.2", "ledger": "PI1.5", "spool": "CC7.2", "keys": "CC6.1", "screening": "CC6.8",
            "vendors": "CC9.2", "prompts": "CC8.1", "models": "CC8.1", "retention": "C1.2", "alerts": "CC7.2",
            "sinks": "CC7.3", "incidents": "CC7.4"}


@dataclass(frozen=True, slots=True)
class Report:
    """All lines of one run, and what was recorded/sent."""

    results: list[CheckResult]
    ran_at: datetime
    record_id: str | None = None
    notified: int = 0
    undelivered: int = 0

    def count(self, status: str) -> int:
        """How many lines have ``status``."""
        return sum(r.status == status for r in self.results)

    def failing(self) -> list[CheckResult]:
        """The WARN and FAIL lines."""
        return [r for r in self.results if r.status != OK]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"ran_at": self.ran_at.isoformat(), "ok": self.count(OK), "warn": self.count(WARN),
                "fail": self.count(FAIL), "results": [r.to_dict() for r in self.results],
                "record_id": self.record_id, "notified": self.notified, "undelivered": self.undelivered}


def _load_state(path: Any) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_state(path: Any, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps(state))
    os.replace(tmp, path)


def _public_keys(keys_dir: Path, dest: Path) -> Path:
    """Copy the public verifier keys (signing.pub, trusted/*.pub) of ``keys_dir`` into ``dest``."""
    from soc2ai.ledger.keys import SIGNING_PUB, TRUSTED_DIR

    if (keys_dir / SIGNING_PUB).is_file():
        shutil.copy(keys_dir / SIGNING_PUB, dest / SIGNING_PUB)
    trusted = keys_dir / TRUSTED_DIR
    if trusted.is_dir():
        (dest / TRUSTED_DIR).mkdir()
        for pub in trusted.glob("*.pub"):
            shutil.copy(pub, dest / TRUSTED_DIR / pub.name)
    return dest


def run_checks(config: Config, *, now: datetime | None = None, sinks: list[Any] | None = None,
               checks: Sequence[tuple[str, Check]] = CHECKS, log: Any = None) -> list[CheckResult]:
    """Run ``checks``; a check that raises is reported as FAIL with the error (the rest still run).

    ``log`` is a read-only AuditLog (opened here when not given). The ledger checkpoint seen by a
    successful run is saved to the state file for the next run's consistency check.
    """
    from soc2ai.ledger import AuditLog

    state_path = config.path(config.monitor.readiness.state_file)
    ctx = Context(config=config, now=now or utcnow(), state=_load_state(state_path), sinks=sinks)
    own_log = None
    public = tempfile.TemporaryDirectory(prefix="soc2ai-check-")
    if log is None:
        try:
            # Verify as an auditor would: with the public keys only, so a problem with the secret key
            # files shows up on the keys line alone instead of hiding every ledger line.
            keys = _public_keys(config.path(config.ledger.keys_dir), Path(public.name))
            own_log = log = AuditLog.open(config, read_only=True, keys_dir=keys)
        except Soc2AIError as exc:
            # Name the project's keys directory, not the temporary copy (gone once the run ends).
            ctx.log_error = str(exc).replace(public.name, str(config.path(config.ledger.keys_dir)))
    ctx.log = log
    results: list[CheckResult] = []
    try:
        for name, check in checks:
            try:
                results.extend(check(ctx))
            except Soc2AIError as exc:  # the item is misconfigured: say so on its own line
                results.append(CheckResult(f"{name}.error", CRITERIA.get(name, "CC4.1"), FAIL, str(exc),
                                           "fix what the message names"))
            except Exception as exc:  # a crashing check must not hide the other checks' results
                results.append(CheckResult(f"{name}.error", CRITERIA.get(name, "CC4.1"), FAIL,
                                           f"check crashed: {type(exc).__name__}: {exc}",
                                           "report this as a bug; fix the item it was checking"))
    finally:
        if own_log is not None:
            own_log.close()
        public.cleanup()
    if ctx.new_state:
        _save_state(state_path, {**ctx.state, **ctx.new_state, "ran_at": ctx.now.isoformat()})
    return results


def record_run(config: Config, results: list[CheckResult], *, log: Any = None) -> str | None:
    """Append a ``readiness`` record (counts and failing check ids) so the auditor sees every run."""
    from soc2ai.ledger import AuditLog
    from soc2ai.ledger.records import ReadinessRecord

    record = ReadinessRecord(ok=sum(r.status == OK for r in results), warn=sum(r.status == WARN for r in results),
                             fail=sum(r.status == FAIL for r in results),
                             failing=[r.check_id for r in results if r.status != OK],
                             attrs={"criteria": sorted({r.criterion for r in results if r.status != OK})})
    if log is not None:
        return str(log.append(record))
    try:  # without keys AuditLog.open refuses before it creates a store: nothing is left behind
        with AuditLog.open(config) as writer:
            rid = writer.append(record)
            writer.flush(5.0)
            return str(rid)
    except Soc2AIError:
        return None


def notify(config: Config, results: list[CheckResult], *, now: datetime | None = None,
           sinks: list[Any] | None = None, timeout: float = 10.0) -> tuple[int, int]:
    """Send WARN/FAIL lines to the configured sinks (through the outbox); return (sent, undelivered)."""
    from soc2ai.monitor.engine import Alert
    from soc2ai.monitor.monitor import Monitor

    bad = [r for r in results if r.status != OK]
    if not bad:
        return 0, 0
    moment = now or utcnow()
    ts = int(moment.timestamp() * 1_000_000)
    monitor = Monitor.from_config(config, sinks=sinks)
    monitor.open_incident = None  # the ReadinessRecord is the evidence; incidents are opened by people
    if monitor.dispatcher is None or not monitor.dispatcher.sinks:
        monitor.close()
        return 0, 0
    try:
        for n, r in enumerate(bad):
            monitor.handle(Alert(
                id=f"readiness-{ts}-{n}", rule=f"readiness.{r.check_id}", kind="readiness",
                severity="HIGH" if r.status == FAIL else "MEDIUM", response="alert_oncall",
                message=f"{r.status}  {r.check_id}  {r.criterion}  {r.message}", ts=ts + n, group=r.check_id,
                records=[], details={"remedy": r.remedy, "criterion": r.criterion},
                description=f"soc2ai check: {r.check_id}"))
        monitor.flush(timeout)
    finally:
        monitor.close(timeout=0.5)
    stats = monitor.dispatcher.stats() if monitor.dispatcher else {}
    return len(bad), sum(int(s["pending"]) for s in stats.values())


def run(config: Config, *, now: datetime | None = None, sinks: list[Any] | None = None,
        send: bool = False) -> Report:
    """Checks, ledger record, optional notification: what ``soc2ai check`` does."""
    moment = now or utcnow()
    results = run_checks(config, now=moment, sinks=sinks)
    record_id = record_run(config, results)
    sent = undelivered = 0
    if send:
        sent, undelivered = notify(config, results, now=moment, sinks=sinks)
    return Report(results=results, ran_at=moment, record_id=record_id, notified=sent, undelivered=undelivered)
