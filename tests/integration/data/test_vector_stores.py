"""Each embedding store, for real: PostgreSQL (pgvector layout, float8[]), Chroma, Qdrant local, LanceDB.

One contract for all: find by subject field / identifier metadata / text discovery / lineage id, export
without the vectors, delete, verify, retention by soc2ai_expires_at, census of unlabelled items.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from soc2ai.data.connectors import open_connector
from soc2ai.data.connectors.interface import Connector, Expiry, Subject
from soc2ai.data.settings import ConnectorSettings
from soc2ai.errors import ConnectorError, VerificationError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FAR = 10**12


def items() -> list[dict[str, Any]]:
    """Ten items: alice owns 1, 4, 7; 5 mentions her e-mail; 10 has it in metadata; 9 is lineage-only."""
    rng = random.Random(7)
    out = []
    for i in range(1, 11):
        meta: dict[str, Any] = {"subject_id": "alice" if i in (1, 4, 7) else f"user{i}",
                                "soc2ai_label": "confidential", "soc2ai_expires_at": FAR}
        if i == 2:
            del meta["soc2ai_label"]
        if i == 3:
            meta["soc2ai_label"], meta["soc2ai_expires_at"] = "internal", 100
        if i == 10:
            meta["email"] = "alice@example.com"
        text = "contact alice@example.com about the refund" if i == 5 else f"chunk number {i}"
        out.append({"id": i, "text": text, "meta": meta, "vec": [rng.random() for _ in range(4)]})
    return out


def build_postgres(tmp: Path, pg_url: str, data: list[dict[str, Any]] | None = None) -> ConnectorSettings:
    import psycopg
    from psycopg.types.json import Jsonb

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE soc2ai_embeddings (id text PRIMARY KEY, embedding float8[] NOT NULL,"
                     " document text, metadata jsonb, subject_id text)")
        for it in data or items():
            conn.execute("INSERT INTO soc2ai_embeddings VALUES (%s, %s, %s, %s, %s)",
                         (str(it["id"]), it["vec"], it["text"], Jsonb(it["meta"]), it["meta"]["subject_id"]))
    return ConnectorSettings(name="pg", type="postgres", url=pg_url)


def build_chroma(tmp: Path, _pg: str, data: list[dict[str, Any]] | None = None) -> ConnectorSettings:
    from soc2ai.data.connectors.chroma import open_client

    client = open_client(tmp / "chroma")
    col = client.get_or_create_collection("docs", embedding_function=None)
    data = data or items()
    col.add(ids=[str(it["id"]) for it in data], embeddings=[it["vec"] for it in data],
            documents=[it["text"] for it in data], metadatas=[it["meta"] for it in data])
    return ConnectorSettings(name="chroma", type="chroma", path=str(tmp / "chroma"))


def build_qdrant(tmp: Path, _pg: str, data: list[dict[str, Any]] | None = None) -> ConnectorSettings:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(tmp / "qdrant"))
    client.create_collection("docs", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE))
    client.upsert("docs", points=[models.PointStruct(id=it["id"], vector=it["vec"],
                                                     payload={"document": it["text"], **it["meta"]})
                                  for it in data or items()])
    client.close()
    return ConnectorSettings(name="qdrant", type="qdrant", path=str(tmp / "qdrant"))


def build_lancedb(tmp: Path, _pg: str, data: list[dict[str, Any]] | None = None) -> ConnectorSettings:
    import lancedb
    import pyarrow as pa

    rows = [{"id": str(it["id"]), "vector": it["vec"], "document": it["text"],
             "subject_id": it["meta"]["subject_id"], "email": it["meta"].get("email"),
             "soc2ai_label": it["meta"].get("soc2ai_label"), "soc2ai_expires_at": it["meta"]["soc2ai_expires_at"]}
            for it in data or items()]
    schema = pa.schema([("id", pa.string()), ("vector", pa.list_(pa.float32(), 4)), ("document", pa.string()),
                        ("subject_id", pa.string()), ("email", pa.string()), ("soc2ai_label", pa.string()),
                        ("soc2ai_expires_at", pa.int64())])
    lancedb.connect(str(tmp / "lance")).create_table("docs", data=pa.Table.from_pylist(rows, schema=schema))
    return ConnectorSettings(name="lance", type="lancedb", path=str(tmp / "lance"))


BUILDERS: dict[str, Callable[..., ConnectorSettings]] = {
    "postgres": build_postgres, "chroma": build_chroma, "qdrant": build_qdrant, "lancedb": build_lancedb}


STORES = [pytest.param("postgres", marks=pytest.mark.postgres), "chroma", "qdrant", "lancedb"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Connector]:
    """A real store of the given type, filled with items(), opened through the connector factory."""
    pg = request.getfixturevalue("pg_url") if request.param == "postgres" else ""
    settings = BUILDERS[request.param](tmp_path, pg)
    conn = open_connector(settings, root=tmp_path)
    yield conn
    conn.close()


def alice(conn: Connector) -> Subject:
    return Subject("alice", (("email", "alice@example.com"),), known={(conn.name, "docs"): frozenset({"9"}),
                                                                        (conn.name, "soc2ai_embeddings"):
                                                                        frozenset({"9"})})


def test_find(store: Connector) -> None:
    """Subject field, identifier in metadata, identifier in text, and lineage id are all found."""
    found = {loc.item_id: loc.how for loc in store.find(alice(store))}
    assert set(found) == {"1", "4", "7", "5", "9", "10"}
    assert found["1"] == "subject" and found["5"] == "discovery" and found["9"] == "lineage"
    assert store.find(Subject("zed")) == []


def test_export_has_text_not_vectors(store: Connector) -> None:
    """Export returns the stored text and metadata of each item and no embedding."""
    out = list(store.export(store.find(alice(store))))
    assert len(out) == 6
    blob = repr(out)
    assert "alice@example.com about the refund" in blob
    assert all(not {"embedding", "vector", "embeddings"} & set(o) for o in out)


def test_delete_and_verify(store: Connector) -> None:
    """Delete removes exactly the subject's items; verify passes; delete again is a no-op."""
    subject = alice(store)
    with pytest.raises(VerificationError):
        store.verify_deleted(subject)
    assert store.delete(subject, store.find(subject)) == 6
    store.verify_deleted(subject)
    assert store.delete(subject, store.find(subject)) == 0
    (census,) = store.census()
    assert census.total == 4


def test_retention_and_census(store: Connector) -> None:
    """Expired items go (a dry run only counts them); census counts the unlabelled item."""
    (before,) = store.census()
    assert (before.total, before.unlabelled) == (10, 1)
    assert store.expire(Expiry(1_000), dry_run=True) == {"internal": 1}
    assert store.census()[0].total == 10
    assert store.expire(Expiry(1_000), dry_run=False) == {"internal": 1}
    assert store.census()[0].total == 9


def test_missing_store_is_connector_error(tmp_path: Path) -> None:
    """A store directory that does not exist is reported as a ConnectorError, not a crash."""
    for kind in ("chroma", "qdrant", "lancedb"):
        with pytest.raises(ConnectorError, match="does not exist"):
            open_connector(ConnectorSettings(name="x", type=kind, path=str(tmp_path / "nope")),  # type: ignore[arg-type]
                           root=tmp_path)


@pytest.mark.postgres
def test_postgres_unreachable() -> None:
    """A PostgreSQL URL nobody listens on is a ConnectorError naming the store."""
    with pytest.raises(ConnectorError, match="pgx: PostgreSQL unreachable"):
        open_connector(ConnectorSettings(name="pgx", type="postgres", url="postgresql://u@127.0.0.1:1/db"),
                       root=Path("/"))


@pytest.mark.parametrize("kind", STORES)
def test_discovery_ignores_case_not_boundaries(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Every store finds Ann@Example.COM for ann@example.com, and none finds jo.ann@ or ann@example.com.au."""
    texts = {1: "Please email Ann@Example.COM about the refund", 2: "reach me at jo.ann@example.com",
             3: "bob at ann@example.com.au", 4: "regards ANN@EXAMPLE.COM."}
    data = [{"id": i, "text": t, "vec": [0.1, 0.2, 0.3, 0.4],
             "meta": {"subject_id": f"u{i}", "soc2ai_label": "internal", "soc2ai_expires_at": FAR}}
            for i, t in texts.items()]
    pg = request.getfixturevalue("pg_url") if kind == "postgres" else ""
    conn = open_connector(BUILDERS[kind](tmp_path, pg, data), root=tmp_path)
    try:
        subject = Subject("ann", (("email", "ann@example.com"),))
        assert sorted((loc.item_id, loc.how) for loc in conn.find(subject)) == [("1", "discovery"), ("4", "discovery")]
        assert conn.delete(subject, conn.find(subject)) == 2
        conn.verify_deleted(subject)
        assert conn.census()[0].total == 2
    finally:
        conn.close()
