"""The lineage graph: source -> document -> chunk -> embedding; subjects; deletion marks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from soc2ai.config import parse_config
from soc2ai.data.lineage import LineageStore, load_or_create_key
from soc2ai.data.runtime import lineage_url
from soc2ai.errors import KeyMaterialError


@pytest.fixture
def store(tmp_path: Path) -> LineageStore:
    """A SQLite lineage store with a fresh key."""
    return LineageStore.open(f"sqlite:///{tmp_path}/lin.db", key=load_or_create_key(tmp_path / "k" / "lineage.key"))


def chain(s: LineageStore) -> dict[str, str]:
    src = s.record("source", id="src", attrs={"system": "crm"})
    doc = s.record("document", id="doc", parents=[src], subjects=["alice"], label="confidential")
    chunk = s.record("chunk", id="chunk", parents=[doc])
    emb = s.record("embedding", id="emb", parents=[chunk], store="vectors", collection="docs", locator="v1")
    ex = s.record("example", id="ex", parents=[chunk], store="train", collection="/d/train.jsonl", locator="r7")
    comp = s.record("completion", id="cmp", parents=[doc], store="cache", collection="soc2ai:cache:", locator="k1")
    return {"src": src, "doc": doc, "chunk": chunk, "emb": emb, "ex": ex, "cmp": comp}


def test_ancestry_and_descendants(store: LineageStore) -> None:
    """An embedding traces back to its source; a document reaches its embeddings, examples, completions."""
    ids = chain(store)
    assert {n.id for n in store.ancestors(ids["emb"])} == {"chunk", "doc", "src"}
    assert {n.id for n in store.descendants(ids["doc"])} == {"chunk", "emb", "ex", "cmp"}
    assert store.by_locator("train", "/d/train.jsonl", "r7")[0].id == "ex"
    assert store.by_locator(None, "/d/train.jsonl", "r7")[0].kind == "example"
    assert set(store.edges(["doc", "chunk", "emb"])) == {("doc", "chunk"), ("chunk", "emb")}


def test_subject_owns_descendants(store: LineageStore) -> None:
    """A subject linked to a document owns everything derived from it, not its source."""
    chain(store)
    owned = {n.id for n in store.subject_nodes("alice")}
    assert owned == {"doc", "chunk", "emb", "ex", "cmp"}
    assert store.subject_nodes("bob") == []


def test_forget_and_mark_deleted(store: LineageStore) -> None:
    """Forgetting unlinks the subject; deleted items keep a deletion time."""
    chain(store)
    assert store.mark_deleted("vectors", "docs", ["v1"]) == 1
    assert store.get("emb") is not None and store.get("emb").deleted_us is not None  # type: ignore[union-attr]
    assert store.forget_subject("alice") == 1
    assert store.subject_nodes("alice") == []


def test_no_raw_subject_stored(store: LineageStore, tmp_path: Path) -> None:
    """The subject id never appears in the database file; only its keyed hash."""
    store.record("document", id="d", subjects=["alice-unique-id-42"])
    store.close()
    assert b"alice-unique-id-42" not in (tmp_path / "lin.db").read_bytes()
    wal = tmp_path / "lin.db-wal"
    assert not wal.exists() or b"alice-unique-id-42" not in wal.read_bytes()


def test_key_file_mode(tmp_path: Path) -> None:
    """The key file is created 0600 and refused when group/world readable."""
    path = tmp_path / "keys" / "lineage.key"
    key = load_or_create_key(path)
    assert len(key) == 32 and (path.stat().st_mode & 0o777) == 0o600
    assert load_or_create_key(path) == key
    os.chmod(path, 0o644)
    with pytest.raises(KeyMaterialError):
        load_or_create_key(path)


def test_record_is_upsert(store: LineageStore) -> None:
    """Recording the same id twice updates it instead of failing."""
    store.record("chunk", id="c", label="internal")
    store.record("chunk", id="c", label="restricted")
    node = store.get("c")
    assert node is not None and node.label == "restricted"
    assert [n.id for n in store.iter_nodes("chunk")] == ["c"]


def test_default_url_follows_the_ledger(tmp_path: Path) -> None:
    """Without lineage_store the lineage lives beside the ledger: same dir (SQLite) or same database."""
    sqlite_cfg = parse_config('[ledger]\nstore = "sqlite:///db/audit.db"\n', root=tmp_path)
    assert lineage_url(sqlite_cfg) == f"sqlite:///{tmp_path}/db/lineage.db"
    pg_cfg = parse_config('[ledger]\nstore = "postgresql://u@h/db"\n', root=tmp_path)
    assert lineage_url(pg_cfg) == "postgresql://u@h/db"
