"""The parallel (chunked, worker-process) verify names the same first bad index as the sequential one.

Real logs only go parallel past 4 x 2**16 records; here the chunk size is shrunk to 256 leaves so a log of
a few thousand records crosses many chunk boundaries, and both paths run on the same tampered copies.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_helpers import STORES, Raw, clone_store, drop_clone, drop_store, fill, open_log, store_url_for
from soc2ai.errors import VerificationError
from soc2ai.ledger import verify as verify_mod
from soc2ai.ledger.canonical import canonical_json
from soc2ai.ledger.keys import load_verifiers
from soc2ai.ledger.merkle import leaf_hash
from soc2ai.ledger.store import open_store

N = 3000


@pytest.fixture(scope="module", params=STORES)
def big(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A closed log of 3000 records with checkpoints at irregular sizes."""
    base = tmp_path_factory.mktemp("big")
    url = store_url_for(request.param, base)
    with open_log(url, base) as log:
        fill(log, N, seed=11, max_batch=150)
    yield url, base
    drop_store(url)


def _both(url: str, base: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """(sequential outcome, parallel outcome): a VerifyReport root or the error's (index, message)."""
    vs = load_verifiers(base / "keys")
    outcomes = []
    for parallel in (False, True):
        with monkeypatch.context() as m:
            if parallel:
                m.setattr(verify_mod, "CHUNK_LEVEL", 8)
                m.setattr(verify_mod, "CHUNK", 256)
                m.setattr(verify_mod, "PARALLEL_MIN", 0)
            store = open_store(url, create=False)
            try:
                rep = verify_mod.verify_store(store, vs, workers=2 if parallel else 1)
                outcomes.append(("ok", rep.size, rep.root, rep.pruned))
            except VerificationError as exc:
                outcomes.append(("err", exc.index))
            finally:
                store.close()
    return outcomes[0], outcomes[1]


def test_parallel_verify_accepts_a_good_log(big: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Untampered, both paths agree on size and root."""
    seq, par = _both(*big, monkeypatch)
    assert seq[0] == "ok" and seq == par and seq[1] == N


@settings(max_examples=6, deadline=None)
@given(i=st.integers(0, N - 1), how=st.sampled_from(["edit", "delete", "rewrite", "null"]))
def test_parallel_verify_names_the_same_index(big: tuple[str, Path], i: int, how: str) -> None:
    """For an edited, deleted, consistently rewritten or hand-pruned row, both paths name the same index."""
    url, base = big
    copy = clone_store(url, base)
    try:
        raw = Raw(copy)
        if how == "delete":
            raw.q("DELETE FROM ledger_leaves WHERE idx = ?", (i,))
        elif how == "null":
            raw.q("UPDATE ledger_leaves SET body = NULL WHERE idx = ?", (i,))
        else:
            body = orjson.loads(bytes(raw.q("SELECT body FROM ledger_leaves WHERE idx = ?", (i,))[0][0]))
            body["x"] = 1
            enc = canonical_json(body)
            if how == "edit":
                raw.q("UPDATE ledger_leaves SET body = ? WHERE idx = ?", (enc, i))
            else:
                raw.q("UPDATE ledger_leaves SET body = ?, leaf_hash = ? WHERE idx = ?", (enc, leaf_hash(enc), i))
        raw.close()
        with pytest.MonkeyPatch.context() as mp:
            seq, par = _both(copy, base, mp)
        assert seq[0] == "err" and seq == par, (how, i, seq, par)
        if how != "rewrite":
            assert seq[1] == i
    finally:
        drop_clone(copy)
