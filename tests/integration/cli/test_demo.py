"""The README quick start: `soc2ai demo`, then tampering by hand is caught by `soc2ai log verify`."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from soc2ai.cli import _register, app

_register()
runner = CliRunner()


@pytest.fixture
def demo_dir(tmp_path: Path) -> Path:
    """A demo project with a small sealed ledger."""
    d = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--dir", str(d), "-n", "600", "--rate", "20000", "--json",
                                 "--no-gateway"])
    assert result.exit_code == 0, result.output
    return d


def test_demo_scenario_raises_the_seed_alerts_and_passes_readiness(tmp_path: Path) -> None:
    """Through the real gateway: injection blocked, PII redacted, the four seed alerts reach the webhook and
    syslog receivers, HIGH ones open incidents, and every readiness check is OK."""
    result = runner.invoke(app, ["demo", "--dir", str(tmp_path / "d"), "-n", "200", "--rate", "20000", "--json"])
    assert result.exit_code == 0, result.output
    sc = orjson.loads(result.output)["scenario"]
    assert sc["gateway"]["injection_status"] == 400 and sc["gateway"]["pii_redacted"] is True
    assert set(sc["gateway"]["statuses"]["outage"]) == {200}  # the fallback provider answered every call
    assert sc["alerts"] == ["pii_in_output", "prompt_injection", "provider_error_rate", "token_volume_spike"]
    assert sc["syslog_messages"] == 4
    assert sorted(i["source"].rsplit("/", 1)[-1] for i in sc["incidents"]) == ["pii_in_output", "prompt_injection"]
    assert [c for c in sc["check"] if c["status"] != "OK"] == []


def test_alerts_watch_after_the_demo_raises_nothing_new(tmp_path: Path) -> None:
    """The demo's watcher keeps the configured cursor: a later `alerts watch --once` continues where the demo
    stopped instead of raising the four seed alerts again and opening duplicate incidents."""
    d = tmp_path / "d"
    assert runner.invoke(app, ["demo", "--dir", str(d), "-n", "20", "--rate", "20000", "--json"]).exit_code == 0
    incidents = sorted(p.name for p in (d / "registers" / "incidents").glob("INC-*"))
    assert len(incidents) == 2
    result = runner.invoke(app, ["alerts", "watch", "--once", "--json", "-c", str(d / "soc2ai.toml")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (d / "registers" / "incidents").glob("INC-*")) == incidents, result.output
    assert orjson.loads(result.stdout)["alerts"] == 0  # stdout is the summary alone: no alert lines before it


def test_demo_writes_seals_and_verifies(demo_dir: Path) -> None:
    """The demo's summary reports every record durable under a verified signed checkpoint."""
    result = runner.invoke(app, ["log", "verify", "-c", str(demo_dir / "soc2ai.toml"), "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output)
    assert report["ok"] is True
    assert report["size"] >= 600
    assert report["kinds"]["inference"] == 600


def test_init_creates_private_key_files(demo_dir: Path) -> None:
    """Key files are created 0600 in a 0700 directory."""
    keys = demo_dir / ".soc2ai" / "keys"
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o700
    for name in ("signing.key", "master.key"):
        assert stat.S_IMODE(os.stat(keys / name).st_mode) == 0o600


def test_hand_edit_is_named_by_verify(demo_dir: Path) -> None:
    """Editing one stored record makes `log verify` exit 1 and name that index."""
    with sqlite3.connect(demo_dir / ".soc2ai" / "audit.db") as db:
        db.execute("UPDATE ledger_leaves SET body = replace(body, '\"flagged\":false', '\"flagged\":true') "
                   "WHERE idx = 42")
    result = runner.invoke(app, ["log", "verify", "-c", str(demo_dir / "soc2ai.toml"), "--json"])
    assert result.exit_code == 1
    out = orjson.loads(result.output)
    assert out["ok"] is False and out["index"] == 42


def test_exported_proof_verifies_offline_with_public_key_only(demo_dir: Path, tmp_path: Path) -> None:
    """An auditor checks an exported inclusion proof with only signing.pub (no database)."""
    cfg = str(demo_dir / "soc2ai.toml")
    proof = tmp_path / "proof.json"
    assert runner.invoke(app, ["log", "prove", "7", "-c", cfg, "--out", str(proof)]).exit_code == 0
    pub = tmp_path / "auditor.pub"
    pub.write_text((demo_dir / ".soc2ai" / "keys" / "signing.pub").read_text())
    result = runner.invoke(app, ["log", "verify-proof", str(proof), "--pubkey", str(pub), "--json"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["record"]["idx"] == 7
    bundle = orjson.loads(proof.read_bytes())
    bundle["index"] = 8
    proof.write_bytes(orjson.dumps(bundle))
    assert runner.invoke(app, ["log", "verify-proof", str(proof), "--pubkey", str(pub)]).exit_code == 1


def test_match_proves_content_and_rejects_other_content(demo_dir: Path, tmp_path: Path) -> None:
    """`log match` says MATCH only for the exact prompt the record processed."""
    from soc2ai.config import load_config
    from soc2ai.ledger import AuditLog

    cfg = demo_dir / "soc2ai.toml"
    with AuditLog.open(load_config(cfg)) as log:
        rid = log.log_inference(user_id="alice", model_id="m", prompt="exact prompt", response="exact answer")
        log.flush()
        idx = log.find(rid)
    assert idx is not None
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("exact prompt")
    bad.write_text("exact prompt!")
    ok = runner.invoke(app, ["log", "match", str(idx), "--prompt-file", str(good), "-c", str(cfg)])
    assert ok.exit_code == 0 and "MATCH" in ok.output
    ko = runner.invoke(app, ["log", "match", str(idx), "--prompt-file", str(bad), "-c", str(cfg)])
    assert ko.exit_code == 1 and "DIFFERENT" in ko.output


def test_bad_config_names_file_line_and_field(tmp_path: Path) -> None:
    """A config asking for SHA-1 is refused with file, line and field, exit code 2."""
    cfg = tmp_path / "soc2ai.toml"
    cfg.write_text('[project]\nname = "x"\n\n[ledger]\nhash_algorithm = "sha1"\n')
    result = runner.invoke(app, ["log", "stats", "-c", str(cfg)])
    assert result.exit_code == 2
    assert "soc2ai.toml:5" in result.output and "ledger.hash_algorithm" in result.output


def test_init_refuses_to_overwrite_a_project(demo_dir: Path) -> None:
    """A second `init` on a project exits 2 naming the file, and leaves config and keys untouched."""
    cfg = demo_dir / "soc2ai.toml"
    before = (cfg.read_bytes(), (demo_dir / ".soc2ai" / "keys" / "signing.key").read_bytes())
    result = runner.invoke(app, ["init", str(demo_dir)])
    assert result.exit_code == 2
    assert "soc2ai.toml" in result.output and "--force" in result.output
    assert (cfg.read_bytes(), (demo_dir / ".soc2ai" / "keys" / "signing.key").read_bytes()) == before


def test_bad_proof_files_are_clear_errors(demo_dir: Path, tmp_path: Path) -> None:
    """A missing proof file is a usage error (2); a file that is not a proof bundle fails verification (1)."""
    pub = str(demo_dir / ".soc2ai" / "keys" / "signing.pub")
    missing = runner.invoke(app, ["log", "verify-proof", str(tmp_path / "nope.json"), "--pubkey", pub])
    assert missing.exit_code == 2
    for junk in (b"not json", b"[1, 2]", b'{"type": "soc2ai.inclusion/v1"}'):
        f = tmp_path / "junk.json"
        f.write_bytes(junk)
        result = runner.invoke(app, ["log", "verify-proof", str(f), "--pubkey", pub])
        assert result.exit_code == 1, (junk, result.output)
        assert "FAIL" in result.output
