"""Fallback chains and circuit breakers against fake upstreams that fail, time out, drop, or return 429/5xx."""

from __future__ import annotations

import re
from typing import Any

import openai
import pytest
from starlette.testclient import TestClient

from soc2ai.gateway.routing import explain
from soc2ai.testing.gateway import Harness, inference_records
from soc2ai.testing.server import serve_in_thread
from soc2ai.testing.upstream import FakeUpstream

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000_000_000

    def __call__(self) -> int:
        return self.now


def _chat(client: TestClient, secret: str, body: dict[str, Any] | None = None) -> Any:
    return client.post("/v1/chat/completions", json=body or CHAT, headers={"authorization": f"Bearer {secret}"})


@pytest.mark.parametrize("failure", [{"mode": "status", "status": 503}, {"mode": "status", "status": 429},
                                     {"mode": "status", "status": 500}, {"mode": "drop"},
                                     {"delay_s": 3.0}])
def test_falls_back_on_failure(env: Harness, failure: dict[str, Any]) -> None:
    """5xx, 429, dropped connections and timeouts move the call to the next provider; the path is recorded."""
    app, log, keys = env.app(env.config())
    secret, _ = keys.create(role="inference", user_id="u")
    env.up.set(**failure)
    env.backup.set(reply="from backup")
    with TestClient(app) as client:
        r = _chat(client, secret)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "from backup"
    rec = inference_records(log)[0]
    assert rec["provider"] == "backup" and rec["model_served"] == "model-b"
    assert rec["fallback_path"][0].startswith("up:model-a=") and rec["fallback_path"][1] == "backup:model-b=200"
    reason = rec["fallback_path"][0].split("=", 1)[1]
    if failure.get("mode") == "drop":
        want = "connection-error"
    elif "delay_s" in failure:
        want = "timeout"
    else:
        want = str(failure["status"])
    assert reason == want


def test_all_fail_is_502_in_shape(env: Harness) -> None:
    """When every target fails the client gets 502 upstream_error, recorded with the whole path."""
    app, log, keys = env.app(env.config())
    secret, _ = keys.create(role="inference", user_id="u")
    env.up.set(mode="status", status=500)
    env.backup.set(mode="status", status=502)
    with TestClient(app) as client:
        r = _chat(client, secret)
    assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_error"
    assert inference_records(log)[0]["fallback_path"] == ["up:model-a=500", "backup:model-b=502"]


def test_circuit_breaker_opens_skips_and_probes(env: Harness) -> None:
    """After N failures the provider is skipped (no request sent), then probed after the reset time."""
    clock = _Clock()
    cfg = env.config(tables="[gateway.breaker]\nfailure_threshold = 3\nreset_after_s = 10")
    app, log, keys = env.app(cfg, clock=clock)
    secret, _ = keys.create(role="inference", user_id="u")
    env.up.set(mode="status", status=503)
    with TestClient(app) as client:
        for _ in range(3):
            assert _chat(client, secret).status_code == 200
        sent_before = len(env.up.calls)
        for _ in range(4):
            assert _chat(client, secret).status_code == 200
        assert len(env.up.calls) == sent_before  # open: skipped without a request
        metrics = client.get("/metrics").text
        env.up.set(mode="ok")
        clock.now += 11_000_000
        r = _chat(client, secret)  # half-open probe succeeds and closes the breaker
        assert r.status_code == 200 and len(env.up.calls) == sent_before + 1
        assert _chat(client, secret).json()["model"] == "model-a"
    paths = [r["fallback_path"] for r in inference_records(log)]
    assert paths[3][0] == "up:model-a=circuit-open"
    assert paths[-1] == ["up:model-a=200"]
    assert 'soc2ai_gateway_breaker_opened_total{provider="up"} 1' in metrics


def test_all_circuits_open_is_503(env: Harness) -> None:
    """With every provider's breaker open the gateway answers 503 without calling anyone."""
    cfg = env.config(models={"solo": ["up:model-a"]}, tables="[gateway.breaker]\nfailure_threshold = 1")
    app, _log, keys = env.app(cfg)
    secret, _ = keys.create(role="inference", user_id="u")
    env.up.set(mode="status", status=500)
    with TestClient(app) as client:
        assert _chat(client, secret, {**CHAT, "model": "solo"}).status_code == 502
        r = _chat(client, secret, {**CHAT, "model": "solo"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "upstream_unavailable"


def test_streaming_falls_back_before_first_byte(env: Harness) -> None:
    """A streaming request whose first provider is down is served by the next one."""
    app, log, keys = env.app(env.config())
    secret, _ = keys.create(role="inference", user_id="u")
    env.up.set(mode="status", status=503)
    env.backup.set(reply="streamed from backup")
    with serve_in_thread(app) as url, openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0) as c:
        text = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True) if ch.choices)
    assert text == "streamed from backup"
    assert inference_records(log)[0]["fallback_path"] == ["up:model-a=503", "backup:model-b=200"]


def test_explain_order_matches_observed_order(tmp_path: Any) -> None:
    """The order `soc2ai gateway --explain` prints is the order providers are tried when all fail."""
    ups = [FakeUpstream(name=f"p{i}").start() for i in range(3)]
    try:
        h = Harness(tmp_path, ups[0], ups[1])
        models = {"chain": ["p2:z", "p0:x", "p1:y"]}
        from soc2ai.config import parse_config
        from soc2ai.testing.gateway import gateway_toml

        cfg = parse_config(gateway_toml(tmp_path, {f"p{i}": u.url for i, u in enumerate(ups)}, models),
                           root=tmp_path)
        printed = re.findall(r"^\s+\d+\. (\S+)", explain(cfg.gateway), flags=re.M)
        for u in ups:
            u.set(mode="status", status=503)
        app, log, keys = h.app(cfg)
        secret, _ = keys.create(role="inference", user_id="u")
        with TestClient(app) as client:
            assert _chat(client, secret, {**CHAT, "model": "chain"}).status_code == 502
        observed = [p.split("=")[0] for p in inference_records(log)[0]["fallback_path"]]
        received = sorted((c for u in ups for c in u.calls), key=lambda c: c["t"])
        calls = [c["upstream"] + ":" + c["model"] for c in received]
    finally:
        for u in ups:
            u.stop()
    assert printed == ["p2:z", "p0:x", "p1:y"]
    assert observed == printed
    assert calls == printed
