"""``soc2ai scan`` end to end: exit codes, JSON output, redacted copy, receipt in a real SQLite ledger."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from soc2ai.cli import _register, app
from soc2ai.config import load_config
from soc2ai.ledger import AuditLog
from soc2ai.ledger.keys import generate_keys
from soc2ai.scan.receipt import find_receipt


def _project(tmp_path: Path) -> Path:
    cfg = tmp_path / "soc2ai.toml"
    cfg.write_text('[project]\nname = "t"\n[ledger]\nstore = "sqlite:///ledger.db"\nkeys_dir = "keys"\n'
                   'spool_dir = "spool"\n')
    generate_keys(tmp_path / "keys", "t")
    return cfg


def test_scan_fails_on_findings_and_writes_receipt(tmp_path: Path) -> None:
    """Findings exit 1; the JSON report and the ledger receipt carry hash, counts and pass/fail."""
    cfg = _project(tmp_path)
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "mail bob@example.com"}\n{broken\n{"text": "ok"}\n')
    _register()
    res = CliRunner().invoke(app, ["scan", str(data), "--json", "-c", str(cfg)])
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    assert out["counts"] == {"EMAIL_ADDRESS": 1} and out["errors"][0]["line"] == 2 and out["receipt"]
    config = load_config(cfg)
    body = find_receipt(config, out["dataset_hash"], passed_only=False)
    assert body is not None and body["passed"] is False and body["counts"] == {"EMAIL_ADDRESS": 1}
    assert find_receipt(config, out["dataset_hash"]) is None
    with AuditLog.open(config, read_only=True) as log:
        assert [e.body["kind"] for e in log.entries(kind="scan") if e.body] == ["scan"]


def test_redacted_copy_passes_and_no_receipt(tmp_path: Path) -> None:
    """The cleaned copy passes the gate (exit 0); --no-receipt writes nothing to the ledger."""
    cfg = _project(tmp_path)
    data = tmp_path / "d.csv"
    data.write_text("id,text\n1,call +1 415-555-2671\n2,fine\n")
    _register()
    runner = CliRunner()
    res = runner.invoke(app, ["scan", str(data), "--redact-to", str(tmp_path / "c.csv"), "--no-receipt",
                              "-q", "-c", str(cfg)])
    assert res.exit_code == 1, res.output
    res = runner.invoke(app, ["scan", str(tmp_path / "c.csv"), "--json", "--findings",
                              str(tmp_path / "f.jsonl"), "-c", str(cfg)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["passed"] is True and (tmp_path / "f.jsonl").read_text() == ""


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    """A missing file or a bad format is a usage error (exit 2)."""
    cfg = _project(tmp_path)
    _register()
    runner = CliRunner()
    assert runner.invoke(app, ["scan", str(tmp_path / "nope.jsonl"), "-c", str(cfg)]).exit_code == 2
    (tmp_path / "d.jsonl").write_text("{}\n")
    assert runner.invoke(app, ["scan", str(tmp_path / "d.jsonl"), "--format", "xml", "-c",
                               str(cfg)]).exit_code == 2


def test_unreadable_records_fail_the_gate_unless_allowed(tmp_path: Path) -> None:
    """A file of lines the gate cannot read exits 1 with a failing receipt; --allow-malformed passes it
    (the skipped lines are still reported, and the receipt says they were allowed)."""
    cfg = _project(tmp_path)
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "fine"}\n{"text": "cut off\n')
    _register()
    strict = CliRunner().invoke(app, ["scan", str(data), "--json", "-c", str(cfg)])
    assert strict.exit_code == 1, strict.output
    assert json.loads(strict.stdout)["passed"] is False and json.loads(strict.stdout)["error_count"] == 1
    lenient = CliRunner().invoke(app, ["scan", str(data), "--json", "--allow-malformed", "-c", str(cfg)])
    assert lenient.exit_code == 0, lenient.output
    out = json.loads(lenient.stdout)
    assert out["passed"] is True and out["errors"][0]["line"] == 2
    body = find_receipt(load_config(cfg), out["dataset_hash"])
    assert body is not None and body["attrs"]["allow_malformed"] is True


def test_findings_to_stdout_and_json_summary_conflict(tmp_path: Path) -> None:
    """``--findings -`` (JSONL) and ``--json`` (one JSON object) would share stdout and make it unparseable:
    a usage error; the findings to a file with the summary on stdout is fine."""
    cfg = _project(tmp_path)
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "mail bob@example.com"}\n')
    _register()
    runner = CliRunner()
    res = runner.invoke(app, ["scan", str(data), "--findings", "-", "--json", "--no-receipt", "-c", str(cfg)])
    assert res.exit_code == 2 and "both write to stdout" in res.stderr
    ok = runner.invoke(app, ["scan", str(data), "--findings", str(tmp_path / "f.jsonl"), "--json", "--no-receipt",
                             "-c", str(cfg)])
    assert ok.exit_code == 1 and json.loads(ok.stdout)["counts"] == {"EMAIL_ADDRESS": 1}
    assert json.loads((tmp_path / "f.jsonl").read_text().splitlines()[0])["findings"][0]["type"] == "EMAIL_ADDRESS"
