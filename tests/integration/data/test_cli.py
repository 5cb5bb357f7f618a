"""The data commands end to end, as a user runs them: `python -m soc2ai ...` on a real project directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from soc2ai.config import load_config
from soc2ai.data.classify import Classifier
from soc2ai.data.connectors.chroma import open_client
from soc2ai.data.runtime import open_lineage
from soc2ai.ledger import AuditLog
from soc2ai.ledger.keys import generate_keys

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TOML = """
[project]
name = "clitest"
[ledger]
store = "sqlite:///.soc2ai/audit.db"
keys_dir = ".soc2ai/keys"
spool_dir = ".soc2ai/spool"
witness_dir = ".soc2ai/witness"
batch_ms = 1
[data.classification.sources]
crm = "confidential"
[[data.connectors]]
name = "train"
type = "dataset"
path = "datasets"
[[data.connectors]]
name = "uploads"
type = "files"
path = "uploads"
[[data.connectors]]
name = "vectors"
type = "chroma"
path = "chroma"
"""


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOC2AI_")}
    return subprocess.run([sys.executable, "-m", "soc2ai", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    return orjson.loads(proc.stdout)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with alice in the ledger, a dataset, uploads, a Chroma collection and lineage."""
    (tmp_path / "soc2ai.toml").write_text(TOML)
    config = load_config(tmp_path / "soc2ai.toml")
    generate_keys(config.path(config.ledger.keys_dir), "clitest")
    with AuditLog.open(config) as log:
        log.log_inference(user_id="alice", model_id="m", prompt="hi", response="yo", latency_us=3,
                          input_tokens=1, output_tokens=1)
        log.flush()
    (tmp_path / "datasets").mkdir()
    rows = [{"id": "e1", "subject_id": "alice", "text": "q"}, {"id": "e2", "subject_id": "bob", "text": "q2"}]
    train = tmp_path / "datasets" / "train.jsonl"
    train.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "ticket.txt").write_text("from alice@example.com: refund please")
    col = open_client(tmp_path / "chroma").get_or_create_collection("docs", embedding_function=None)
    with open_lineage(config) as lin:
        c = Classifier(config.data, sources=None, content=lambda _t: {"pii"}, lineage=lin)
        doc = c.ingest("ticket from alice", source="crm", subject_ids=["alice"])
        chunk = lin.record("chunk", parents=[doc.lineage_id])
        lin.record("embedding", id="emb1", parents=[chunk], store="vectors", collection="docs", locator="v1")
        bob = c.ingest("bob's doc", source="crm", subject_ids=["bob"])
        lin.record("example", id="ex-bob", parents=[bob.lineage_id], store="train", collection=str(train.resolve()),
                   locator="e2")
        col.add(ids=["v1", "v2"], embeddings=[[0.1, 0.2], [0.3, 0.4]], documents=["chunk a", "chunk b"],
                metadatas=[doc.metadata(), {"subject_id": "bob"}])
    return tmp_path


def test_find_delete_prove(project: Path) -> None:
    """One command finds everything; one deletes it, proves it, and the receipt is in the ledger."""
    found = run(project, "dsar", "find", "--subject", "alice", "--identifier", "email=alice@example.com", "--json")
    assert found.returncode == 0, found.stderr
    stores = {s["name"]: s for s in as_json(found)["stores"]}
    assert {k: v["count"] for k, v in stores.items()} == {"ledger": 1, "train": 1, "uploads": 1, "vectors": 1}
    assert stores["vectors"]["locations"][0]["how"] in ("subject", "lineage")
    dry = run(project, "dsar", "delete", "--subject", "alice", "--identifier", "email=alice@example.com")
    assert dry.returncode == 0 and "dry run" in dry.stdout
    assert (project / "uploads" / "ticket.txt").exists()
    done = run(project, "dsar", "delete", "--subject", "alice", "--identifier", "email=alice@example.com",
               "--yes", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = as_json(done)
    assert report["outcome"] == "complete" and all(s["verified"] for s in report["stores"])
    after = run(project, "dsar", "find", "--subject", "alice", "--identifier", "email=alice@example.com")
    assert after.returncode == 0 and "No data found for this subject" in after.stdout
    with AuditLog.open(load_config(project / "soc2ai.toml"), read_only=True) as log:
        receipts = [e.body for e in log.entries(kind="dsar") if e.body]
        log.verify()
    actions = [(r["action"], r["outcome"]) for r in receipts]
    assert actions == [("find", "found"), ("forget", "shredded"), ("delete", "complete"), ("find", "nothing_found")]


def test_export_bundle(project: Path) -> None:
    """dsar export writes the bundle directory with a manifest."""
    out = project / "bundle"
    proc = run(project, "dsar", "export", "--subject", "alice", "--identifier", "email=alice@example.com",
               "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    # uploads: the ticket mentions alice@example.com, found by discovery of the e-mail identifier.
    assert set(manifest["files"]) == {"ledger.jsonl", "train.jsonl", "uploads.jsonl", "vectors.jsonl"}


def test_lineage_trace_and_show(project: Path) -> None:
    """A dataset row traces back to its source document; show lists where a document went."""
    proc = run(project, "lineage", "trace", "--dataset", "datasets/train.jsonl", "--row", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    trace = as_json(proc)["traces"][0]
    assert trace["node"]["id"] == "ex-bob"
    assert [n["kind"] for n in trace["came_from"]] == ["document"]
    missing = run(project, "lineage", "trace", "--dataset", "datasets/train.jsonl", "--row", "1")
    assert missing.returncode == 1 and "no lineage recorded" in missing.stdout
    show = run(project, "lineage", "show", "emb1", "--json")
    assert {n["kind"] for n in as_json(show)["came_from"]} == {"chunk", "document"}


def test_check_and_retention(project: Path) -> None:
    """data check flags unlabelled collections (exit 1); retention dry run counts without deleting."""
    check = run(project, "data", "check", "--json")
    assert check.returncode == 1
    rows = {(c["store"], Path(c["collection"]).name): c for c in as_json(check)["collections"]}
    assert rows[("train", "train.jsonl")]["unlabelled"] == 2
    assert rows[("vectors", "docs")]["unlabelled"] == 1
    ret = run(project, "retention", "run", "--dry-run", "--json")
    assert ret.returncode == 0, ret.stderr
    assert as_json(ret)["dry_run"] is True
    real = run(project, "retention", "run", "--json")
    assert real.returncode == 0 and as_json(real)["receipt_id"]


def test_bad_input_and_unreachable(project: Path) -> None:
    """A malformed --identifier is a usage error; an unreachable store makes find exit 1 naming it."""
    bad = run(project, "dsar", "find", "--subject", "alice", "--identifier", "nonsense")
    assert bad.returncode == 2
    toml = (project / "soc2ai.toml").read_text() + ('[[data.connectors]]\nname = "cache"\ntype = "redis"\n'
                                                    'url = "redis://127.0.0.1:1/0"\n')
    (project / "soc2ai.toml").write_text(toml)
    proc = run(project, "dsar", "delete", "--subject", "alice", "--yes", "--json")
    assert proc.returncode == 1
    report = as_json(proc)
    assert report["outcome"] == "incomplete" and report["unreachable"] == ["cache"]
