"""Bad input gets a 4xx in the right error shape, never a traceback; schemathesis finds no 5xx."""

from __future__ import annotations

import os
from typing import Any

import pytest
from starlette.testclient import TestClient

from soc2ai.testing.gateway import Harness, inference_records


@pytest.fixture
def client_key(env: Harness) -> Any:
    """A TestClient on a gateway with a 4 KiB body limit, and an inference key."""
    app, log, keys = env.app(env.config(gateway="max_body_bytes = 4096"))
    secret, _ = keys.create(role="inference", user_id="u")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, secret, log


BAD_BODIES: list[tuple[str, bytes, int, str | None]] = [
    ("invalid-json", b"{not json", 400, "invalid_json"),
    ("bad-utf8", b'{"model": "m", "messages": [{"role": "user", "content": "\xff\xfe"}]}', 400, "invalid_json"),
    ("array-body", b"[1, 2]", 400, "invalid_json"),
    ("empty-body", b"", 400, "invalid_json"),
    ("no-model", b'{"messages": [{"role": "user", "content": "x"}]}', 400, None),
    ("model-not-string", b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}', 400, None),
    ("no-messages", b'{"model": "m"}', 400, None),
    ("messages-not-list", b'{"model": "m", "messages": "hi"}', 400, None),
    ("bad-role", b'{"model": "m", "messages": [{"role": "wizard", "content": "x"}]}', 400, None),
    ("content-number", b'{"model": "m", "messages": [{"role": "user", "content": 5}]}', 400, None),
    ("stream-string", b'{"model": "m", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}', 400,
     None),
    ("temperature-string", b'{"model": "m", "temperature": "hot", "messages": [{"role": "user", "content": "x"}]}',
     400, None),
    ("max-tokens-negative", b'{"model": "m", "max_tokens": -1, "messages": [{"role": "user", "content": "x"}]}',
     400, None),
    ("huge", b'{"model": "m", "messages": [{"role": "user", "content": "' + b"a" * 10_000 + b'"}]}', 413,
     "request_too_large"),
    ("nested-too-deep", b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": '
     + b"[" * 300 + b"]" * 300 + b"}", 400, "invalid_json"),
    ("tools-not-list", b'{"model": "m", "tools": {}, "messages": [{"role": "user", "content": "x"}]}', 400, None),
    ("tool-without-name", b'{"model": "m", "tools": [{"type": "function", "function": {}}], '
     b'"messages": [{"role": "user", "content": "x"}]}', 400, None),
    ("tool-choice-list", b'{"model": "m", "tool_choice": ["auto"], "messages": [{"role": "user", "content": "x"}]}',
     400, None),
]


@pytest.mark.parametrize("name,raw,status,code", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_chat_bodies(client_key: Any, name: str, raw: bytes, status: int, code: str | None) -> None:
    """Malformed, mistyped and oversized bodies: the right 4xx in the OpenAI shape, recorded."""
    client, secret, log = client_key
    r = client.post("/v1/chat/completions", content=raw,
                    headers={"authorization": f"Bearer {secret}", "content-type": "application/json"})
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert "Traceback" not in r.text
    if code:
        assert err["code"] == code
    recs = inference_records(log)
    assert len(recs) == 1 and recs[0]["status"] == status


def test_huge_body_without_content_length(client_key: Any) -> None:
    """A chunked body over the limit is cut off at the limit (413), not read to the end."""
    client, secret, _log = client_key

    def gen() -> Any:
        yield b'{"model": "m", "messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"a" * 1000
        yield b'"}]}'

    r = client.post("/v1/chat/completions", content=gen(), headers={"authorization": f"Bearer {secret}"})
    assert r.status_code == 413


def test_anthropic_endpoint_bad_input_shape(client_key: Any) -> None:
    """/v1/messages answers bad input in the Anthropic error shape."""
    client, secret, _log = client_key
    r = client.post("/v1/messages", json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
                    headers={"x-api-key": secret})
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    r = client.post("/v1/messages", json={"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "image", "source": {}}]}]}, headers={"x-api-key": secret})
    assert r.status_code == 400 and r.json()["type"] == "error"


def test_unknown_path_and_method(client_key: Any) -> None:
    """Unknown paths and wrong methods are 404/405 in the OpenAI shape."""
    client, _secret, _log = client_key
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and "error" in r.json()
    r = client.get("/v1/chat/completions")
    assert r.status_code == 405 and "error" in r.json()


def test_upstream_4xx_is_passed_through_in_shape(env: Harness) -> None:
    """An upstream 400 is returned (not retried on the backup) with the upstream's message."""
    app, log, keys = env.app(env.config())
    secret, _ = keys.create(role="inference", user_id="u")
    env.up.set(mode="status", status=400)
    with TestClient(app) as client:
        r = client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
                        headers={"authorization": f"Bearer {secret}"})
    assert r.status_code == 400 and "fake upstream error 400" in r.json()["error"]["message"]
    assert env.backup.calls == []
    assert inference_records(log)[0]["fallback_path"] == ["up:model-a=400"]


def test_health_ready_metrics_openapi(env: Harness) -> None:
    """healthz, readyz (upstreams reachable), Prometheus metrics and the OpenAPI document are served."""
    app, _log, keys = env.app(env.config())
    secret, _ = keys.create(role="inference", user_id="u")
    with TestClient(app) as client:
        client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
                    headers={"authorization": f"Bearer {secret}"})
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        metrics = client.get("/metrics").text
        doc = client.get("/openapi.json").json()
    assert ready.status_code == 200 and ready.json()["checks"]["ledger"] == "ok"
    assert 'soc2ai_gateway_requests_total{endpoint="chat.completions",status="200"} 1' in metrics
    assert "soc2ai_gateway_request_duration_seconds_bucket" in metrics
    assert "soc2ai_ledger_queue_depth" in metrics and "soc2ai_ledger_spool_pending" in metrics
    assert "/v1/chat/completions" in doc["paths"]


def test_metrics_breaker_gauge_is_valid_exposition(env: Harness) -> None:
    """The per-provider breaker gauge is one metric family: HELP and TYPE name it once, without labels
    (labels there, or a repeated TYPE, make a Prometheus scrape reject the whole page)."""
    app, _log, _keys = env.app(env.config())
    with TestClient(app) as client:
        metrics = client.get("/metrics").text
    family = "soc2ai_gateway_breaker_open"
    assert metrics.count(f"# TYPE {family} gauge\n") == 1
    assert metrics.count(f"# HELP {family} ") == 1
    assert f'{family}{{provider="up"}} 0.0' in metrics and f'{family}{{provider="backup"}} 0.0' in metrics
    for line in metrics.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            assert "{" not in line.split(" ")[2], line


def test_readyz_reports_unreachable_upstream(env: Harness) -> None:
    """/readyz is 503 when an alias has no reachable provider."""
    cfg = env.config(models={"dead": ["up:x"]})
    app, _log, _keys = env.app(cfg)
    env.up.stop()
    with TestClient(app) as client:
        r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["aliases_without_provider"] == ["dead"]


def test_schemathesis_finds_no_server_errors(env: Harness) -> None:
    """Fuzz every operation of the OpenAPI document with a valid key: no 5xx, errors always JSON.
    SOC2AI_FUZZ_EXAMPLES raises the examples per operation (25 in CI) for a longer local run."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    app, _log, keys = env.app(env.config(gateway="max_body_bytes = 65536",
                                         tables="[gateway.rate_limit]\nrequests_per_minute = 1000000"))
    secret, _ = keys.create(role="inference", user_id="fuzz")
    failures: list[str] = []
    statuses: list[int] = []
    with TestClient(app, raise_server_exceptions=False) as client:
        schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
        for op_result in schema.get_all_operations():
            op = op_result.ok()
            if op.path in ("/readyz",):
                continue

            @settings(max_examples=int(os.environ.get("SOC2AI_FUZZ_EXAMPLES", "25")), deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy())
            def check(case: Any) -> None:
                kwargs = case.as_transport_kwargs(base_url="http://testserver",
                                                  headers={"authorization": f"Bearer {secret}"})
                kwargs.pop("cookies", None)
                r = client.request(**kwargs)
                statuses.append(r.status_code)
                if r.status_code >= 500:
                    failures.append(f"{case.method} {case.path} -> {r.status_code}: {r.text[:200]}")
                if r.status_code >= 400:
                    assert r.headers["content-type"].startswith("application/json")

            check()
    assert failures == []
    assert len(statuses) > 100 and 200 in statuses and any(400 <= s < 500 for s in statuses)


ANTHROPIC_OK = {"id": "m1", "type": "message", "role": "assistant", "model": "claude",
                "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                "usage": {"input_tokens": 1, "output_tokens": 1}}


@pytest.mark.parametrize(("field", "value"), [
    ("logprobs", True), ("top_logprobs", 3), ("frequency_penalty", 0.5), ("presence_penalty", -1),
    ("logit_bias", {"50256": -100}), ("modalities", ["text", "audio"]), ("reasoning_effort", "high"),
    ("functions", [{"name": "f", "parameters": {"type": "object"}}]), ("function_call", "auto"),
    ("a_field_from_next_year", 1),
    ("tools", [{"type": "custom", "custom": {"name": "grammar"}}]),
])
def test_anthropic_provider_refuses_chat_fields_it_cannot_honour(gateway: Any, field: str, value: Any) -> None:
    """A chat field an Anthropic provider has no equivalent for is a 400 naming it, before anything is
    sent: dropping it would change the answer the client asked for (logprobs that never come, penalties
    not applied, legacy functions the model never sees)."""
    client, log, sent = gateway(lambda body: ANTHROPIC_OK, None, anthropic_provider=True, model="claude")
    r = client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}],
                                                  field: value})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] in (field, "tools[0]")
    assert sent == []
    assert [rec["status"] for rec in inference_records(log)] == [400]


def test_anthropic_provider_takes_neutral_and_attribution_fields_without_sending_them(gateway: Any) -> None:
    """Fields that do not change the answer (attribution, storage, seed) and neutral values of the others
    (logprobs false, zero penalties, no logit bias, text modality) are accepted and not sent."""
    client, _log, sent = gateway(lambda body: ANTHROPIC_OK, None, anthropic_provider=True, model="claude")
    extra = {"user": "u-1", "metadata": {"team": "a"}, "store": False, "seed": 7, "service_tier": "auto",
             "logprobs": False, "frequency_penalty": 0, "presence_penalty": 0.0, "logit_bias": {},
             "modalities": ["text"], "prompt_cache_key": "k"}
    r = client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}],
                                                  "temperature": 0.1, **extra})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "ok"
    assert len(sent) == 1 and not set(extra) & set(sent[0]) and sent[0]["temperature"] == 0.1


def test_anthropic_provider_refuses_tool_choice_it_cannot_take(gateway: Any) -> None:
    """A chat request for an Anthropic provider whose tool_choice names no function is a 400, not a crash
    in the translation; a message without content is sent as an empty one."""
    client, log, sent = gateway(lambda body: ANTHROPIC_OK, None, anthropic_provider=True, model="claude")
    bad = client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}],
                                                    "tool_choice": {"type": "function", "function": "f"}})
    empty = client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user"}]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "tool_choice"
    assert empty.status_code == 200 and len(sent) == 1
    assert [r["status"] for r in inference_records(log)] == [400, 200]


def test_proof_index_must_be_a_plain_integer(env: Harness) -> None:
    """Unicode digits and absurdly long indexes are a 400, not a crash."""
    app, _log, keys = env.app(env.config())
    secret, _ = keys.create(role="auditor", user_id="a")
    with TestClient(app, raise_server_exceptions=False, headers={"authorization": f"Bearer {secret}"}) as client:
        codes = [client.get(f"/admin/proof/{raw}").status_code for raw in ("\u00b2", "1" * 5000, "-1")]
    assert codes == [400, 400, 400]


def test_embeddings_upstream_invalid_json_is_502(env: Harness) -> None:
    """An upstream that answers embeddings with something other than a JSON object: 502 upstream_error."""
    import httpx

    app, log, keys = env.app(env.config(), transport=httpx.MockTransport(
        lambda request: httpx.Response(200, content=b"<html>oops</html>")))
    secret, _ = keys.create(role="inference", user_id="u")
    with TestClient(app, raise_server_exceptions=False, headers={"authorization": f"Bearer {secret}"}) as client:
        r = client.post("/v1/embeddings", json={"model": "m", "input": "hello"})
    assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_error"
    assert inference_records(log)[0]["status"] == 502
