"""Fixtures for gateway integration tests: two fake upstreams and a harness around a real SQLite ledger."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.testclient import TestClient

from soc2ai.testing.gateway import Harness, gateway_toml
from soc2ai.testing.upstream import FakeUpstream


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Harness]:
    """Two fake upstreams (``up`` and ``backup``) and a place for a ledger."""
    with FakeUpstream(name="up") as up, FakeUpstream(name="backup") as backup:
        h = Harness(tmp_path, up, backup)
        yield h
        for log in h.logs:
            log.close()


@pytest.fixture
def gateway(env: Harness) -> Iterator[Callable[..., tuple[TestClient, Any, list[dict[str, Any]]]]]:
    """``make(answer, pipeline, gateway="", anthropic_provider=False, model="model-a")`` → (client, log,
    bodies sent upstream): alias ``m`` served by provider ``up`` as ``model``, an ``httpx.MockTransport``
    answering ``answer(body)`` (the upstream's JSON or an ``httpx.Response``); with ``anthropic_provider``
    ``up`` is an Anthropic provider. The client sends the key both as bearer token and ``x-api-key``."""
    from soc2ai.config import parse_config

    clients: list[TestClient] = []

    def make(answer: Callable[[dict[str, Any]], Any], pipeline: Any, gateway: str = "",
             anthropic_provider: bool = False, model: str = "model-a") -> tuple[TestClient, Any, list[dict[str, Any]]]:
        sent: list[dict[str, Any]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            body = orjson.loads(request.content)
            sent.append(body)
            out = answer(body)
            return out if isinstance(out, httpx.Response) else httpx.Response(200, json=out)

        text = gateway_toml(env.tmp, {"up": env.up.url, "backup": env.backup.url}, {"m": [f"up:{model}"]}, gateway)
        if anthropic_provider:
            text = text.replace('kind = "openai_compatible"', 'kind = "anthropic"', 1)
        app, log, keys = env.app(parse_config(text, root=env.tmp), pipeline=pipeline,
                                 transport=httpx.MockTransport(handler))
        secret, _ = keys.create(role="inference", user_id="u")
        client = TestClient(app, raise_server_exceptions=False,
                            headers={"authorization": f"Bearer {secret}", "x-api-key": secret})
        client.__enter__()
        clients.append(client)
        return client, log, sent

    yield make
    for c in clients:
        c.__exit__(None, None, None)
