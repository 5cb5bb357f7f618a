"""DSAR across the real ledger, dataset files and a directory: find, export, delete, resume, faults."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
import pytest

from soc2ai.config import Config
from soc2ai.data.classify import Classifier
from soc2ai.data.connectors.interface import Location, Subject
from soc2ai.data.dsar import Dsar
from soc2ai.data.runtime import Workspace, open_workspace

STORES = """
[[data.connectors]]
name = "train"
type = "dataset"
path = "datasets"
[[data.connectors]]
name = "uploads"
type = "files"
path = "uploads"
"""


def seed(root: Path, ws: Workspace) -> str:
    """Alice in the ledger (3 calls), two dataset rows (one via lineage only), two uploads."""
    assert ws.log is not None
    for i in range(3):
        ws.log.log_inference(user_id="alice", model_id="m", prompt=f"p{i}", response="r", latency_us=5,
                             input_tokens=1, output_tokens=1)
    ws.log.log_inference(user_id="bob", model_id="m", prompt="p", response="r", latency_us=5,
                         input_tokens=1, output_tokens=1)
    ws.log.flush()
    (root / "datasets").mkdir()
    rows = [{"id": "e1", "subject_id": "alice", "text": "hello"},
            {"id": "e2", "subject_id": "bob", "text": "copied: write to alice@example.com"},
            {"id": "e3", "subject_id": "carol", "text": "nothing personal"},
            {"id": "e4", "subject_id": "dave", "text": "derived from alice's doc"}]
    (root / "datasets" / "train.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    (root / "uploads" / "alice").mkdir(parents=True)
    (root / "uploads" / "alice" / "cv.txt").write_text("curriculum")
    (root / "uploads" / "notes.txt").write_text("call alice@example.com tomorrow")
    (root / "uploads" / "other.txt").write_text("unrelated")
    # Lineage: alice's document became example e4 (no identifier in it: only lineage knows).
    c = Classifier(ws_config(root).data, sources={"crm": "confidential"}, content=lambda _t: set(),
                   lineage=ws.lineage)
    doc = c.ingest("alice's doc", source="crm", subject_ids=["alice"])
    ws.lineage.record("example", parents=[doc.lineage_id], store="train",
                      collection=str((root / "datasets" / "train.jsonl").resolve()), locator="e4")
    return doc.lineage_id


_CONFIGS: dict[Path, Config] = {}


def ws_config(root: Path) -> Config:
    return _CONFIGS[root]


@pytest.fixture
def cfg(tmp_path: Path, make_config: Callable[[str], Config]) -> Config:
    """Config with a dataset dir and an uploads dir."""
    config = make_config(STORES)
    _CONFIGS[tmp_path] = config
    return config


def dsar(ws: Workspace, cfg: Config) -> Dsar:
    return Dsar(ws.opened, lineage=ws.lineage, log=ws.log, state_dir=cfg.path(cfg.data.state_dir))


def test_find_everywhere(tmp_path: Path, cfg: Config) -> None:
    """Find reaches the ledger, dataset rows by field, discovery and lineage, and the uploads."""
    with open_workspace(cfg, write_log=True) as ws:
        seed(tmp_path, ws)
        rep = dsar(ws, cfg).find("alice", [("email", "alice@example.com")])
    by = {s.name: s for s in rep.stores}
    assert by["ledger"].locations[0].detail == "3 records"
    assert sorted((loc.detail, loc.how) for loc in by["train"].locations) == [
        ("e1", "subject"), ("e2", "discovery"), ("e4", "lineage")]
    assert sorted((loc.item_id, loc.how) for loc in by["uploads"].locations) == [
        ("alice/cv.txt", "subject"), ("notes.txt", "discovery")]
    assert rep.outcome == "found" and rep.unreachable == [] and rep.lineage_nodes == 2
    assert all(s.seconds >= 0 for s in rep.stores)
    assert rep.receipt_id is not None


def test_unknown_subject_empty(cfg: Config) -> None:
    """An unknown subject gives an empty report that says so."""
    (cfg.root / "datasets").mkdir()
    (cfg.root / "uploads").mkdir()
    with open_workspace(cfg, write_log=True) as ws:
        rep = dsar(ws, cfg).find("nobody-here")
    assert rep.total == 0 and rep.outcome == "nothing_found"


def test_export_bundle(tmp_path: Path, cfg: Config) -> None:
    """Export writes one JSONL per store, the files, and a manifest with hashes."""
    out = tmp_path / "bundle"
    with open_workspace(cfg, write_log=True) as ws:
        seed(tmp_path, ws)
        rep = dsar(ws, cfg).export("alice", [("email", "alice@example.com")], out)
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["files"]["train.jsonl"]["items"] == 3
    assert manifest["files"]["ledger.jsonl"]["items"] == 3
    assert (out / "files" / "uploads" / "alice" / "cv.txt").read_text() == "curriculum"
    assert rep.outcome == "exported"
    assert "alice" not in orjson.dumps(manifest).decode().replace("alice/cv.txt", "")


def test_delete_dry_run_then_real(tmp_path: Path, cfg: Config) -> None:
    """Dry run deletes nothing; --yes deletes everywhere, proves it, and the ledger holds the receipt."""
    with open_workspace(cfg, write_log=True) as ws:
        seed(tmp_path, ws)
        d = dsar(ws, cfg)
        dry = d.delete("alice", [("email", "alice@example.com")])
        assert dry.dry_run and dry.total == 6  # 1 ledger subject key, 3 rows, 2 files
        assert (tmp_path / "uploads" / "notes.txt").exists()
        rep = d.delete("alice", [("email", "alice@example.com")], dry_run=False)
        assert rep.outcome == "complete", rep.as_dict()
        assert all(s.verified for s in rep.stores)
        assert ws.log is not None and ws.log.subject_refs("alice") == []
        assert ws.log.subject_refs("bob") != []
        assert d.find("alice", [("email", "alice@example.com")], receipt=False).total == 0
        receipts = [e.body for e in ws.log.entries(kind="dsar") if e.body]
    kept = (tmp_path / "datasets" / "train.jsonl").read_bytes().splitlines()
    assert [orjson.loads(x)["id"] for x in kept] == ["e3"]
    assert (tmp_path / "uploads" / "other.txt").exists() and not (tmp_path / "uploads" / "notes.txt").exists()
    actions = [(r["action"], r["outcome"]) for r in receipts]
    assert ("forget", "shredded") in actions and ("delete", "complete") in actions
    final = next(r for r in receipts if r["action"] == "delete")
    assert final["count"] == 6 and len(final["subject_refs"]) == 1
    assert "alice" not in orjson.dumps(final).decode()
    assert not list((tmp_path / "state" / "journal").glob("*.json"))


class Crash:
    """Wraps a real connector; deletes for real, then 'loses power' (KeyboardInterrupt)."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def delete(self, subject: Subject, locations: Sequence[Location]) -> int:
        n: int = self._inner.delete(subject, locations)  # type: ignore[attr-defined]
        raise KeyboardInterrupt(f"crash after deleting {n}")


def test_interrupted_delete_resumes(tmp_path: Path, cfg: Config) -> None:
    """A run that dies after the ledger forgot the subject resumes from the journal and completes."""
    with open_workspace(cfg, write_log=True) as ws:
        seed(tmp_path, ws)
        assert ws.log is not None
        refs = ws.log.subject_refs("alice")
        ws.opened.connectors = [Crash(c) if c.name == "ledger" else c for c in ws.opened.connectors]  # type: ignore[misc]
        with pytest.raises(KeyboardInterrupt):
            dsar(ws, cfg).delete("alice", dry_run=False)
        journals = list((tmp_path / "state" / "journal").glob("*.json"))
        assert len(journals) == 1 and orjson.loads(journals[0].read_bytes())["refs"] == refs
        assert "alice" not in journals[0].name
        ws.opened.connectors = [getattr(c, "_inner", c) for c in ws.opened.connectors]
        again = dsar(ws, cfg).delete("alice", dry_run=False)
        assert again.resumed and again.outcome == "complete"
        final = [e.body for e in ws.log.entries(kind="dsar") if e.body and e.body["action"] == "delete"]
        assert final[-1]["subject_refs"] == refs
        twice = dsar(ws, cfg).delete("alice", dry_run=False)
        assert twice.outcome == "complete" and twice.total == 0 and not twice.resumed


def test_unreachable_store_never_complete(tmp_path: Path, make_config: Callable[[str], Config]) -> None:
    """A store that cannot be reached is named, and delete is 'incomplete', never 'complete'."""
    cfg = make_config(STORES + '[[data.connectors]]\nname = "cache"\ntype = "redis"\n'
                      'url = "redis://127.0.0.1:1/0"\n')
    _CONFIGS[tmp_path] = cfg
    with open_workspace(cfg, write_log=True) as ws:
        seed(tmp_path, ws)
        d = dsar(ws, cfg)
        found = d.find("alice")
        assert found.unreachable == ["cache"] and found.outcome == "unreachable"
        rep = d.delete("alice", dry_run=False)
        assert rep.outcome == "incomplete"
        cache = next(s for s in rep.stores if s.name == "cache")
        assert cache.verified is False and "unreachable" in (cache.error or "")
        assert ws.log is not None
        final = [e.body for e in ws.log.entries(kind="dsar") if e.body and e.body["action"] == "delete"]
        assert final[-1]["outcome"] == "incomplete" and final[-1]["attrs"]["unreachable"] == ["cache"]
    assert list((tmp_path / "state" / "journal").glob("*.json"))  # kept for the resume


def test_receipt_not_written_without_log(tmp_path: Path, make_config: Callable[[str], Config]) -> None:
    """With the ledger excluded, DSAR still works over the connectors (no receipt)."""
    cfg = make_config(STORES)
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"include_ledger": False})})
    (tmp_path / "datasets").mkdir()
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "alice.txt").write_text("a")
    with open_workspace(cfg, write_log=True) as ws:
        assert ws.log is None
        rep = dsar(ws, cfg).delete("alice", dry_run=False)
    assert rep.outcome == "complete" and rep.receipt_id is None and rep.total == 1


def test_incomplete_delete_keeps_lineage_for_resume(tmp_path: Path, cfg: Config) -> None:
    """A store failing mid-request leaves the lineage links, so the resumed run still finds the row only
    lineage knows, deletes it, and only then forgets the subject."""
    with open_workspace(cfg, write_log=True) as ws:
        seed(tmp_path, ws)
        d = dsar(ws, cfg)
        (tmp_path / "datasets").rename(tmp_path / "datasets.off")  # the volume is briefly unavailable
        first = d.delete("alice", [("email", "alice@example.com")], dry_run=False)
        assert first.outcome == "incomplete"
        assert ws.lineage.subject_nodes("alice") != []
        (tmp_path / "datasets.off").rename(tmp_path / "datasets")
        again = d.delete("alice", [("email", "alice@example.com")], dry_run=False)
        assert again.resumed and again.outcome == "complete"
        train = next(s for s in again.stores if s.name == "train")
        assert sorted((loc.detail, loc.how) for loc in train.locations) == [
            ("e1", "subject"), ("e2", "discovery"), ("e4", "lineage")]
        assert ws.lineage.subject_nodes("alice") == []
    kept = (tmp_path / "datasets" / "train.jsonl").read_bytes().splitlines()
    assert [orjson.loads(x)["id"] for x in kept] == ["e3"]


def test_dataset_lineage_marked_by_row_key_only(cfg: Config) -> None:
    """Deleting a row marks its lineage node by row key, never by line number (line 2 is not row "2")."""
    (cfg.root / "uploads").mkdir()
    (cfg.root / "datasets").mkdir()
    f = (cfg.root / "datasets" / "train.jsonl").resolve()
    f.write_bytes(orjson.dumps({"id": "2", "text": "summary derived from a CRM ticket"}) + b"\n"
                  + orjson.dumps({"id": "7", "subject_id": "alice", "text": "hello"}) + b"\n")
    with open_workspace(cfg, write_log=True) as ws:
        ws.lineage.record("example", store="train", collection=str(f), locator="2", subjects=["bob"])
        ws.lineage.record("example", store="train", collection=str(f), locator="7", subjects=["alice"])
        d = dsar(ws, cfg)
        assert d.delete("alice", dry_run=False).outcome == "complete"
        assert [(n.locator, n.deleted_us is None) for n in ws.lineage.subject_nodes("bob")] == [("2", True)]
        bob = d.delete("bob", dry_run=False)
        assert bob.outcome == "complete" and {s.name: s.deleted for s in bob.stores}["train"] == 1
    assert f.read_bytes() == b""
