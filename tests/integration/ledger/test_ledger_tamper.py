"""Any single change to a sealed store is detected by ``verify`` with the first bad index named.

A log of 300 mixed records with many checkpoints is built once per store; each Hypothesis example tampers
with a fresh copy of it (SQLite backup / PostgreSQL schema copy) and runs a full verify on the copy.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_helpers import (
    STORES,
    Raw,
    clone_store,
    config_for,
    drop_clone,
    drop_store,
    env_without_config,
    fill,
    open_log,
    store_url_for,
    write_config,
)
from soc2ai.errors import VerificationError
from soc2ai.ledger import AuditLog
from soc2ai.ledger.canonical import canonical_json
from soc2ai.ledger.keys import load_signer
from soc2ai.ledger.merkle import leaf_hash
from soc2ai.ledger.note import Signer, open_checkpoint, sign_checkpoint

N = 300
EXAMPLES = settings(max_examples=20, deadline=None)


@dataclass
class Sealed:
    url: str
    base: Path
    sizes: list[int]          # checkpoint sizes, ascending
    rows: list[tuple[Any, ...]]

    def prev_cp(self, i: int) -> int:
        """Start of the checkpoint range that contains index i (the documented range start)."""
        return max([s for s in self.sizes if s <= i], default=0)

    def next_cp(self, i: int) -> int:
        return min(s for s in self.sizes if s > i)


@pytest.fixture(scope="module", params=STORES)
def sealed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sealed]:
    """A closed, verified log of 300 records with ~30 checkpoints."""
    base = tmp_path_factory.mktemp("sealed")
    url = store_url_for(request.param, base)
    with open_log(url, base) as log:
        fill(log, N, seed=1)
        log.verify()
        sizes = [s for s, _ in log.store.checkpoints()]
    raw = Raw(url)
    rows = raw.q("SELECT idx, leaf_hash, body, kind, ts, subject_ref, rid FROM ledger_leaves ORDER BY idx")
    raw.close()
    assert len(rows) == N and sizes[-1] == N and len(sizes) > 10
    yield Sealed(url, base, sizes, rows)
    drop_store(url)


def _verify_copy(s: Sealed, tamper: Any) -> VerificationError:
    """Copy the sealed store, apply ``tamper(raw)``, verify the copy; return the VerificationError."""
    url = clone_store(s.url, s.base)
    try:
        raw = Raw(url)
        try:
            tamper(raw)
        finally:
            raw.close()
        with AuditLog.open(config_for(url, s.base), read_only=True) as log, \
                pytest.raises(VerificationError) as info:
            log.verify()
        return info.value
    finally:
        drop_clone(url)


def _edit_value(v: Any) -> Any:
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 1
    if isinstance(v, str):
        return v + "x"
    return "x" if v is not None else 1


_index = st.integers(0, N - 1)


@EXAMPLES
@given(i=_index, data=st.data())
def test_edited_body_field_is_named(sealed: Sealed, i: int, data: st.DataObject) -> None:
    """Changing any JSON field of any record body (leaf hash untouched) is reported at that index."""
    body = orjson.loads(bytes(sealed.rows[i][2]))
    key = data.draw(st.sampled_from(sorted(body)))
    body[key] = _edit_value(body[key])
    err = _verify_copy(sealed, lambda r: r.q("UPDATE ledger_leaves SET body = ? WHERE idx = ?",
                                             (canonical_json(body), i)))
    assert err.index == i, err


@EXAMPLES
@given(i=_index, column=st.sampled_from(["leaf_hash", "kind", "ts", "subject_ref", "rid", "body_bytes"]),
       bit=st.integers(0, 255))
def test_edited_column_is_named(sealed: Sealed, i: int, column: str, bit: int) -> None:
    """Changing the leaf hash or an indexed column (kind, ts, subject_ref, rid) of any row names that row."""
    _idx, lh, body, kind, ts, ref, _rid = sealed.rows[i]
    if column == "leaf_hash":
        b = bytearray(bytes(lh))
        b[bit // 8] ^= 1 << (bit % 8)
        sql, value = "UPDATE ledger_leaves SET leaf_hash = ? WHERE idx = ?", bytes(b)
    elif column == "body_bytes":  # a raw byte flip, possibly leaving invalid JSON
        b = bytearray(bytes(body))
        b[bit % len(b)] ^= 1 << (bit % 7)
        sql, value = "UPDATE ledger_leaves SET body = ? WHERE idx = ?", bytes(b)
    elif column == "kind":
        sql, value = "UPDATE ledger_leaves SET kind = ? WHERE idx = ?", "config_change" if kind != "config_change" \
            else "access"
    elif column == "ts":
        sql, value = "UPDATE ledger_leaves SET ts = ? WHERE idx = ?", ts + 1 + bit
    elif column == "subject_ref":
        sql, value = "UPDATE ledger_leaves SET subject_ref = ? WHERE idx = ?", \
            (None if ref is not None and bit % 2 else bytes([bit]) * 32)
    else:
        sql, value = "UPDATE ledger_leaves SET rid = ? WHERE idx = ?", uuid.uuid4().hex
    err = _verify_copy(sealed, lambda r: r.q(sql, (value, i)))
    assert err.index == i, err


@EXAMPLES
@given(i=_index)
def test_consistent_rewrite_is_named_by_range_start(sealed: Sealed, i: int) -> None:
    """A body rewritten with a matching leaf hash is named at its checkpoint range (or stored node) start."""
    body = orjson.loads(bytes(sealed.rows[i][2]))
    body["tamper"] = 1
    enc = canonical_json(body)
    err = _verify_copy(sealed, lambda r: r.q("UPDATE ledger_leaves SET body = ?, leaf_hash = ? WHERE idx = ?",
                                             (enc, leaf_hash(enc), i)))
    tile = (i >> 8) << 8
    expected = tile if sealed.next_cp(i) >= tile + 256 else sealed.prev_cp(i)
    assert err.index == expected, (err, sealed.prev_cp(i), sealed.next_cp(i))
    assert err.index <= i


@EXAMPLES
@given(i=_index)
def test_deleted_row_is_named(sealed: Sealed, i: int) -> None:
    """Deleting any row is reported at that row's index."""
    err = _verify_copy(sealed, lambda r: r.q("DELETE FROM ledger_leaves WHERE idx = ?", (i,)))
    assert err.index == i, err


@EXAMPLES
@given(pair=st.lists(_index, min_size=2, max_size=2, unique=True))
def test_swapped_rows_are_named(sealed: Sealed, pair: list[int]) -> None:
    """Swapping the contents of two rows is reported at the smaller index."""
    i, j = sorted(pair)
    a, b = sealed.rows[i], sealed.rows[j]

    def swap(r: Raw) -> None:
        r.q("DELETE FROM ledger_leaves WHERE idx IN (?, ?)", (i, j))
        ins = "INSERT INTO ledger_leaves (idx, leaf_hash, body, kind, ts, subject_ref, rid) VALUES (?,?,?,?,?,?,?)"
        r.q(ins, (i, *b[1:]))
        r.q(ins, (j, *a[1:]))

    err = _verify_copy(sealed, swap)
    assert err.index == i, err


@settings(max_examples=5, deadline=None)
@given(extra=st.integers(1, 3))
def test_row_appended_without_checkpoint_is_named(sealed: Sealed, extra: int) -> None:
    """Well-formed rows appended after the last checkpoint are reported at the first unsigned index."""
    def append(r: Raw) -> None:
        for k in range(extra):
            rec = {"v": 1, "kind": "access", "id": uuid.uuid4().hex, "ts": 1, "subject_ref": None, "idx": N + k,
                   "action": "chat", "decision": "allow"}
            enc = canonical_json(rec)
            r.q("INSERT INTO ledger_leaves (idx, leaf_hash, body, kind, ts, subject_ref, rid) VALUES (?,?,?,?,?,?,?)",
                (N + k, leaf_hash(enc), enc, "access", 1, None, rec["id"]))

    err = _verify_copy(sealed, append)
    assert err.index == N, err


def _cp_note(s: Sealed, size: int) -> str:
    raw = Raw(s.url)
    try:
        return str(raw.q("SELECT note FROM ledger_checkpoints WHERE size = ?", (size,))[0][0])
    finally:
        raw.close()


@EXAMPLES
@given(k=st.integers(0, 1000), how=st.sampled_from(["other_key", "wrong_root", "other_note"]))
def test_replaced_or_resigned_checkpoint_is_named(sealed: Sealed, k: int, how: str) -> None:
    """A checkpoint re-signed by another key, re-rooted or swapped is named at the start of its range."""
    size = sealed.sizes[k % len(sealed.sizes)]
    cp = open_checkpoint(_cp_note(sealed, size), [load_signer(sealed.base / "keys").verifier])
    if how == "other_key":
        note = sign_checkpoint(Signer("test", Ed25519PrivateKey.generate()), cp.origin, cp.size, cp.root).note
    elif how == "wrong_root":
        note = sign_checkpoint(load_signer(sealed.base / "keys"), cp.origin, cp.size, bytes(32)).note
    else:
        other = sealed.sizes[(k + 1) % len(sealed.sizes)]
        note = _cp_note(sealed, other)

    def replace(r: Raw) -> None:
        r.q("UPDATE ledger_checkpoints SET note = ? WHERE size = ?", (note, size))
        r.q("UPDATE ledger_head SET note = ? WHERE id = 1 AND size = ?", (note, size))

    err = _verify_copy(sealed, replace)
    assert err.index == sealed.prev_cp(size - 1), (err, size)


def test_tampered_stored_tree_node_is_named(sealed: Sealed) -> None:
    """A stored interior tree node that disagrees with the leaves is reported at the node's first leaf."""
    err = _verify_copy(sealed, lambda r: r.q("UPDATE ledger_nodes SET hash = ? WHERE level = 8 AND idx = 0",
                                             (bytes(32),)))
    assert err.index == 0, err


def test_deleted_checkpoint_row_still_verifies_others_but_head_mismatch_named(sealed: Sealed) -> None:
    """Deleting the latest checkpoint row leaves records not covered by a checkpoint: named at that range."""
    last, prev = sealed.sizes[-1], sealed.sizes[-2]
    err = _verify_copy(sealed, lambda r: r.q("DELETE FROM ledger_checkpoints WHERE size = ?", (last,)))
    assert err.index == prev, err


def test_cli_verify_exits_1_naming_the_index(sealed: Sealed, tmp_path: Path) -> None:
    """`soc2ai log verify` exits 1 and names the first bad index, in text and in --json output."""
    url = clone_store(sealed.url, sealed.base)
    try:
        i = 123
        raw = Raw(url)
        raw.q("DELETE FROM ledger_leaves WHERE idx = ?", (i,))
        raw.close()
        cfg = write_config(url, sealed.base)
        cmd = [sys.executable, "-m", "soc2ai", "log", "verify", "--config", str(cfg)]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env_without_config(), timeout=120,
                             check=False)
        assert res.returncode == 1, res
        assert f"index {i}" in res.stdout + res.stderr
        res = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env_without_config(),
                             timeout=120, check=False)
        assert res.returncode == 1, res
        out = orjson.loads(res.stdout)
        assert out["ok"] is False and out["index"] == i
        # and the untampered original passes
        cfg.write_text(cfg.read_text().replace(url, sealed.url))
        res = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env_without_config(),
                             timeout=120, check=False)
        assert res.returncode == 0, res
        assert orjson.loads(res.stdout)["size"] == N
    finally:
        drop_clone(url)


def test_checkpoint_root_b64_is_standard(sealed: Sealed) -> None:
    """The checkpoint's root line is standard base64 of the 32-byte root (C2SP tlog-checkpoint)."""
    lines = _cp_note(sealed, N).split("\n")
    assert len(base64.b64decode(lines[2], validate=True)) == 32 and lines[1] == str(N)


def test_corrupted_tree_head_frontier_is_named(sealed: Sealed) -> None:
    """A corrupted stored tree head (frontier) is reported by verify, not only by a stalled writer."""
    err = _verify_copy(sealed, lambda r: r.q("UPDATE ledger_head SET frontier = ? WHERE id = 1", (bytes(32 * 3),)))
    assert err.index is not None


def test_edited_head_size_is_named(sealed: Sealed) -> None:
    """An edited tree-head size is reported by verify."""
    err = _verify_copy(sealed, lambda r: r.q("UPDATE ledger_head SET size = ? WHERE id = 1", (N - 5,)))
    assert err.index is not None


def test_deleted_stored_tree_node_is_named(sealed: Sealed) -> None:
    """Deleting a stored tree node (which proofs need) is reported by verify."""
    err = _verify_copy(sealed, lambda r: r.q("DELETE FROM ledger_nodes WHERE level = 8 AND idx = 0"))
    assert err.index == 0


def test_extra_stored_tree_node_is_named(sealed: Sealed) -> None:
    """A stored tree node that no leaves account for is reported by verify."""
    err = _verify_copy(sealed, lambda r: r.q("INSERT INTO ledger_nodes (level, idx, hash) VALUES (8, 5, ?)",
                                             (bytes(32),)))
    assert err.index is not None


# -- rows outside the log, forged or edited retention receipts, wrongly typed columns -------------------


def _receipt(idx: int) -> tuple[bytes, bytes]:
    """A well-formed prune receipt claiming to cover everything, for index ``idx``: (body, its leaf hash)."""
    body = canonical_json({"v": 1, "kind": "retention", "id": uuid.uuid4().hex, "ts": 1, "subject_ref": None,
                           "idx": idx, "action": "prune", "scope": "*", "cutoff_ts": 2**53 - 1,
                           "count": 10**9, "attrs": {"max_idx": 10**9}})
    return body, leaf_hash(body)


@pytest.mark.parametrize("at", [-1, N + 40_000, 10**12])
def test_forged_receipt_outside_the_log_does_not_hide_pruned_bodies(sealed: Sealed, at: int) -> None:
    """A self-consistent retention receipt at a negative index or past the head covers nothing: the
    bodies deleted under its cover are named."""
    def forge(r: Raw) -> None:
        body, lh = _receipt(at)
        r.q("INSERT INTO ledger_leaves (idx, leaf_hash, body, kind, ts, subject_ref, rid) "
            "VALUES (?, ?, ?, 'retention', 1, NULL, ?)", (at, lh, body, uuid.uuid4().hex))
        r.q("UPDATE ledger_leaves SET body = NULL WHERE idx >= 10 AND idx < 200")

    err = _verify_copy(sealed, forge)
    assert err.index == 10 and "no retention receipt covers it" in str(err), err


@pytest.mark.parametrize("at", [-1, -5, N + 1, N + 32_768, N + 40_000])
def test_row_outside_the_log_is_named(sealed: Sealed, at: int) -> None:
    """A well-formed row at a negative index, or past the head beyond what the chunks read, is named."""
    def add(r: Raw) -> None:
        rec = {"v": 1, "kind": "access", "id": uuid.uuid4().hex, "ts": 1, "subject_ref": None, "idx": at,
               "action": "chat", "decision": "allow"}
        enc = canonical_json(rec)
        r.q("INSERT INTO ledger_leaves (idx, leaf_hash, body, kind, ts, subject_ref, rid) VALUES (?,?,?,?,?,?,?)",
            (at, leaf_hash(enc), enc, "access", 1, None, rec["id"]))

    err = _verify_copy(sealed, add)
    assert err.index == (at if at < 0 else (N if at == N + 1 else at)), err


@pytest.fixture(params=STORES)
def pruned(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path, int]]:
    """A log of 100 records whose alert bodies were pruned: (url, base, index of the retention receipt)."""
    url = store_url_for(request.param, tmp_path)
    with open_log(url, tmp_path) as log:
        fill(log, 100, seed=3)
        assert log.prune(2**53 - 1, ["alert"], actor="t") > 0
        log.verify()
    raw = Raw(url)
    receipt = int(raw.q("SELECT idx FROM ledger_leaves WHERE kind = 'retention'")[0][0])
    raw.close()
    yield url, tmp_path, receipt
    drop_store(url)


@pytest.mark.parametrize("cutoff", ["x", [1], 2**62, None])
def test_edited_retention_receipt_fails_verify_cleanly(pruned: tuple[str, Path, int], cutoff: Any) -> None:
    """An edited receipt (its cut-off made unparseable or larger) is a finding that names the edited
    receipt, never a traceback, and covers nothing."""
    url, base, receipt = pruned
    raw = Raw(url)
    body = orjson.loads(bytes(raw.q("SELECT body FROM ledger_leaves WHERE idx = ?", (receipt,))[0][0]))
    body["cutoff_ts"] = cutoff
    raw.q("UPDATE ledger_leaves SET body = ? WHERE idx = ?", (orjson.dumps(body), receipt))
    first_pruned = int(raw.q("SELECT MIN(idx) FROM ledger_leaves WHERE body IS NULL")[0][0])
    raw.close()
    with AuditLog.open(config_for(url, base), read_only=True) as log, pytest.raises(VerificationError) as info:
        log.verify()
    assert info.value.index == first_pruned and f"receipt at index {receipt}" in str(info.value), info.value
    cfg = write_config(url, base)
    res = subprocess.run([sys.executable, "-m", "soc2ai", "log", "verify", "--config", str(cfg), "--json"],
                         capture_output=True, text=True, env=env_without_config(), timeout=120, check=False)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res
    assert orjson.loads(res.stdout)["index"] == first_pruned


def test_signed_but_malformed_receipt_covers_nothing(tmp_path: Path) -> None:
    """A receipt logged with a cut-off that is not an integer is part of the log (verify passes while
    nothing relies on it) but excuses no missing body."""
    from soc2ai.ledger.records import RetentionRecord

    url = store_url_for("sqlite", tmp_path)
    with open_log(url, tmp_path) as log:
        fill(log, 20, seed=4)
        log.append(RetentionRecord(action="prune", scope="*", cutoff_ts="soon", count=5,  # type: ignore[arg-type]
                                   attrs={"max_idx": 19}))
        log.flush()
        assert log.verify().size == 21
    raw = Raw(url)
    raw.q("UPDATE ledger_leaves SET body = NULL WHERE idx = 3")
    raw.close()
    with AuditLog.open(config_for(url, tmp_path), read_only=True) as log, pytest.raises(VerificationError) as info:
        log.verify()
    assert info.value.index == 3, info.value


_TYPED = {  # SQLite is dynamically typed: a hand edit can store any type in any column
    "leaf body as REAL": ("UPDATE ledger_leaves SET body = 1.5 WHERE idx = 7", 7),
    "leaf body as INTEGER": ("UPDATE ledger_leaves SET body = 1000000000000 WHERE idx = 7", 7),
    "leaf hash as REAL": ("UPDATE ledger_leaves SET leaf_hash = 1.5 WHERE idx = 7", 7),
    "leaf hash as huge INTEGER": ("UPDATE ledger_leaves SET leaf_hash = 1000000000000 WHERE idx = 7", 7),
    "pruned body, ts as TEXT": ("UPDATE ledger_leaves SET body = NULL, ts = 'x' WHERE idx = 7", 7),
    "node hash as TEXT": ("UPDATE ledger_nodes SET hash = 'abc' WHERE level = 8 AND idx = 0", 0),
    "node hash as REAL": ("UPDATE ledger_nodes SET hash = 1.5 WHERE level = 8 AND idx = 0", 0),
    "node level as TEXT": ("UPDATE ledger_nodes SET level = 'x' WHERE level = 8 AND idx = 0", 0),
    "checkpoint note as BLOB": ("UPDATE ledger_checkpoints SET note = x'00' WHERE size = ?", "first_cp"),
    "head size as TEXT": ("UPDATE ledger_head SET size = 'abc'", N - 1),
    "head frontier as TEXT": ("UPDATE ledger_head SET frontier = 'abc'", N - 1),
}


@pytest.mark.parametrize("case", sorted(_TYPED))
def test_wrongly_typed_column_is_a_finding_not_a_crash(sealed: Sealed, case: str) -> None:
    """A column holding an unexpected type fails verify naming the row (or node, checkpoint, head)."""
    if sealed.url.startswith("postgres"):
        pytest.skip("PostgreSQL columns are typed")
    sql, expected = _TYPED[case]
    params: tuple[Any, ...] = (sealed.sizes[0],) if "?" in sql else ()
    err = _verify_copy(sealed, lambda r: r.q(sql, params))
    assert err.index == (0 if expected == "first_cp" else expected), err
