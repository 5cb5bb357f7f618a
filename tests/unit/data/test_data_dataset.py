"""Dataset files: find rows, atomic rewrite without them, manifest, malformed rows, concurrent deletes."""

from __future__ import annotations

import csv
import json
import multiprocessing
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from soc2ai.data.connectors.dataset import DatasetConnector, Row
from soc2ai.data.connectors.interface import Expiry, Subject
from soc2ai.data.settings import ConnectorSettings
from soc2ai.errors import ConnectorError, VerificationError


def conn(path: Path) -> DatasetConnector:
    return DatasetConnector(ConnectorSettings(name="ds", type="dataset", path=str(path)), root=Path("/"))


def write_jsonl(path: Path, rows: list[object], extra: bytes = b"") -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows) + extra)


def sample_rows(n: int = 20) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [{"id": f"r{i}", "subject_id": "alice" if i % 5 == 0 else f"u{i}",
                                      "text": f"example {i}", "soc2ai_label": "internal",
                                      "soc2ai_expires_at": 100 if i == 1 else 10**12} for i in range(n)]
    rows[3]["text"] = "contact alice@example.com please"
    return rows


def test_find_by_field_and_discovery(tmp_path: Path) -> None:
    """Rows are found by subject field, and by an identifier mentioned in another row's text."""
    f = tmp_path / "train.jsonl"
    write_jsonl(f, sample_rows())
    locs = conn(f).find(Subject("alice", (("email", "alice@example.com"),)))
    assert {(loc.item_id, loc.how) for loc in locs} == {("1", "subject"), ("6", "subject"), ("11", "subject"),
                                                         ("16", "subject"), ("4", "discovery")}
    assert {loc.detail for loc in locs} >= {"r0", "r3"}


def test_find_by_lineage_row_key(tmp_path: Path) -> None:
    """A row recorded by lineage (by id) is found even without any identifier in it."""
    f = tmp_path / "t.jsonl"
    write_jsonl(f, sample_rows())
    subject = Subject("nobody", known={("ds", str(f)): frozenset({"r7"})})
    assert [(loc.item_id, loc.how) for loc in conn(f).find(subject)] == [("8", "lineage")]


def test_delete_rewrites_and_manifests(tmp_path: Path) -> None:
    """Delete removes exactly the subject's rows, keeps the rest byte-identical, writes a manifest."""
    f = tmp_path / "t.jsonl"
    rows = sample_rows()
    write_jsonl(f, rows)
    c = conn(f)
    subject = Subject("alice", (("email", "alice@example.com"),))
    assert c.delete(subject, c.find(subject)) == 5
    kept = [orjson.loads(line) for line in f.read_bytes().splitlines()]
    assert [r["id"] for r in kept] == [r["id"] for r in rows if r["id"] not in {"r0", "r3", "r5", "r10", "r15"}]
    manifest = orjson.loads((tmp_path / "t.jsonl.manifest.json").read_bytes())
    assert manifest[0]["rows_before"] == 20 and manifest[0]["rows_after"] == 15
    assert len(manifest[0]["removed_row_sha256"]) == 5
    c.verify_deleted(subject)
    assert c.delete(subject, []) == 0  # idempotent


def test_malformed_rows_reported_rest_processed(tmp_path: Path) -> None:
    """A broken line is reported with file and line, kept, and the other rows still processed."""
    f = tmp_path / "t.jsonl"
    write_jsonl(f, sample_rows(6), extra=b'{"id": "bad", "subject_id": "bob"\n[1, 2]\n')
    c = conn(f)
    locs = c.find(Subject("alice", (("email", "alice@example.com"),)))
    assert [loc.item_id for loc in locs] == ["1", "4", "6"]  # row 4 mentions alice@...
    assert any(note.startswith(f"{f}:7: malformed JSON") for note in c.notes)
    assert any(note.startswith(f"{f}:8: row is not a JSON object") for note in c.notes)
    # An identifier inside a malformed row is still found (as text) and deleted.
    bob = Subject("bob")
    assert [(loc.item_id, loc.how) for loc in c.find(bob)] == [("7", "discovery")]
    assert c.delete(bob, c.find(bob)) == 1
    assert b"bob" not in f.read_bytes()
    assert b"[1, 2]" in f.read_bytes()


def test_csv_and_parquet(tmp_path: Path) -> None:
    """CSV and Parquet datasets are found and rewritten the same way."""
    rows = sample_rows(10)
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("id,subject_id,text\n" + "".join(f"{r['id']},{r['subject_id']},{r['text']}\n" for r in rows)
                        + "broken,row\n")
    pq_path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), pq_path)
    c = conn(tmp_path)
    subject = Subject("alice", (("email", "alice@example.com"),))
    found = c.find(subject)
    assert sorted((Path(loc.collection).name, loc.item_id) for loc in found) == [
        ("d.csv", "2"), ("d.csv", "5"), ("d.csv", "7"), ("d.parquet", "1"), ("d.parquet", "4"), ("d.parquet", "6")]
    assert any("d.csv:12: 2 fields" in n for n in c.notes)
    assert c.delete(subject, found) == 6
    assert pq.read_table(pq_path).num_rows == 7
    assert "alice" not in csv_path.read_text()
    assert "broken,row" in csv_path.read_text()
    c.verify_deleted(subject)


def _delete_worker(path: str, subject: str) -> int:
    c = conn(Path(path))
    s = Subject(subject)
    return c.delete(s, c.find(s))


def test_concurrent_deletes_do_not_corrupt(tmp_path: Path) -> None:
    """Two processes deleting (the same and another subject) at once leave a valid file without either."""
    f = tmp_path / "big.jsonl"
    rows = [{"id": i, "subject_id": ("alice" if i % 7 == 0 else "bob" if i % 11 == 0 else f"u{i}"),
             "text": "x" * 50} for i in range(20_000)]
    write_jsonl(f, rows)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(3) as pool:
        results = pool.starmap(_delete_worker, [(str(f), "alice"), (str(f), "alice"), (str(f), "bob")])
    alice = sum(1 for r in rows if r["subject_id"] == "alice")
    bob = sum(1 for r in rows if r["subject_id"] == "bob")
    assert sorted(results) == sorted([alice, 0, bob])
    kept = [orjson.loads(line) for line in f.read_bytes().splitlines()]
    assert len(kept) == len(rows) - alice - bob
    assert all(r["subject_id"] not in ("alice", "bob") for r in kept)


def test_expire_and_census(tmp_path: Path) -> None:
    """Retention drops rows past soc2ai_expires_at; census counts unlabelled rows."""
    f = tmp_path / "t.jsonl"
    rows = sample_rows(5)
    del rows[4]["soc2ai_label"]
    write_jsonl(f, rows)
    c = conn(f)
    assert c.expire(Expiry(1000), dry_run=True) == {"internal": 1}
    assert len(f.read_bytes().splitlines()) == 5
    assert c.expire(Expiry(1000), dry_run=False) == {"internal": 1}
    assert len(f.read_bytes().splitlines()) == 4
    (census,) = c.census()
    assert (census.total, census.unlabelled) == (4, 1)


def test_row_key_stable() -> None:
    """Row keys use the id field, else a content hash."""
    assert Row(1, {"id": 5}, b"{}").key() == "5"
    assert Row(1, {"x": 1}, b'{"x":1}\n').key() == Row(9, None, b'{"x":1}').key()


def test_delete_keeps_longer_addresses_of_others(tmp_path: Path) -> None:
    """ann@example.com does not match jo.ann@, mary-ann@ or ann@example.com.au: their rows stay."""
    f = tmp_path / "train.jsonl"
    write_jsonl(f, [{"id": "r1", "subject_id": "ann", "text": "hi, ann@example.com here"},
                    {"id": "r2", "subject_id": "joann", "text": "reach me at jo.ann@example.com"},
                    {"id": "r3", "subject_id": "bob", "text": "bob at ann@example.com.au"},
                    {"id": "r4", "subject_id": "mary", "text": "mary-ann@example.com wrote"}])
    c = conn(f)
    s = Subject("ann", (("email", "ann@example.com"),))
    assert [loc.detail for loc in c.find(s)] == ["r1"]
    assert c.delete(s, c.find(s)) == 1
    assert [orjson.loads(x)["id"] for x in f.read_bytes().splitlines()] == ["r2", "r3", "r4"]


def test_numeric_id_matches_string_values_only(tmp_path: Path) -> None:
    """Subject "1042" is not another row's "id": 1042 or "max_tokens": 1042 (nor a key); text mentions count."""
    f = tmp_path / "train.jsonl"
    write_jsonl(f, [{"id": 1, "subject_id": "1042", "text": "my order"},
                    {"id": 1042, "subject_id": "77", "text": "unrelated person"},
                    {"id": 3, "subject_id": "78", "text": "ok", "max_tokens": 1042, "1042": "key"},
                    {"id": 4, "subject_id": "79", "text": "customer 1042 called"}])
    c = conn(f)
    s = Subject("1042")
    assert [(loc.detail, loc.how) for loc in c.find(s)] == [("1", "subject"), ("4", "discovery")]
    assert c.delete(s, c.find(s)) == 2
    assert [orjson.loads(x)["id"] for x in f.read_bytes().splitlines()] == [1042, 3]


def test_escaped_text_is_found(tmp_path: Path) -> None:
    """Identifiers after an escaped newline and \\u-escaped (json.dumps default) rows are found and deleted."""
    f = tmp_path / "train.jsonl"
    rows = [{"id": "r1", "subject_id": "zo\u00eb", "text": "hello"},
            {"id": "r2", "subject_id": "u2", "text": "Ask Jos\u00e9 N\u00fa\u00f1ez, he knows"},
            {"id": "r3", "subject_id": "u3", "messages": [{"role": "user", "content": "regards\nann@example.com"}]},
            {"id": "r4", "subject_id": "u4", "text": "nothing here"}]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))  # ensure_ascii: zo\u00eb
    c = conn(f)
    assert [loc.detail for loc in c.find(Subject("zo\u00eb"))] == ["r1"]
    assert [loc.detail for loc in c.find(Subject("x", (("name", "Jos\u00e9 N\u00fa\u00f1ez"),)))] == ["r2"]
    ann = Subject("u-77", (("email", "ann@example.com"),))
    assert [(loc.detail, loc.how) for loc in c.find(ann)] == [("r3", "discovery")]
    with pytest.raises(VerificationError):
        c.verify_deleted(Subject("zo\u00eb"))
    assert c.delete(Subject("zo\u00eb"), c.find(Subject("zo\u00eb"))) == 1
    assert c.delete(ann, c.find(ann)) == 1
    c.verify_deleted(Subject("zo\u00eb"))
    assert [orjson.loads(x)["id"] for x in f.read_bytes().splitlines()] == ["r2", "r4"]


def test_case_variants_found(tmp_path: Path) -> None:
    """Ann@Example.com is the same address as ann@example.com (CSV, Parquet and JSONL alike)."""
    text = "Please email Ann@Example.COM about the refund"
    write_jsonl(tmp_path / "t.jsonl", [{"id": "r1", "subject_id": "u9", "text": text}])
    (tmp_path / "t.csv").write_text(f"id,subject_id,text\nc1,u9,{text}\n")
    pq.write_table(pa.Table.from_pylist([{"id": "p1", "subject_id": "u9", "text": text}]), tmp_path / "t.parquet")
    s = Subject("ann", (("email", "ann@example.com"),))
    c = conn(tmp_path)
    assert sorted(loc.detail for loc in c.find(s)) == ["c1", "p1", "r1"]
    assert c.delete(s, c.find(s)) == 3
    c.verify_deleted(s)


def test_suffixes(tmp_path: Path) -> None:
    """.ndjson and upper-case suffixes are datasets; other files are noted, not silently skipped."""
    row = [{"id": "r1", "subject_id": "alice", "text": "hi"}]
    for name in ("a.ndjson", "b.JSONL", "c.jsonl", "d.CSV.txt"):
        write_jsonl(tmp_path / name, row)
    c = conn(tmp_path)
    assert sorted(Path(loc.collection).name for loc in c.find(Subject("alice"))) == ["a.ndjson", "b.JSONL", "c.jsonl"]
    assert c.notes == [f"{tmp_path / 'd.CSV.txt'}: unsupported dataset file type; not scanned"]
    assert any("d.CSV.txt" in n for n in c.census()[0].notes)
    single = conn(tmp_path / "a.ndjson")
    assert single.delete(Subject("alice"), single.find(Subject("alice"))) == 1
    single.verify_deleted(Subject("alice"))
    with pytest.raises(ConnectorError, match=r"ds: .*d\.CSV\.txt: unsupported dataset file type"):
        conn(tmp_path / "d.CSV.txt").find(Subject("alice"))


def test_unreadable_files_name_connector_and_file(tmp_path: Path) -> None:
    """A corrupt Parquet file or an unparseable CSV is a ConnectorError naming the store and the file."""
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1garbage")
    with pytest.raises(ConnectorError, match=rf"ds: cannot read {bad}: ArrowInvalid"):
        conn(bad).find(Subject("alice"))
    with pytest.raises(ConnectorError, match=rf"ds: cannot read {bad}"):
        list(conn(bad).rows(bad))
    big = tmp_path / "big.csv"
    big.write_text("id,text\n1," + "x" * 200_000 + "\n")  # over csv's default field size limit
    before = csv.field_size_limit(131_072)  # process-wide: another reader in this run may have raised it
    try:
        with pytest.raises(ConnectorError, match=rf"ds: cannot read {big}: Error: field larger"):
            conn(big).find(Subject("alice"))
    finally:
        csv.field_size_limit(before)
