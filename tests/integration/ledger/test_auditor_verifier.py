"""The auditor's standalone verifier (``auditor/verify_proof.py``, written from RFC 9162 and the C2SP specs,
no soc2ai imports) accepts every proof soc2ai exports and rejects every tampered one: soc2ai's proofs are
checkable without trusting soc2ai's own verifier."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ledger_helpers import AUDITOR_SCRIPT, load_auditor, open_log, sqlite_url
from soc2ai.ledger.keys import rotate_signing_key

SCRIPT = AUDITOR_SCRIPT
V = load_auditor()


def test_the_verifier_shares_no_code_with_soc2ai() -> None:
    """Independent means independent: the script imports only the standard library and ``cryptography``."""
    imports = [line.split()[1].split(".")[0] for line in SCRIPT.read_text().splitlines()
               if line.startswith(("import ", "from "))]
    assert "soc2ai" not in imports and set(imports) <= set(sys.stdlib_module_names) | {"cryptography", "__future__"}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A log of 40 records with a signed checkpoint at every size, the signing key rotated at size 20;
    every inclusion proof (every index under every checkpoint) and every consistency proof as JSON."""
    base = tmp_path_factory.mktemp("auditor")
    url = sqlite_url(base)
    log = open_log(url, base)
    for i in range(20):
        log.log_inference(user_id=f"user-{i % 3}", model_id="gpt-x", prompt=f"prompt {i}", response=f"answer {i}")
        log.flush()
    log.close()
    rotate_signing_key(base / "keys", "test-2")
    log = open_log(url, base)
    for i in range(20, 40):
        log.log_inference(user_id=None, model_id="gpt-y", prompt=f"prompt {i}", response=f"answer {i}")
        log.flush()
    sizes = sorted({s for s, _ in log.store.checkpoints()})
    inclusion = [log.prove(i, s).to_json() for s in sizes for i in range(s)]
    consistency = [log.consistency(a, b).to_json() for a in sizes for b in sizes if a <= b]
    log.close()
    keys = [base / "keys" / "signing.pub", *sorted((base / "keys" / "trusted").glob("*.pub"))]
    return {"sizes": sizes, "inclusion": inclusion, "consistency": consistency, "keyfiles": keys,
            "keys": [V.parse_key(p.read_text()) for p in keys]}


def test_every_inclusion_and_consistency_proof_verifies(ledger: dict[str, Any]) -> None:
    assert ledger["sizes"] == list(range(1, 41))  # one checkpoint per flushed record
    assert len(ledger["inclusion"]) == 40 * 41 // 2 and len(ledger["consistency"]) == 40 * 41 // 2
    for b in ledger["inclusion"]:
        assert V.verify(b, ledger["keys"]).startswith(f"OK inclusion: index {b['index']} ")
    for b in ledger["consistency"]:
        assert V.verify(b, ledger["keys"]).startswith("OK consistency")


def test_checkpoints_of_a_retired_key_need_that_key(ledger: dict[str, Any]) -> None:
    """After rotation, proofs under old checkpoints verify with the retired key only; the current key alone
    does not vouch for them."""
    current = [V.parse_key(ledger["keyfiles"][0].read_text())]
    old_proof = next(b for b in ledger["inclusion"] if b["checkpoint"].split("\n")[1] == "5")
    with pytest.raises(V.Failed, match="not signed by any of the given keys"):
        V.verify(old_proof, current)
    new_proof = next(b for b in ledger["inclusion"] if b["checkpoint"].split("\n")[1] == "35")
    assert V.verify(new_proof, current).startswith("OK")


def _flip(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _tampered(ledger: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    inc = next(b for b in ledger["inclusion"] if b["index"] == 13 and b["checkpoint"].split("\n")[1] == "37")
    con = next(b for b in ledger["consistency"] if b["old_checkpoint"].split("\n")[1] == "11"
               and b["checkpoint"].split("\n")[1] == "37")
    leaf = json.loads(base64.b64decode(inc["leaf"]))
    body, sep, sigs = inc["checkpoint"].partition("\n\n")
    lines = body.split("\n")
    return [
        ("record flipped", {**inc, "leaf": _flip(inc["leaf"])}),
        ("record edited", {**inc, "leaf": base64.b64encode(
            json.dumps({**leaf, "flagged": not leaf["flagged"]}, separators=(",", ":")).encode()).decode()}),
        ("other index", {**inc, "index": 14}),
        ("path entry flipped", {**inc, "path": [inc["path"][0], _flip(inc["path"][1]), *inc["path"][2:]]}),
        ("path entry dropped", {**inc, "path": inc["path"][:-1]}),
        ("path entry added", {**inc, "path": [*inc["path"], inc["path"][0]]}),
        ("checkpoint size changed", {**inc, "checkpoint": "\n".join([lines[0], "38", *lines[2:]]) + sep + sigs}),
        ("checkpoint root changed", {**inc, "checkpoint": "\n".join([*lines[:2], _flip(lines[2]), *lines[3:]])
                                     + sep + sigs}),
        ("signature stripped", {**inc, "checkpoint": body + sep}),
        ("consistency path flipped", {**con, "path": [_flip(con["path"][0]), *con["path"][1:]]}),
        ("consistency path truncated", {**con, "path": con["path"][:-1]}),
        ("consistency old checkpoint swapped", {**con, "old_checkpoint": inc["checkpoint"]}),
    ]


def test_every_tampered_bundle_fails(ledger: dict[str, Any]) -> None:
    for what, bundle in _tampered(ledger):
        with pytest.raises(V.Failed):
            V.verify(bundle, ledger["keys"])
            pytest.fail(f"{what}: verified")


def test_pruned_record_verifies_by_its_hash(ledger: dict[str, Any]) -> None:
    """A record whose body retention pruned still proves its place in the log by its leaf hash."""
    inc = next(b for b in ledger["inclusion"] if b["index"] == 3 and b["checkpoint"].split("\n")[1] == "40")
    assert "body was pruned" in V.verify({**inc, "leaf": None}, ledger["keys"])
    with pytest.raises(V.Failed):
        V.verify({**inc, "leaf": None, "leaf_hash": _flip(inc["leaf_hash"])}, ledger["keys"])


def test_cli_exit_status_and_message(ledger: dict[str, Any], tmp_path: Path) -> None:
    """The script as an auditor runs it: exit 0 and an OK line with the record's hashes, exit 1 and FAIL."""
    inc = next(b for b in ledger["inclusion"] if b["index"] == 25 and b["checkpoint"].split("\n")[1] == "40")
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(inc))
    bad.write_text(json.dumps({**inc, "leaf": _flip(inc["leaf"])}))
    keys = [a for p in ledger["keyfiles"] for a in ("--pubkey", str(p))]
    ok = subprocess.run([sys.executable, str(SCRIPT), str(good), *keys], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("OK inclusion: index 25 ") and '"model": "gpt-y"' in ok.stdout
    fail = subprocess.run([sys.executable, str(SCRIPT), str(bad), *keys], capture_output=True, text=True)
    assert fail.returncode == 1 and fail.stderr.startswith(f"FAIL {bad}") and "Traceback" not in fail.stderr


def test_checkpoint_before_picks_the_last_batch_sealed_before_a_time(store_url: str, tmp_path: Path) -> None:
    """The evidence export's bracket: the largest checkpoint whose last record is older than the time, on
    SQLite and PostgreSQL alike; None before the first record."""
    now = [1_000]
    log = open_log(store_url, tmp_path, clock=lambda: now[0])
    try:
        for batch, ts in enumerate((1_000, 2_000, 3_000)):
            for i in range(batch + 1):
                now[0] = ts + i
                log.log_inference(user_id=None, model_id="m", prompt="p", response="r")
            log.flush()
        assert log.store.checkpoint_before(1_000) is None and log.store.checkpoint_after(3_002) is None
        assert [log.store.checkpoint_after(t)[0] for t in (999, 1_000, 2_000, 2_001)] == [1, 3, 3, 6]  # type: ignore[index]
        assert [log.store.checkpoint_before(t)[0] for t in (1_001, 2_001, 2_002, 3_003)] == [1, 1, 3, 6]  # type: ignore[index]
    finally:
        log.close()


def test_evidence_export_verifies_on_either_store(store_url: str, tmp_path: Path) -> None:
    """The evidence bundle of a PostgreSQL ledger is checked by the auditor's script like a SQLite one."""
    from datetime import date

    from ledger_helpers import config_for
    from soc2ai.evidence import export_evidence

    day = 1_790_000_000_000_000  # 2026-09-21 (UTC), in µs
    now = [day - 86_400_000_000]
    log = open_log(store_url, tmp_path, clock=lambda: now[0])
    try:
        for d in range(3):  # the day before, the day, the day after: a batch each
            for i in range(5):
                now[0] = day + (d - 1) * 86_400_000_000 + i
                log.log_inference(user_id=f"u{i}", model_id="m", prompt=f"p{d}{i}", response="r")
            log.flush()
    finally:
        log.close()
    bundle = export_evidence(config_for(store_url, tmp_path), date(2026, 9, 21), date(2026, 9, 21),
                             tmp_path / "ev", readiness=False)
    # From the checkpoint before the day to the first one after it (the next day's batch: hashed, not listed).
    assert (bundle.manifest["ledger"]["start_size"], bundle.manifest["ledger"]["end_size"]) == (5, 15)
    assert bundle.counts == {"inference": 5} and any("not a git repository" in n for n in bundle.manifest["notes"])
    out = V.verify_evidence(tmp_path / "ev", [V.parse_key((tmp_path / "keys" / "signing.pub").read_text())])
    assert "records 5..14 complete under two signed checkpoints" in out and "5 population rows" in out
