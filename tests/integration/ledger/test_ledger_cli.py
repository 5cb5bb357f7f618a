"""`soc2ai log ...` as an auditor uses it: exported checkpoints, offline proofs, rollback detection."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson

from ledger_helpers import env_without_config, fill, open_log, sqlite_url, write_config


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "soc2ai", "log", *args], capture_output=True, text=True,
                          cwd=cwd, env=env_without_config(), timeout=120, check=False)


def test_auditor_workflow_offline_proof_and_rollback(tmp_path: Path) -> None:
    """Proofs verify offline with the public key only; a rolled-back db fails `verify --against` (exit 1)."""
    url = sqlite_url(tmp_path)
    with open_log(url, tmp_path) as log:
        fill(log, 40, seed=12)
    cfg = write_config(url, tmp_path)
    db = tmp_path / "a.db"
    backup = tmp_path / "backup.db"
    shutil.copyfile(db, backup)

    with open_log(url, tmp_path) as log:
        fill(log, 25, seed=13)
    res = _cli("checkpoint", "--export", str(tmp_path / "cp.txt"), "--config", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "cp.txt").read_text().split("\n")[1] == "65"
    res = _cli("prove", "7", "-o", str(tmp_path / "p.json"), "--config", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stderr

    auditor = tmp_path / "auditor"  # no config, no database, no keys: only the public key and the proof
    auditor.mkdir()
    shutil.copyfile(tmp_path / "keys/signing.pub", auditor / "signing.pub")
    shutil.copyfile(tmp_path / "p.json", auditor / "p.json")
    res = _cli("verify-proof", "p.json", "--pubkey", "signing.pub", "--json", cwd=auditor)
    assert res.returncode == 0, res.stderr
    out = orjson.loads(res.stdout)
    assert out["ok"] and out["index"] == 7 and out["record"]["idx"] == 7
    bad = orjson.loads((auditor / "p.json").read_bytes())
    bad["index"] = 8
    (auditor / "bad.json").write_bytes(orjson.dumps(bad))
    res = _cli("verify-proof", "bad.json", "--pubkey", "signing.pub", cwd=auditor)
    assert res.returncode == 1, res

    res = _cli("verify", "--against", str(tmp_path / "cp.txt"), "--config", str(cfg), "--json", cwd=tmp_path)
    assert res.returncode == 0 and orjson.loads(res.stdout)["against"] == 65, res.stderr
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup, db)  # the database is rolled back to before the last 25 records
    res = _cli("verify", "--against", str(tmp_path / "cp.txt"), "--config", str(cfg), "--json", cwd=tmp_path)
    assert res.returncode == 1, res
    assert orjson.loads(res.stdout)["index"] == 40
    res = _cli("verify", "--against", str(tmp_path / "cp.txt"), "--config", str(cfg), cwd=tmp_path)
    assert res.returncode == 1 and "index 40" in res.stdout + res.stderr


def test_consistency_bundle_reports_signed_sizes_and_refuses_forged_fields(tmp_path: Path) -> None:
    """verify-proof reports the sizes the checkpoints sign; a bundle whose old_size or old_root copies
    disagree with its signed old checkpoint is refused (exit 1), not reported as verified."""
    url = sqlite_url(tmp_path)
    with open_log(url, tmp_path) as log:
        fill(log, 60, seed=14)
        old = [s for s, _ in log.store.checkpoints()][2]
        bundle = log.consistency(old).to_json()
    good = tmp_path / "good.json"
    good.write_bytes(orjson.dumps(bundle))
    res = _cli("verify-proof", str(good), "--pubkey", "keys/signing.pub", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert orjson.loads(res.stdout) == {"ok": True, "type": "consistency", "old_size": old, "new_size": 60}
    res = _cli("verify-proof", str(good), "--pubkey", "keys/signing.pub", cwd=tmp_path)
    assert res.returncode == 0 and f"size {old} is extended by size 60" in res.stdout, res
    for forged in ({"old_size": old + 30}, {"old_root": "AAAA"}, {"old_size": str(old)}):
        bad = tmp_path / "bad.json"
        bad.write_bytes(orjson.dumps({**bundle, **forged}))
        res = _cli("verify-proof", str(bad), "--pubkey", "keys/signing.pub", "--json", cwd=tmp_path)
        assert res.returncode == 1, (forged, res)
        assert "Traceback" not in res.stderr and str(old + 30) not in res.stdout, res
