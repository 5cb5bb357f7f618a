"""`soc2ai evidence export`: the period's ledger segment, complete and checkable with only the public key by
the auditor's own script (``auditor/verify_proof.py --evidence``), and any tampering with it caught."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ledger_helpers import AUDITOR_SCRIPT, load_auditor
from soc2ai.cli import _register, app
from soc2ai.config import load_config
from soc2ai.ledger import AuditLog
from soc2ai.ledger.records import AccessRecord

_register()
runner = CliRunner()
SCRIPT = AUDITOR_SCRIPT
V = load_auditor()


def _us(day: str, hour: int = 12) -> int:
    return int(datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00").timestamp() * 1_000_000)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A `soc2ai init` project whose ledger holds records from 30 Oct to 2 Dec (a sealed batch per day, and one
    batch straddling the end of 30 Nov), the bodies of everything before 2 Nov pruned by retention."""
    root = tmp_path_factory.mktemp("evidence") / "p"
    assert runner.invoke(app, ["init", str(root), "--name", "p"]).exit_code == 0
    cfg = load_config(root / "soc2ai.toml")
    now = [0]
    days = {"2026-10-30": 3, "2026-10-31": 2, "2026-11-01": 4, "2026-11-02": 5, "2026-11-15": 3,
            "2026-11-30": 2, "2026-12-02": 3}
    with AuditLog.open(cfg, clock=lambda: now[0]) as log:
        for day, n in days.items():
            for i in range(n):
                now[0] = _us(day) + i
                log.log_inference(user_id=f"user-{i % 2}", model_id="gpt-x", prompt=f"{day} {i}", response="ok",
                                  flagged=i == 1)
            log.append(AccessRecord(action="key.create", decision="allow", ts=_us(day, 13)))
            if day == "2026-11-30":  # one batch from 23:59:59 on 30 Nov to 00:00:01 on 1 Dec
                for ts in (_us("2026-12-01", 0) - 1_000_000, _us("2026-12-01", 0) + 1_000_000):
                    now[0] = ts
                    log.log_inference(user_id="user-9", model_id="gpt-x", prompt="late", response="ok")
            log.flush()
        pruned = log.prune(_us("2026-11-02", 0), ["inference"])
    keys = root / ".soc2ai" / "keys"
    pub = root.parent / "signing.pub"  # the auditor's own copy, handed over out of band
    shutil.copyfile(keys / "signing.pub", pub)
    return {"root": root, "cfg": root / "soc2ai.toml", "pub": pub, "pruned": pruned,
            "keys": [V.parse_key(pub.read_text())]}


def _export(project: dict[str, Any], out: Path, since: str = "2026-11-01", until: str = "2026-11-30") -> Any:
    return runner.invoke(app, ["evidence", "export", "--since", since, "--until", until, "-o", str(out),
                               "--no-readiness", "-c", str(project["cfg"]), "--json"])


@pytest.fixture
def bundle(project: dict[str, Any], tmp_path: Path) -> Path:
    out = tmp_path / "ev"
    result = _export(project, out)
    assert result.exit_code == 0, result.output
    return out


def test_export_is_the_whole_period_and_the_auditor_script_verifies_it(project: dict[str, Any], bundle: Path) -> None:
    """The segment runs from the checkpoint sealed before 1 Nov to the first one sealed after 30 Nov: every
    November record (pruned ones by their hash), including the one in the batch that straddles midnight,
    whose December record is hashed but not listed; the populations hold November's records only."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    led = manifest["ledger"]
    # `init`'s own record, then 30+31 Oct: 3+1 and 2+1 records; November: 4+1, 5+1, 3+1, 2+1 + 2 straddling.
    assert (led["start_size"], led["end_size"]) == (8, 8 + 20)
    assert (bundle / "ledger" / "checkpoint-start.txt").exists() and len(json.loads(
        (bundle / "ledger" / "frontier.json").read_text())) == bin(8).count("1")
    assert led["pruned"] == 4 and project["pruned"] >= 4  # 1 Nov's inference bodies: only their hashes
    assert manifest["populations"]["inference"]["rows"] == 15 and manifest["populations"]["access"]["rows"] == 4
    with (bundle / "populations" / "inference.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    # 1 Nov's records are listed too, marked pruned: their bodies are gone, their place in the log is not.
    assert {r["ts_utc"][:10] for r in rows if r["pruned"] == "true"} == {"2026-11-01"}
    assert {r["ts_utc"][:10] for r in rows if r["pruned"] == "false"} == {"2026-11-02", "2026-11-15", "2026-11-30"}
    assert sum(r["flagged"] == "true" for r in rows) == 3
    out = V.verify_evidence(bundle, project["keys"])
    assert out.startswith("OK evidence:") and "records 8..27 complete under two signed checkpoints" in out
    # The registers as they stand, and the control matrix pointing at the files that are there.
    assert json.loads((bundle / "vendors.json").read_text())["vendors"]
    assert json.loads((bundle / "incidents.json").read_text()) == []
    with (bundle / "controls.csv").open() as fh:
        matrix = {r["criterion"]: r["evidence"].split("; ") for r in csv.DictReader(fh)}
    assert matrix["CC9.2"] == ["vendors.json"] and "populations/access.csv" in matrix["CC6.1-CC6.3"]
    assert all((bundle / f).exists() for files in matrix.values() for f in files)
    assert "CC4.1" not in matrix  # exported with --no-readiness and no readiness record in the period


def test_the_auditor_cli_and_sha256sums(project: dict[str, Any], bundle: Path) -> None:
    import subprocess
    import sys

    ok = subprocess.run([sys.executable, str(SCRIPT), "--evidence", str(bundle), "--pubkey", str(project["pub"])],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("OK evidence"), ok.stderr
    sums = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=bundle, capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    (bundle / "populations" / "access.csv").write_text("idx,id\n")
    bad = subprocess.run([sys.executable, str(SCRIPT), "--evidence", str(bundle), "--pubkey", str(project["pub"])],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "access.csv does not match its SHA-256" in bad.stderr


def _reseal(d: Path) -> None:
    """What a forger would do after editing: recompute SHA256SUMS (it is not signed)."""
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(d).as_posix()}"
             for p in sorted(d.rglob("*")) if p.is_file() and p.name != "SHA256SUMS"]
    (d / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def _edit_record(d: Path) -> None:
    path = d / "ledger" / "records.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    i = next(n for n, line in enumerate(lines) if b'"flagged":true' in line)
    lines[i] = lines[i].replace(b'"flagged":true', b'"flagged":false')
    path.write_bytes(b"".join(lines))


def _drop_record(d: Path) -> None:
    path = d / "ledger" / "records.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3] + lines[4:]))


def _drop_row(d: Path) -> None:
    path = d / "populations" / "inference.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2] + lines[3:]))


def _forge_row(d: Path) -> None:
    path = d / "populations" / "access.csv"
    lines = path.read_text().splitlines(keepends=True)
    head, first = lines[0], lines[1].split(",")
    first[1] = "0" * 32
    path.write_text(head + ",".join(first) + "".join(lines[2:]))


def _drop_start(d: Path) -> None:
    (d / "ledger" / "checkpoint-start.txt").unlink()


def _trim_frontier(d: Path) -> None:
    f = d / "ledger" / "frontier.json"
    f.write_text(json.dumps(json.loads(f.read_text())[1:]))


def _unprune(d: Path) -> None:
    """Claim a pruned record's hash for another value."""
    path = d / "ledger" / "pruned.csv"
    lines = path.read_text().splitlines(keepends=True)
    idx, h, *rest = lines[1].strip().split(",")
    lines[1] = ",".join([idx, "0" * len(h), *rest]) + "\n"
    path.write_text("".join(lines))


@pytest.mark.parametrize(("tamper", "reason"), [
    (_edit_record, "do not lead to the end checkpoint's signed root"),
    (_drop_record, "does not hold exactly the records"),
    (_drop_row, "leave out records of the period"),
    (_forge_row, "is not that record of the segment"),
    (_drop_start, "frontier"),
    (_trim_frontier, "the frontier has"),
    (_unprune, "do not lead to the end checkpoint's signed root"),
], ids=["record-edited", "record-dropped", "row-dropped", "row-forged", "start-dropped", "frontier-trimmed",
        "pruned-hash-changed"])
def test_tampering_is_caught_even_with_sums_recomputed(project: dict[str, Any], bundle: Path, tamper: Any,
                                                       reason: str) -> None:
    tamper(bundle)
    _reseal(bundle)
    with pytest.raises(V.Failed, match=reason):
        V.verify_evidence(bundle, project["keys"])


def test_a_bundle_needs_the_auditors_key(project: dict[str, Any], bundle: Path, tmp_path: Path) -> None:
    from soc2ai.ledger.keys import generate_keys

    other = generate_keys(tmp_path / "other", "test")
    with pytest.raises(V.Failed, match="not signed by any of the given keys"):
        V.verify_evidence(bundle, [V.parse_key(other.encode())])


@pytest.mark.parametrize(("args", "message"), [
    (("2026-11-30", "2026-11-01"), "is before --since"),
    (("2025-01-01", "2025-01-31"), "no signed checkpoint"),
])
def test_a_period_that_cannot_be_exported_is_a_usage_error(project: dict[str, Any], tmp_path: Path,
                                                           args: tuple[str, str], message: str) -> None:
    result = _export(project, tmp_path / "ev", *args)
    assert result.exit_code == 2 and message in result.output.replace("\n", " ")


def test_export_refuses_a_directory_with_files(project: dict[str, Any], bundle: Path) -> None:
    result = _export(project, bundle)
    assert result.exit_code == 2 and "not empty" in result.output


def test_the_period_ending_today_includes_the_readiness_run(project: dict[str, Any], tmp_path: Path) -> None:
    """Without --no-readiness the checks run first; their results and their own ledger record are in the
    bundle, and it still verifies."""
    today = datetime.now(UTC).date().isoformat()
    out = tmp_path / "ev"
    result = runner.invoke(app, ["evidence", "export", "--since", "2026-11-01", "--until", today, "-o", str(out),
                                 "-c", str(project["cfg"])])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    readiness = json.loads((out / "readiness.json").read_text())
    assert manifest["readiness"]["OK"] + manifest["readiness"]["WARN"] + manifest["readiness"]["FAIL"] == len(
        readiness["results"])
    assert manifest["populations"]["readiness"]["rows"] >= 1
    assert V.verify_evidence(out, project["keys"]).startswith("OK evidence")


def test_export_of_an_edited_store_says_so_and_does_not_verify(project: dict[str, Any], tmp_path: Path) -> None:
    """Edited in the database after sealing: the export names the record in its notes (exit 0, the bundle is
    what the store holds) and the auditor's check fails on the signed root."""
    import sqlite3

    copy = tmp_path / "p"
    shutil.copytree(project["root"], copy)
    db = sqlite3.connect(copy / ".soc2ai" / "audit.db")
    db.execute("UPDATE ledger_leaves SET body = replace(body, '\"flagged\":true', '\"flagged\":false') "
               "WHERE idx = (SELECT MIN(idx) FROM ledger_leaves WHERE CAST(body AS TEXT) LIKE '%\"flagged\":true%' AND idx >= 8)")
    db.commit()
    db.close()
    result = runner.invoke(app, ["evidence", "export", "--since", "2026-11-01", "--until", "2026-11-30",
                                 "-o", str(tmp_path / "ev"), "--no-readiness", "-c", str(copy / "soc2ai.toml")])
    assert result.exit_code == 0, result.output
    assert "does not match its leaf hash" in result.output.replace("\n", " ")
    with pytest.raises(V.Failed, match="signed root"):
        V.verify_evidence(tmp_path / "ev", project["keys"])


def test_report_summarises_the_bundle_and_escapes_register_text(project: dict[str, Any], tmp_path: Path) -> None:
    """report.html names the segment and the controls, lists the period's incidents, and shows text from
    the registers as text: an incident titled with markup cannot script the auditor's browser."""
    copy = tmp_path / "p"
    shutil.copytree(project["root"], copy)
    made = runner.invoke(app, ["incidents", "new", "--title", "<script>alert(1)</script> leak", "--severity",
                               "high", "--description", "d", "--detected-at", "2026-11-10T09:00:00+00:00",
                               "-c", str(copy / "soc2ai.toml")])
    assert made.exit_code == 0, made.output
    out = tmp_path / "ev"
    result = runner.invoke(app, ["evidence", "export", "--since", "2026-11-01", "--until", "2026-11-30",
                                 "-o", str(out), "--no-readiness", "-c", str(copy / "soc2ai.toml")])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    # The incident's own ledger record (written now, after the fake-dated ones) extends the segment.
    assert re.search(r"<th>records</th><td>8 to \d+ \(", html) and "CC9.2" in html and "--evidence" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; leak" in html and "<script>alert" not in html
    assert json.loads((out / "manifest.json").read_text())["report"] == "report.html"
    assert V.verify_evidence(out, project["keys"]).startswith("OK evidence")  # report.html is in SHA256SUMS
