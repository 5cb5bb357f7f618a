"""`soc2ai check` on the demo: all OK when compliant; breaking one item fails exactly that check."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from _readiness_project import NOW, clone, sink_toml

from soc2ai.config import Config
from soc2ai.governance.incidents import IncidentRegister
from soc2ai.readiness.runner import run_checks
from soc2ai.testing.receivers import HttpReceiver
from soc2ai.testing.server import free_port

LATER = NOW + timedelta(seconds=30)


def not_ok(config: Config, **kw: object) -> dict[str, str]:
    return {r.check_id: r.status for r in run_checks(config, now=kw.pop("now", LATER), **kw)  # type: ignore[arg-type]
            if r.status != "OK"}


def test_compliant_demo_is_all_ok(template: Path, tmp_path: Path, receiver: HttpReceiver) -> None:
    """The compliant setup gives zero warnings, each check names its criterion, and the sink got a probe."""
    config = clone(template, tmp_path / "p", extra_toml=sink_toml(receiver.url))
    results = run_checks(config, now=LATER)
    assert [r for r in results if r.status != "OK"] == []
    ids = {r.check_id for r in results}
    assert {"logs.flowing", "ledger.verify", "ledger.spool", "keys.files", "vendors.register", "prompts.review",
            "prompts.changes", "models.register", "retention.inference", "retention.restricted", "alerts.rules",
            "alerts.sink.oncall", "incidents.register"} <= ids
    assert all(r.criterion for r in results)
    assert receiver.wait(1)[0]["rule"] == "soc2ai.readiness.probe"


def _old_logs(root: Path, config: Config) -> dict[str, object]:
    return {"now": NOW + timedelta(minutes=6)}


def _first_inference(root: Path) -> int:
    with sqlite3.connect(root / ".soc2ai" / "audit.db") as db:
        return int(db.execute("SELECT MIN(idx) FROM ledger_leaves WHERE kind = 'inference'").fetchone()[0])


def _tamper_ledger(root: Path, config: Config) -> dict[str, object]:
    idx = _first_inference(root)
    with sqlite3.connect(root / ".soc2ai" / "audit.db") as db:
        db.execute("UPDATE ledger_leaves SET body = replace(body, 'gpt-4o-mini', 'gpt-4o-maxi') WHERE idx = ?", (idx,))
    return {}


def _spool(root: Path, config: Config) -> dict[str, object]:
    spool = next((root / ".soc2ai" / "spool").iterdir())
    (spool / "000001.spool").write_bytes(b"x" * 64)
    return {}


def _corrupt_spool(root: Path, config: Config) -> dict[str, object]:
    # A batch that failed replay is kept aside as *.corrupt: acknowledged records missing from the store.
    spool = next((root / ".soc2ai" / "spool").iterdir())
    (spool / "000001.corrupt").write_bytes(b"x" * 64)
    return {}


def _key_mode(root: Path, config: Config) -> dict[str, object]:
    os.chmod(root / ".soc2ai" / "keys" / "master.key", 0o644)
    return {}


def _no_vendors(root: Path, config: Config) -> dict[str, object]:
    (root / "registers" / "vendors.yaml").unlink()
    return {}


def _unreviewed_prompt(root: Path, config: Config) -> dict[str, object]:
    import subprocess

    tpl = next((root / "prompts").rglob("v1.txt"))
    tpl.write_text(tpl.read_text() + "\nPlease be brief.\n")  # edited in place, pushed straight to main
    for args in (["add", "-A", "prompts"], ["-c", "user.name=alice", "-c", "user.email=a@example.com", "commit",
                                            "-q", "-m", "tweak prompt"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    return {}


def _no_models(root: Path, config: Config) -> dict[str, object]:
    (root / "registers" / "models.yaml").unlink()
    return {}


def _overdue_incident(root: Path, config: Config) -> dict[str, object]:
    IncidentRegister(root / "registers" / "incidents").open(
        title="leak", severity="high", source="test", description="d", detected_at=NOW - timedelta(days=4))
    return {}


def _append_toml(text: str) -> Callable[[Path, Config], dict[str, object]]:
    def breaker(root: Path, config: Config) -> dict[str, object]:
        with (root / "soc2ai.toml").open("a") as fh:
            fh.write("\n" + text)
        return {}
    return breaker


def _short_ledger_retention(root: Path, config: Config) -> dict[str, object]:
    path = root / "soc2ai.toml"
    path.write_text(path.read_text().replace("retention_days = 365", "retention_days = 30"))
    return {}


def _sink_down(root: Path, config: Config) -> dict[str, object]:
    path = root / "soc2ai.toml"
    path.write_text(path.read_text().replace(str(config.monitor.sinks[0].url), f"http://127.0.0.1:{free_port()}/x"))
    return {}


BREAKS: list[tuple[str, Callable[[Path, Config], dict[str, object]], set[str]]] = [
    ("logs", _old_logs, {"logs.flowing"}),
    ("ledger", _tamper_ledger, {"ledger.verify"}),
    ("spool", _spool, {"ledger.spool"}),
    ("spool-corrupt", _corrupt_spool, {"ledger.spool"}),
    ("keys", _key_mode, {"keys.files"}),
    ("vendors", _no_vendors, {"vendors.register"}),
    ("prompts", _unreviewed_prompt, {"prompts.review"}),
    ("models", _no_models, {"models.register"}),
    ("retention", _append_toml("[data.retention.label_days]\npublic = 1095\ninternal = 730\n"
                               "confidential = 365\nrestricted = 180\n"), {"retention.restricted"}),
    ("retention-category", _append_toml("[data.retention.category_days]\nfinancial = 30\nhealth = 365\n"),
     {"retention.restricted"}),
    ("screening-media", _append_toml('[scan.policy.pre]\nMEDIA_AUDIO = "allow"\n'), {"screening.media_audio"}),
    ("retention-ledger", _short_ledger_retention, {"retention.inference"}),
    ("alert-rules", _append_toml('[[monitor.rules]]\nname = "pii_in_output"\nkind = "detector"\n'
                                 'severity = "HIGH"\nresponse = "redact_and_alert"\nenabled = false\n'),
     {"alerts.rules"}),
    ("sinks", _sink_down, {"alerts.sink.oncall"}),
    ("incidents", _overdue_incident, {"incidents.sla"}),
]


@pytest.mark.parametrize(("name", "breaker", "expected"), BREAKS, ids=[b[0] for b in BREAKS])
def test_breaking_one_item_fails_exactly_its_check(
        template: Path, tmp_path: Path, receiver: HttpReceiver, name: str,
        breaker: Callable[[Path, Config], dict[str, object]], expected: set[str]) -> None:
    """Each item broken alone turns exactly its own check non-OK."""
    from soc2ai.config import load_config

    root = tmp_path / "p"
    config = clone(template, root, extra_toml=sink_toml(receiver.url))
    kw = breaker(root, config)
    got = not_ok(load_config(root / "soc2ai.toml"), **kw)
    assert set(got) == expected, got


def test_tampered_ledger_names_the_index(template: Path, tmp_path: Path, receiver: HttpReceiver) -> None:
    """A ledger failing verification is red, and the message names the bad index."""
    root = tmp_path / "p"
    config = clone(template, root, extra_toml=sink_toml(receiver.url))
    _tamper_ledger(root, config)
    line = next(r for r in run_checks(config, now=LATER) if r.check_id == "ledger.verify")
    assert line.status == "FAIL" and f"index {_first_inference(root)}" in line.message and line.remedy


def test_ledger_replaced_since_last_run_is_inconsistent(template: Path, tmp_path: Path,
                                                        receiver: HttpReceiver) -> None:
    """The checkpoint saved by one run must be extended by the next: a swapped store fails."""
    import shutil

    from soc2ai.config import load_config
    from soc2ai.ledger import AuditLog

    root = tmp_path / "p"
    config = clone(template, root, extra_toml=sink_toml(receiver.url))
    assert not_ok(config) == {}
    # The record is stamped at the checks' fixed time (a real-clock stamp would be in their future).
    with AuditLog.open(config, clock=lambda: int(NOW.timestamp() * 1_000_000) + 1) as log:  # grow, then roll back
        log.log_inference(user_id="u2", model_id="m", prompt="a", response="b")
    assert not_ok(config) == {}
    shutil.copy(template / ".soc2ai" / "audit.db", root / ".soc2ai" / "audit.db")
    got = not_ok(load_config(root / "soc2ai.toml"))
    assert set(got) == {"ledger.verify"}


def test_missing_public_key_names_the_keys_directory(template: Path, tmp_path: Path, receiver: HttpReceiver) -> None:
    """Without signing.pub the ledger lines FAIL naming the project's keys directory (the one to fix),
    not the temporary copy the check verifies from."""
    root = tmp_path / "p"
    config = clone(template, root, extra_toml=sink_toml(receiver.url))
    (root / ".soc2ai" / "keys" / "signing.pub").unlink()
    line = next(r for r in run_checks(config, now=LATER) if r.check_id == "ledger.verify")
    assert line.status == "FAIL" and str(root / ".soc2ai" / "keys") in line.message, line.message
    assert "soc2ai-check-" not in line.message


def test_check_outside_a_project_creates_no_ledger(tmp_path: Path) -> None:
    """`soc2ai check` where nothing is set up reports it and leaves no empty ledger behind (which would
    turn the next run's 'no ledger' into a misleading key error)."""
    from soc2ai.config import parse_config
    from soc2ai.readiness.runner import run

    config = parse_config("", root=tmp_path)
    first = run(config, now=LATER)
    assert first.record_id is None
    assert not (tmp_path / ".soc2ai" / "audit.db").exists()
    msg = next(r.message for r in first.results if r.check_id == "ledger.verify")
    again = next(r.message for r in run(config, now=LATER).results if r.check_id == "ledger.verify")
    assert again == msg and "no ledger" in msg
