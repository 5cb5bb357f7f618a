"""The ledger's user-visible behaviour, one suite run against both SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import psycopg
import pytest

from ledger_helpers import Raw, clone_store, config_for, drop_clone, fill, open_log
from soc2ai.errors import KeyMaterialError, RollbackError, VerificationError
from soc2ai.ledger import AuditLog, verify_consistency_bundle, verify_inclusion_bundle
from soc2ai.ledger.keys import rotate_signing_key
from soc2ai.ledger.records import DsarRecord, RetentionRecord, ScanRecord


def test_records_round_trip_in_order(store_url: str, tmp_path: Path) -> None:
    """Records come back in append order with their ids, kinds, hashed content and no raw user id."""
    with open_log(store_url, tmp_path) as log:
        a = log.log_inference(user_id="alice@example.com", model_id="m", prompt="hi", response="yo",
                              latency_us=1200, input_tokens=3, output_tokens=4, temperature_str="x",
                              params={"temperature": 0.7, "seed": 1}, finish_reason="stop", model_served="m-1")
        b = log.append(ScanRecord(dataset_hash="d", path="p", passed=True, records_scanned=9, user_id="bob"))
        assert log.flush() == 2
        es = list(log.entries())
        assert [(e.idx, e.id, e.kind) for e in es] == [(0, a, "inference"), (1, b, "scan")]
        body = es[0].body
        assert body is not None and body["params"] == {"temperature": "0.7", "seed": 1}
        assert body["finish_reason"] == "stop" and body["attrs"] == {"temperature_str": "x"}
        assert body["input_hash"] != "hi" and len(body["input_hash"]) == 64
        raw = orjson.dumps([e.body for e in es])
        assert b"alice" not in raw and b"bob" not in raw
        assert log.find(b) == 1 and log.find("nope") is None
        assert log.match(0, prompt="hi", response="yo").ok
        m = log.match(0, prompt="hi!", response="yo")
        assert (m.prompt, m.response, m.ok) == (False, True, False)
        assert log.verify().size == 2
        assert log.stats()["caller_errors"] == 0


def test_log_inference_never_raises(store_url: str, tmp_path: Path) -> None:
    """Bad caller input is counted in stats, not raised, and the next record is still logged."""
    with open_log(store_url, tmp_path) as log:
        log.log_inference(user_id="u", model_id="m", prompt="p", response="r", **{"é": 1})
        log.log_inference(user_id="u", model_id="m", prompt="p", response="r", latency_us="not-int")  # type: ignore[arg-type]
        rid = log.log_inference(user_id="u", model_id="m", prompt="p", response="r")
        log.flush()
        st = log.stats()
        assert st["caller_errors"] == 2 and st["last_caller_error"]
        assert log.find(rid) == 0 and log.size() == 1


def test_a_record_json_cannot_hold_is_counted_not_wedged(store_url: str, tmp_path: Path) -> None:
    """A value that cannot be encoded (a lone surrogate) is rejected by the sealer and counted as a caller
    error; the records around it are sealed and the log verifies."""
    with open_log(store_url, tmp_path) as log:
        a = log.log_inference(user_id="u", model_id="m", prompt="p", response="r")
        log.log_inference(user_id="u", model_id="bad\ud800", prompt="p", response="r")
        b = log.log_inference(user_id="u", model_id="m", prompt="p", response="r")
        log.flush()
        st = log.stats()
        assert st["records_rejected"] == 1 and st["caller_errors"] == 1 and "not encodable" in st["last_error"]
        assert [e.id for e in log.entries()] == [a, b]
        assert log.verify().size == 2


def test_reopen_resumes_and_verifies(store_url: str, tmp_path: Path) -> None:
    """Closing and reopening continues the same log; every checkpoint stays consistent."""
    with open_log(store_url, tmp_path) as log:
        fill(log, 40, seed=2)
        first = log.checkpoint()
    with open_log(store_url, tmp_path) as log:
        fill(log, 30, seed=3)
        assert log.size() == 70
        rep = log.verify(against=first)
        assert rep.size == 70 and rep.against == 40
        proof = log.consistency(40)
        verify_consistency_bundle(orjson.dumps(proof.to_json()), [(tmp_path / "keys/signing.pub").read_text()])


def test_offline_inclusion_proof_with_public_key_only(store_url: str, tmp_path: Path) -> None:
    """An exported inclusion proof verifies with only the public key text; any change to it fails."""
    with open_log(store_url, tmp_path) as log:
        ids = fill(log, 50, seed=4)
        bundles = {i: orjson.dumps(log.prove(i).to_json()) for i in (0, 17, 49)}
    pub = (tmp_path / "keys/signing.pub").read_text()
    shutil.rmtree(tmp_path / "keys")  # nothing but the public key text and the bundle from here on
    for i, text in bundles.items():
        rec = verify_inclusion_bundle(text.decode(), [pub])
        assert rec["idx"] == i and rec["id"] == ids[i]
    data = orjson.loads(bundles[17])
    bad_index = {**data, "index": 18}
    bad_leaf = {**data, "leaf": orjson.loads(bundles[0])["leaf"]}
    bad_path = {**data, "path": [data["path"][0][:-4] + "AAA=", *data["path"][1:]]}
    other_pub = "test+00000000+" + pub.split("+", 2)[2]
    for bad in (bad_index, bad_leaf, bad_path, {**data, "type": "x"}, {**data, "path": "zz"}):
        with pytest.raises(VerificationError):
            verify_inclusion_bundle(bad, [pub])
    with pytest.raises(KeyMaterialError):  # a key whose stated id does not match is refused outright
        verify_inclusion_bundle(data, [other_pub])


def test_key_rotation_on_a_live_log(store_url: str, tmp_path: Path) -> None:
    """After rotating the signing key, new checkpoints use the new key and the whole log still verifies."""
    with open_log(store_url, tmp_path) as log:
        fill(log, 20, seed=5)
    rotate_signing_key(tmp_path / "keys", "test2")
    with open_log(store_url, tmp_path) as log:
        fill(log, 20, seed=6)
        assert "\u2014 test2 " in log.checkpoint().note
        assert log.verify().size == 40


def test_forget_shreds_subject_and_logs_receipt(store_url: str, tmp_path: Path) -> None:
    """forget destroys the subject's keys (no more matching), verify passes, a dsar receipt is appended."""
    with open_log(store_url, tmp_path) as log:
        log.log_inference(user_id="alice", model_id="m", prompt="secret", response="r")
        log.log_inference(user_id="bob", model_id="m", prompt="other", response="r")
        log.log_inference(user_id="alice", model_id="m", prompt="secret2", response="r")
        log.flush()
        refs = log.subject_refs("alice")
        assert len(refs) == 1 and log.match(0, prompt="secret").ok
        res = log.forget("alice", actor="dpo")
        assert res.subject_refs == refs and res.records == 2
        assert log.subject_refs("alice") == []
        with pytest.raises(VerificationError, match="destroyed"):
            log.match(0, prompt="secret")
        assert log.match(1, prompt="other").ok
        receipt = log.entry(log.find(res.receipt_id) or -1).body
        assert receipt is not None and receipt["kind"] == "dsar" and receipt["subject_refs"] == refs
        assert receipt["action"] == "forget" and receipt["count"] == 2
        assert log.verify().size == 4
        # the same person coming back gets a new, unlinkable key
        log.log_inference(user_id="alice", model_id="m", prompt="again", response="r")
        log.flush()
        assert log.subject_refs("alice") != refs and len(log.subject_refs("alice")) == 1


def _write_batches(log: AuditLog, plan: list[list[str]]) -> dict[str, list[str]]:
    """Each inner list is sealed as its own batch (flush between): records per user, by request id."""
    ids: dict[str, list[str]] = {}
    for batch in plan:
        for user in batch:
            ids.setdefault(user, []).append(log.log_inference(user_id=user, model_id="m", prompt=f"p-{user}",
                                                              response="r"))
        log.flush()
    return ids


def test_forget_finds_a_subject_across_many_batches(store_url: str, tmp_path: Path) -> None:
    """A subject's records spread over many sealed batches are all counted, and all their retained
    payloads deleted, while other subjects' payloads stay."""
    plan = [["a", "b", "a"], ["b"], ["a"], ["c", "b", "c"], ["a", "a", "b"]]
    with open_log(store_url, tmp_path, retain_payloads=True) as log:
        ids = _write_batches(log, plan)
        res = log.forget("a", actor="dpo")
        assert res.records == 5
        assert all(log.store.payload(r) is None for r in ids["a"])
        assert all(log.store.payload(r) is not None for r in ids["b"] + ids["c"])
        assert log.forget("b", actor="dpo").records == 4
        assert log.verify().size == 13


def test_a_store_from_schema_1_is_migrated_by_the_next_writer(store_url: str, tmp_path: Path) -> None:
    """A store written before ledger_subject_spans existed (subject index on the leaves) is migrated when a
    writer opens it: its records are found by subject afterwards, and the old index is gone."""
    with open_log(store_url, tmp_path, retain_payloads=True) as log:
        ids = _write_batches(log, [["a", "b"], ["a"], ["b", "a"]])
    raw = Raw(store_url)
    raw.q("DROP TABLE ledger_subject_spans")
    raw.q("CREATE INDEX ledger_leaves_subject ON ledger_leaves (subject_ref)")
    raw.q("UPDATE ledger_meta SET v = '1' WHERE k = 'schema'")
    with AuditLog.open(config_for(store_url, tmp_path), read_only=True) as ro:
        assert ro.store.schema_version == 1  # a reader leaves the store as it is
        assert ro.store.count_subject_records([bytes.fromhex(r) for r in ro.subject_refs("a")]) == 3
    with open_log(store_url, tmp_path, retain_payloads=True) as log:
        assert log.store.schema_version == 2
        assert raw.q("SELECT v FROM ledger_meta WHERE k = 'schema'") == [("2",)]
        more = _write_batches(log, [["a", "c"]])
        assert log.forget("a", actor="dpo").records == 4
        assert all(log.store.payload(r) is None for r in ids["a"] + more["a"])
        assert log.store.payload(ids["b"][0]) is not None
        assert log.verify().size == 8
    indexes = (raw.q("SELECT indexname FROM pg_indexes WHERE indexname = 'ledger_leaves_subject'") if raw.pg else
               raw.q("SELECT name FROM sqlite_master WHERE name = 'ledger_leaves_subject'"))
    assert indexes == []
    raw.close()


def test_prune_drops_bodies_keeps_proofs(store_url: str, tmp_path: Path) -> None:
    """prune removes old bodies; verify passes and reports them; proofs of pruned records still verify."""
    with open_log(store_url, tmp_path) as log:
        for t in range(20):
            log.log_inference(user_id="u", model_id="m", prompt=f"p{t}", response="r", ts=1_000 + t)
        log.flush()
        n = log.prune(1_010)
        assert n == 10
        es = list(log.entries())
        assert [e.body is None for e in es[:20]] == [True] * 10 + [False] * 10
        assert es[20].kind == "retention" and es[20].body and es[20].body["count"] == 10
        rep = log.verify()
        assert (rep.size, rep.pruned) == (21, 10)
        assert log.stats()["pruned"] == 10
        proof = log.prove(3).to_json()
        assert proof["leaf"] is None
        assert verify_inclusion_bundle(proof, [(tmp_path / "keys/signing.pub").read_text()]) == {}
        with pytest.raises(VerificationError, match="pruned"):
            log.match(3, prompt="p3")


def test_body_nulled_without_receipt_is_named(store_url: str, tmp_path: Path) -> None:
    """A body deleted by hand (no retention receipt covering it) is reported at its index."""
    with open_log(store_url, tmp_path) as log:
        for t in range(10):
            log.log_inference(user_id="u", model_id="m", prompt="p", response="r", ts=1_000 + t)
        log.flush()
    raw = Raw(store_url)
    raw.q("UPDATE ledger_leaves SET body = NULL WHERE idx = 6")
    raw.close()
    with AuditLog.open(config_for(store_url, tmp_path), read_only=True) as log, \
            pytest.raises(VerificationError) as info:
        log.verify()
    assert info.value.index == 6


def test_body_nulled_after_retention_cutoff_is_named(store_url: str, tmp_path: Path) -> None:
    """After a real prune, hand-deleting a body newer than the receipt's cut-off is still named."""
    with open_log(store_url, tmp_path) as log:
        for t in range(10):
            log.log_inference(user_id="u", model_id="m", prompt="p", response="r", ts=1_000 + t)
        log.flush()
        log.prune(1_005)
    raw = Raw(store_url)
    raw.q("UPDATE ledger_leaves SET body = NULL WHERE idx = 7")
    raw.close()
    with AuditLog.open(config_for(store_url, tmp_path), read_only=True) as log, \
            pytest.raises(VerificationError) as info:
        log.verify()
    assert info.value.index == 7


def test_backdated_hand_pruned_body_is_named(store_url: str, tmp_path: Path) -> None:
    """Deleting a recent record's body and back-dating its ts column to before a retention cut-off is named."""
    with open_log(store_url, tmp_path) as log:
        for t in range(10):
            log.log_inference(user_id="u", model_id="m", prompt="p", response="r", ts=1_000 + t)
        log.flush()
        log.prune(1_003)
    raw = Raw(store_url)
    raw.q("UPDATE ledger_leaves SET body = NULL, ts = 1 WHERE idx = 8")
    raw.close()
    with AuditLog.open(config_for(store_url, tmp_path), read_only=True) as log, \
            pytest.raises(VerificationError) as info:
        log.verify()
    assert info.value.index == 8


def _restore(url: str, backup: str) -> None:
    """Put a store back to an older copy (file copy for SQLite; table contents for PostgreSQL)."""
    if url.startswith("sqlite"):
        path = Path(url[len("sqlite:///"):])
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        shutil.copyfile(backup[len("sqlite:///"):], path)
        return
    schema, old = url.split("search_path%3D", 1)[1], backup.split("search_path%3D", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("ledger_leaves", "ledger_nodes", "ledger_checkpoints", "ledger_head", "ledger_subjects",
                      "ledger_payloads", "ledger_meta"):
            conn.execute(f"DELETE FROM {schema}.{table}")
            conn.execute(f"INSERT INTO {schema}.{table} SELECT * FROM {old}.{table}")


def test_rollback_to_older_copy_refused(store_url: str, tmp_path: Path) -> None:
    """An older copy restored: the writer refuses to start; verify --against a later checkpoint names it."""
    with open_log(store_url, tmp_path) as log:
        fill(log, 30, seed=7)
    backup = clone_store(store_url, tmp_path)
    try:
        with open_log(store_url, tmp_path) as log:
            fill(log, 25, seed=8)
            later = log.checkpoint()
        _restore(store_url, backup)
        with pytest.raises(RollbackError):
            open_log(store_url, tmp_path)
        with AuditLog.open(config_for(store_url, tmp_path), read_only=True) as ro:
            assert ro.verify().size == 30  # internally consistent: only the external checkpoint shows it
            with pytest.raises(VerificationError) as info:
                ro.verify(against=later)
            assert info.value.index == 30
    finally:
        drop_clone(backup)


def test_forked_history_detected_against_checkpoint(store_url: str, tmp_path: Path) -> None:
    """A store rebuilt with different records at the same size fails verify --against the old checkpoint."""
    with open_log(store_url, tmp_path) as log:
        fill(log, 12, seed=9)
        cp = log.checkpoint()
    other = tmp_path / "other"
    other.mkdir()
    shutil.copytree(tmp_path / "keys", other / "keys")
    url2 = clone_store(store_url, tmp_path)
    try:
        raw = Raw(url2)
        for t in ("ledger_leaves", "ledger_nodes", "ledger_checkpoints", "ledger_subjects"):
            raw.q(f"DELETE FROM {t}")
        raw.q("UPDATE ledger_head SET size = 0, frontier = ?, note = NULL WHERE id = 1", (b"",))
        raw.close()
        with open_log(url2, other) as log:
            fill(log, 12, seed=10)
            with pytest.raises(VerificationError):
                log.verify(against=cp)
    finally:
        drop_clone(url2)


def test_typed_records_are_versioned(store_url: str, tmp_path: Path) -> None:
    """Every record body carries the schema version, kind, id, ts, idx and typed fields."""
    with open_log(store_url, tmp_path, clock=lambda: 42) as log:
        rid = log.append(RetentionRecord(action="delete", scope="inference", cutoff_ts=7, count=0))
        log.append(DsarRecord(action="find", outcome="found", subject_refs=["ab"], count=1))
        log.flush()
        body = log.entry(0).body
    assert body == {"v": 1, "kind": "retention", "id": rid, "ts": 42, "subject_ref": None, "idx": 0,
                    "action": "delete", "scope": "inference", "cutoff_ts": 7, "count": 0, "attrs": {}}


def test_auditor_verifies_with_public_key_only(store_url: str, tmp_path: Path) -> None:
    """A read-only open with only signing.pub (no private or master key) verifies the whole log."""
    with open_log(store_url, tmp_path) as log:
        fill(log, 30, seed=14)
    auditor = tmp_path / "auditor"
    (auditor / "keys").mkdir(parents=True)
    shutil.copyfile(tmp_path / "keys/signing.pub", auditor / "keys/signing.pub")
    with AuditLog.open(config_for(store_url, auditor), read_only=True) as ro:
        assert ro.verify().size == 30
        assert ro.checkpoint().size == 30
