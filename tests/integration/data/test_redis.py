"""Cached completions in a real Redis, written by the gateway's own RedisCache (its documented layout)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import redis

from soc2ai.data.connectors.interface import Expiry, Subject
from soc2ai.data.connectors.redis import RedisConnector
from soc2ai.data.settings import ConnectorSettings
from soc2ai.errors import ConnectorError
from soc2ai.gateway.cache import PREFIX, RedisCache

pytestmark = pytest.mark.redis


def fill(url: str) -> None:
    async def go() -> None:
        cache = RedisCache(url)
        for i in range(3):
            await cache.put(f"a{i}", f"answer {i}".encode(), subject_ref="ref-alice", classification="internal",
                            ttl_s=3600, now_us=1)
        await cache.put("b0", b"plain", subject_ref="ref-bob", classification="internal", ttl_s=3600, now_us=1)
        await cache.put("b1", b"forward to alice@example.com", subject_ref="ref-bob",
                        classification="confidential", ttl_s=3600, now_us=1)
        await cache.close()

    asyncio.run(go())
    r = redis.Redis.from_url(url)
    r.set(PREFIX + "legacy", b"untracked copy for alice@example.com")  # no subject_ref, no label
    r.set(PREFIX + "old", orjson.dumps({"soc2ai_label": "internal", "soc2ai_expires_at": 5, "response": "x"}))
    r.set("other:app:key", b"alice@example.com")  # outside the prefix: not ours
    r.close()


def connector(url: str) -> RedisConnector:
    return RedisConnector(ConnectorSettings(name="cache", type="redis", url=url))


ALICE = Subject("alice", (("email", "alice@example.com"),), refs=("ref-alice",))


def test_find_by_index_and_discovery(redis_url: str) -> None:
    """The subject's index set finds the gateway's entries; the value scan finds untracked copies."""
    fill(redis_url)
    c = connector(redis_url)
    found = {loc.item_id: loc.how for loc in c.find(ALICE)}
    assert found == {PREFIX + "a0": "subject", PREFIX + "a1": "subject", PREFIX + "a2": "subject",
                     PREFIX + "subject:ref-alice": "subject", PREFIX + "b1": "discovery",
                     PREFIX + "legacy": "discovery"}
    exported = list(c.export(c.find(ALICE)))
    assert {e["key"] for e in exported} == set(found) - {PREFIX + "subject:ref-alice"}
    assert any(e["value"] == "untracked copy for alice@example.com" for e in exported)
    c.close()


def test_delete_then_verify(redis_url: str) -> None:
    """Delete removes the entries and the index; Bob's other entry and foreign keys stay."""
    fill(redis_url)
    c = connector(redis_url)
    assert c.delete(ALICE, c.find(ALICE)) == 6
    c.verify_deleted(ALICE)
    r = redis.Redis.from_url(redis_url)
    assert r.exists(PREFIX + "b0") and r.exists("other:app:key")
    assert r.sismember(PREFIX + "subject:ref-bob", "b0")
    r.close()
    c.close()


def test_retention_and_census(redis_url: str) -> None:
    """Values past soc2ai_expires_at go; census counts values without a label or classification."""
    fill(redis_url)
    c = connector(redis_url)
    (census,) = c.census()
    assert (census.total, census.unlabelled) == (7, 1)
    assert c.expire(Expiry(100), dry_run=True) == {"internal": 1}
    assert c.expire(Expiry(100), dry_run=False) == {"internal": 1}
    assert c.census()[0].total == 6
    c.close()


def test_unreachable() -> None:
    """A Redis nobody listens on is a ConnectorError naming the store."""
    with pytest.raises(ConnectorError, match="cache: Redis unreachable"):
        connector("redis://127.0.0.1:1/0")


def test_discovery_decodes_cached_json(redis_url: str) -> None:
    """The gateway stores the upstream body as a JSON string inside JSON: an address after an escaped
    newline in it is found, in any case; numbers and longer addresses are not matches."""
    async def go() -> None:
        cache = RedisCache(redis_url)
        body = orjson.dumps({"choices": [{"message": {"content": "Thanks, regards\nAnn@Example.com"}}],
                             "usage": {"total_tokens": 1042}})
        await cache.put("n1", body, subject_ref=None, classification="internal", ttl_s=3600, now_us=1)
        await cache.put("n2", b'{"content":"mail jo.ann@example.com"}', subject_ref=None,
                        classification="internal", ttl_s=3600, now_us=1)
        await cache.close()

    asyncio.run(go())
    c = connector(redis_url)
    ann = Subject("u-77", (("email", "ann@example.com"),))
    assert [(loc.item_id, loc.how) for loc in c.find(ann)] == [(PREFIX + "n1", "discovery")]
    assert c.find(Subject("1042")) == []
    assert c.delete(ann, c.find(ann)) == 1
    c.verify_deleted(ann)
    c.close()
