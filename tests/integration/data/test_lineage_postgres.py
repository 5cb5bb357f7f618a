"""The lineage store in PostgreSQL (the ledger's database when the ledger lives there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from soc2ai.data.lineage import LineageStore, load_or_create_key

pytestmark = pytest.mark.postgres


def test_graph_in_postgres(pg_url: str, tmp_path: Path) -> None:
    """Record, walk up and down, subject ownership and forgetting work the same as on SQLite."""
    with LineageStore.open(pg_url, key=load_or_create_key(tmp_path / "lineage.key")) as s:
        s.record("source", id="s1")
        s.record("document", id="d1", parents=["s1"], subjects=["ann"])
        s.record("embedding", id="e1", parents=["d1"], store="pg", collection="t", locator="42")
        assert {n.id for n in s.ancestors("e1")} == {"d1", "s1"}
        assert {n.id for n in s.subject_nodes("ann")} == {"d1", "e1"}
        assert s.by_locator("pg", "t", "42")[0].id == "e1"
        assert s.mark_deleted("pg", "t", ["42"]) == 1
        assert s.forget_subject("ann") == 1 and s.subject_nodes("ann") == []
