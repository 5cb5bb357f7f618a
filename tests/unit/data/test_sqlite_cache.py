"""The gateway's embedded completion cache, written by the gateway's own SqliteCache, as a DSAR store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson

from soc2ai.config import Config
from soc2ai.data.connectors.interface import Expiry, Subject
from soc2ai.data.connectors.sqlite_cache import SqliteCacheConnector
from soc2ai.data.runtime import gateway_cache, open_connectors
from soc2ai.data.settings import ConnectorSettings
from soc2ai.gateway.cache import SqliteCache


def fill(path: Path) -> None:
    async def go() -> None:
        cache = SqliteCache(path)
        await cache.put("h1", b"hello ann", subject_ref="ref-ann", classification="internal", ttl_s=60, now_us=10)
        await cache.put("h2", b"hi again", subject_ref="ref-ann", classification="confidential", ttl_s=60,
                        now_us=10)
        await cache.put("h3", b"mail ann@example.com", subject_ref="ref-bob", classification="internal",
                        ttl_s=60, now_us=10)
        await cache.put("h4", b"unrelated", subject_ref="ref-bob", classification="internal", ttl_s=1, now_us=10)
        await cache.close()

    asyncio.run(go())


def test_find_delete_verify(tmp_path: Path) -> None:
    """Rows by subject_ref and by identifier in the response are found, deleted, and proven gone."""
    fill(tmp_path / "cache.db")
    c = SqliteCacheConnector(ConnectorSettings(name="gw", type="sqlite_cache", path="cache.db"), root=tmp_path)
    ann = Subject("ann", (("email", "ann@example.com"),), refs=("ref-ann",))
    found = {loc.item_id: loc.how for loc in c.find(ann)}
    assert found == {"h1": "subject", "h2": "subject", "h3": "discovery"}
    assert {e["response"] for e in c.export(c.find(ann))} == {"hello ann", "hi again", "mail ann@example.com"}
    assert c.delete(ann, c.find(ann)) == 3
    c.verify_deleted(ann)
    (census,) = c.census()
    assert (census.total, census.unlabelled) == (1, 0)
    assert c.expire(Expiry(2), dry_run=False) == {"internal": 1}
    c.close()


def test_gateway_cache_joins_dsar(tmp_path: Path, make_config: Callable[[str], Config]) -> None:
    """With [gateway.cache] on, the cache is a DSAR store without extra configuration."""
    cfg = make_config('[gateway.cache]\nbackend = "sqlite"\npath = "cache.db"\n')
    assert gateway_cache(cfg) == []  # nothing cached yet
    fill(tmp_path / "cache.db")
    opened = open_connectors(cfg)
    assert [c.name for c in opened.connectors] == ["gateway-cache"] and not opened.unreachable
    opened.close()
    off = cfg.model_copy(update={"data": cfg.data.model_copy(update={"include_gateway_cache": False})})
    assert gateway_cache(off) == []


def test_response_matched_on_decoded_json(tmp_path: Path) -> None:
    """A cached JSON body is matched on its decoded strings: after an escaped newline, in any case."""
    async def go() -> None:
        cache = SqliteCache(tmp_path / "cache.db")
        body = orjson.dumps({"choices": [{"message": {"content": "Thanks, regards\nAnn@Example.com"}}],
                             "usage": {"total_tokens": 1042}})
        await cache.put("h1", body, subject_ref=None, classification="internal", ttl_s=60, now_us=10)
        await cache.put("h2", b'{"content":"jo.ann@example.com"}', subject_ref=None, classification="internal",
                        ttl_s=60, now_us=10)
        await cache.close()

    asyncio.run(go())
    c = SqliteCacheConnector(ConnectorSettings(name="gw", type="sqlite_cache", path="cache.db"), root=tmp_path)
    assert [(loc.item_id, loc.how) for loc in c.find(Subject("u-77", (("email", "ann@example.com"),)))] == [
        ("h1", "discovery")]
    assert c.find(Subject("1042")) == []  # a token count is not a mention of subject 1042
    c.close()
