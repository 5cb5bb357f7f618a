"""The lean upstream transport against the fake upstream: bodies, streams, pooling, errors, timeouts."""

from __future__ import annotations

import httpx
import orjson
import pytest

from soc2ai.gateway.transport import LeanTransport
from soc2ai.testing.server import free_port
from soc2ai.testing.upstream import FakeUpstream

BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})


async def test_plain_and_streamed_bodies_and_pooling() -> None:
    """Content-Length and chunked bodies are read whole; the connection is reused afterwards."""
    with FakeUpstream() as up:
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            r1 = await client.post(up.url + "/v1/chat/completions", content=BODY)
            r2 = await client.post(up.url + "/v1/chat/completions",
                                   content=orjson.dumps({"model": "m", "stream": True, "messages": []}))
            r3 = await client.get(up.url + "/v1/models")
        assert r1.status_code == 200 and r1.json()["choices"][0]["message"]["content"]
        assert r2.text.count("data: ") >= 3 and r2.text.rstrip().endswith("data: [DONE]")
        assert r3.json()["data"][0]["id"] == "fake-model"


async def test_stale_keepalive_connection_is_retried() -> None:
    """When the upstream restarted (pooled connection dead), the request is retried on a fresh one."""
    port = free_port()
    transport = LeanTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        with FakeUpstream(port=port) as up:
            assert (await client.post(up.url + "/v1/chat/completions", content=BODY)).status_code == 200
        with FakeUpstream(port=port) as up:
            assert (await client.post(up.url + "/v1/chat/completions", content=BODY)).status_code == 200


async def test_connect_error_and_read_timeout() -> None:
    """No listener is a ConnectError; a slow answer is a ReadTimeout."""
    async with httpx.AsyncClient(transport=LeanTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"http://127.0.0.1:{free_port()}/v1/chat/completions", content=BODY)
        with FakeUpstream() as up:
            up.set(delay_s=1.0)
            with pytest.raises(httpx.ReadTimeout):
                await client.post(up.url + "/v1/chat/completions", content=BODY, timeout=0.2)


async def test_dropped_connection_is_a_transport_error() -> None:
    """An upstream that closes without answering raises an httpx.TransportError."""
    with FakeUpstream() as up:
        up.set(mode="drop")
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            with pytest.raises(httpx.TransportError):
                await client.post(up.url + "/v1/chat/completions", content=BODY)
