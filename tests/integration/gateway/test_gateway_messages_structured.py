"""Structured outputs and the other request fields of /v1/messages: ``output_config.format`` (and the older
``output_format``) becomes ``response_format`` for OpenAI-style upstreams and ``output_config.format`` again
for Anthropic providers, its prose is screened on the way, and fields the gateway cannot translate are
refused with a 400 naming them instead of being dropped."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import orjson
import pytest
from pydantic import BaseModel
from starlette.testclient import TestClient

from soc2ai.testing.gateway import Harness, inference_records
from soc2ai.testing.scanners import KeywordPipeline
from soc2ai.testing.server import serve_in_thread

ASK = [{"role": "user", "content": "where is the order?"}]
SCHEMA = {"type": "object", "additionalProperties": False, "required": ["city"],
          "properties": {"city": {"type": "string", "description": "the city it ships to"}}}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA}}
CARD = "4111 1111 1111 1111"
ANTHROPIC_ANSWER = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
                    "content": [{"type": "text", "text": '{"city": "Oslo"}'}], "stop_reason": "end_turn",
                    "usage": {"input_tokens": 3, "output_tokens": 4}}


class City(BaseModel):
    city: str


def _post(client: TestClient, **body: Any) -> httpx.Response:
    return client.post("/v1/messages", json={"model": "m", "max_tokens": 50, "messages": ASK, **body})


@pytest.fixture
def messages_client(env: Harness) -> Iterator[tuple[TestClient, Any]]:
    """A TestClient on /v1/messages (x-api-key) before the fake OpenAI-style upstream ``env.up``."""
    app, log, keys = env.app(env.config())
    secret, _ = keys.create(role="inference", user_id="u")
    with TestClient(app, raise_server_exceptions=False, headers={"x-api-key": secret}) as client:
        yield client, log


@pytest.fixture
def anthropic_provider(gateway: Any) -> Callable[..., tuple[TestClient, Any, list[dict[str, Any]]]]:
    """``make(pipeline=None)`` → (client, log, bodies sent): alias ``m`` served by an Anthropic provider
    answering ``ANTHROPIC_ANSWER``."""
    return lambda pipeline=None: gateway(lambda body: ANTHROPIC_ANSWER, pipeline, anthropic_provider=True,
                                         model="claude")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_output_config_format_reaches_openai_upstream_as_response_format(env: Harness, stream: bool) -> None:
    """The anthropic SDK's structured outputs (``messages.parse(output_format=Model)`` sends
    ``output_config.format``; a dict schema goes there directly) reach an OpenAI-style upstream as
    ``response_format`` json_schema, and the JSON answer parses; harmless fields (``metadata``,
    ``service_tier``, ``thinking`` disabled) are accepted and not forwarded."""
    app, log, keys = env.app(env.config())
    secret, _ = keys.create(role="inference", user_id="u")
    env.up.set(reply='{"city": "Oslo"}')
    with serve_in_thread(app) as url, anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0) as client:
        if stream:
            with client.messages.stream(model="m", max_tokens=50, messages=ASK,  # type: ignore[arg-type]
                                        output_config={"format": {"type": "json_schema", "schema": SCHEMA}},
                                        metadata={"user_id": "u-1"}, service_tier="auto",
                                        thinking={"type": "disabled"}) as s:
                text = s.get_final_text()
            assert json.loads(text) == {"city": "Oslo"}
        else:
            parsed = client.messages.parse(model="m", max_tokens=50, messages=ASK,  # type: ignore[arg-type]
                                           output_format=City, metadata={"user_id": "u-1"})
            assert parsed.parsed_output == City(city="Oslo")
    body = env.up.calls[-1]["body"]
    rf = body["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["name"] == "output"
    schema = rf["json_schema"]["schema"]
    assert schema["properties"]["city"]["type"] == "string" and schema["required"] == ["city"]
    if stream:
        assert rf == RESPONSE_FORMAT
    assert not {"output_config", "output_format", "metadata", "service_tier", "thinking"} & set(body)
    assert [r["status"] for r in inference_records(log)] == [200]


def test_older_output_format_field_is_translated_too(env: Harness, messages_client: Any) -> None:
    """The older beta spelling ``output_format`` (top level) becomes the same ``response_format``."""
    client, _log = messages_client
    r = _post(client, output_format={"type": "json_schema", "schema": SCHEMA})
    assert r.status_code == 200, r.text
    assert env.up.calls[-1]["body"]["response_format"] == RESPONSE_FORMAT


def test_output_config_format_reaches_anthropic_provider_as_output_config(anthropic_provider: Any) -> None:
    """/v1/messages → chat → an Anthropic provider: the schema arrives as ``output_config.format`` (the
    current API field), the answer comes back as its text block. A chat client's ``response_format``
    json_schema takes the same way; ``json_object`` has no Anthropic equivalent and is a 400, as is
    ``n`` > 1 (one choice would come back)."""
    client, log, sent = anthropic_provider()
    r = _post(client, output_config={"format": {"type": "json_schema", "schema": SCHEMA}})
    assert r.status_code == 200, r.text
    assert r.json()["content"] == [{"type": "text", "text": '{"city": "Oslo"}'}]
    assert sent[0]["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "response_format" not in sent[0] and "output_format" not in sent[0]
    chat = client.post("/v1/chat/completions", json={"model": "m", "messages": ASK, "response_format": RESPONSE_FORMAT})
    assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"] == '{"city": "Oslo"}'
    assert sent[1]["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    refused = client.post("/v1/chat/completions", json={"model": "m", "messages": ASK,
                                                        "response_format": {"type": "json_object"}})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "response_format"
    several = client.post("/v1/chat/completions", json={"model": "m", "messages": ASK, "n": 2})
    assert several.status_code == 400 and several.json()["error"]["param"] == "n"
    assert len(sent) == 2
    assert [rec["status"] for rec in inference_records(log)] == [200, 200, 400, 400]


BAD_FORMATS: list[tuple[str, dict[str, Any], str]] = [
    ("config-not-object", {"output_config": "json"}, "output_config"),
    ("format-not-object", {"output_config": {"format": "json"}}, "output_config.format"),
    ("format-wrong-type", {"output_config": {"format": {"type": "json_object"}}}, "output_config.format"),
    ("schema-missing", {"output_config": {"format": {"type": "json_schema"}}}, "output_config.format"),
    ("schema-not-object", {"output_config": {"format": {"type": "json_schema", "schema": "{}"}}},
     "output_config.format"),
    ("format-extra-key", {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA, "strict": True}}},
     "output_config.format.strict"),
    ("old-format-bad", {"output_format": {"type": "json_schema", "schema": []}}, "output_format"),
    ("both-spellings", {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
                        "output_format": {"type": "json_schema", "schema": SCHEMA}}, "output_format"),
]


@pytest.mark.parametrize("name,extra,param", BAD_FORMATS, ids=[b[0] for b in BAD_FORMATS])
def test_malformed_output_format_is_a_400_in_anthropic_shape(env: Harness, messages_client: Any, name: str,
                                                             extra: dict[str, Any], param: str) -> None:
    """A malformed structured-output value: 400 ``invalid_request_error`` in the Anthropic shape, its
    message naming the param; nothing sent upstream; recorded."""
    client, log = messages_client
    r = _post(client, **extra)
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith(param + " ") or f" {param} " in body["error"]["message"]
    assert env.up.calls == []
    assert [rec["status"] for rec in inference_records(log)] == [400]


def test_schema_description_redacted_before_openai_upstream(env: Harness) -> None:
    """With soc2ai.scan's pipeline (the defaults, plus ``EMAIL_ADDRESS = "redact"``, since PII in a prompt
    is only flagged by default) a credential and an e-mail address pasted into the schema's descriptions
    are redacted before the upstream sees them; the structure is unchanged."""
    from soc2ai.gateway.app import create_app

    cfg = env.config(tables='[scan.policy.pre]\nEMAIL_ADDRESS = "redact"\n')
    log = env.log(cfg)
    app = create_app(cfg, log=log, keys=env.keys(cfg, log))
    secret, _ = app.state.gateway.keys.create(role="inference", user_id="u")
    key = "AKIA" + "IOSFODNN7EXAMPLQ"
    schema = {"type": "object", "required": ["city"], "description": f"Use access key {key} to look it up.",
              "properties": {"city": {"type": "string", "description": "ask jane.doe@example.com if unsure"}}}
    with TestClient(app, headers={"x-api-key": secret}) as client:
        r = _post(client, output_config={"format": {"type": "json_schema", "schema": schema}})
    assert r.status_code == 200, r.text
    sent = env.up.calls[-1]["body"]["response_format"]["json_schema"]["schema"]
    text = orjson.dumps(sent).decode()
    assert key not in text and "jane.doe@example.com" not in text
    assert sent["required"] == ["city"] and sent["properties"]["city"]["type"] == "string"
    assert sent["description"].startswith("Use access key ")
    rec = inference_records(log)[0]
    assert rec["flagged"] is True and any(s["stage"] == "pre" for s in rec["scans"])


def test_schema_description_redacted_or_blocked_before_anthropic_provider(anthropic_provider: Any) -> None:
    """The same with a KeywordPipeline and an Anthropic provider: the redacted schema is what arrives in
    ``output_config.format``; a blocking finding there refuses the request before anything is sent."""
    schema = {"type": "object", "properties": {"card": {"type": "string", "description": f"like {CARD}",
                                                        "examples": [CARD]}}}
    client, log, sent = anthropic_provider(KeywordPipeline(redact=[CARD]))
    r = _post(client, output_config={"format": {"type": "json_schema", "schema": schema}})
    assert r.status_code == 200, r.text
    out = sent[0]["output_config"]["format"]["schema"]
    assert CARD not in orjson.dumps(sent[0]).decode()
    assert out["properties"]["card"] == {"type": "string", "description": "like [REDACTED]", "examples": ["[REDACTED]"]}
    assert inference_records(log)[0]["flagged"] is True
    blocking, _, blocked_sent = anthropic_provider(KeywordPipeline(block=[CARD]))
    r2 = _post(blocking, output_format={"type": "json_schema", "schema": schema})
    assert r2.status_code == 400 and r2.json()["type"] == "error" and blocked_sent == []


REFUSED: list[tuple[str, dict[str, Any]]] = [
    ("output_config.effort", {"output_config": {"effort": "high"}}),
    ("output_config.task_budget", {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA},
                                                     "task_budget": {"type": "tokens", "total": 1000}}}),
    ("thinking", {"thinking": {"type": "enabled", "budget_tokens": 2048}}),
    ("thinking", {"thinking": {"type": "adaptive"}}),
    ("inference_geo", {"inference_geo": "eu"}),
    ("container", {"container": "container_1"}),
    ("mcp_servers", {"mcp_servers": [{"type": "url", "url": "https://mcp.example.com", "name": "x"}]}),
    ("context_management", {"context_management": {"edits": []}}),
    ("fallbacks", {"fallbacks": [{"model": "other"}]}),
    ("top_k", {"top_k": "five"}),
    ("tool_choice.disable_parallel_tool_use", {"tool_choice": {"type": "auto", "disable_parallel_tool_use": "yes"}}),
    ("tools[0].input_examples", {"tools": [{"name": "ship", "input_schema": SCHEMA,
                                            "input_examples": [{"city": "Oslo"}]}]}),
    ("tools[0].type", {"tools": [{"type": "bash_20250124", "name": "bash", "input_schema": SCHEMA}]}),
]


@pytest.mark.parametrize("param,extra", REFUSED, ids=[f"{r[0]}-{i}" for i, r in enumerate(REFUSED)])
def test_untranslatable_field_is_refused_naming_it(env: Harness, messages_client: Any, param: str,
                                                   extra: dict[str, Any]) -> None:
    """A field that would change the answer and cannot be translated (or is not known at all) is a 400
    naming it, in the Anthropic shape, instead of being dropped silently; nothing is sent upstream."""
    client, log = messages_client
    r = _post(client, **extra)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "error" and param in r.json()["error"]["message"]
    assert env.up.calls == []
    assert [rec["status"] for rec in inference_records(log)] == [400]


def test_sampling_and_tool_fields_are_translated(env: Harness, messages_client: Any,
                                                 anthropic_provider: Any) -> None:
    """``top_k``, ``tool_choice.disable_parallel_tool_use`` and strict tools (``tools[].strict``) reach an
    OpenAI-style upstream as ``top_k``, ``parallel_tool_calls`` and ``function.strict``, and an Anthropic
    provider as they were sent."""
    tool = {"name": "ship", "description": "ship it", "strict": True, "input_schema": SCHEMA}
    extra = {"top_k": 5, "tools": [tool], "tool_choice": {"type": "any", "disable_parallel_tool_use": True}}
    client, _log = messages_client
    assert _post(client, **extra).status_code == 200
    body = env.up.calls[-1]["body"]
    assert body["top_k"] == 5 and body["parallel_tool_calls"] is False and body["tool_choice"] == "required"
    assert body["tools"][0]["function"]["strict"] is True
    a_client, _, sent = anthropic_provider()
    assert _post(a_client, **extra).status_code == 200
    assert sent[0]["top_k"] == 5 and sent[0]["tools"] == [tool]
    assert sent[0]["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_tool_cache_control_is_accepted_and_not_forwarded(env: Harness, messages_client: Any) -> None:
    """``cache_control`` on a tool is a caching hint: the request is served, and the hint is not sent to an
    OpenAI-style upstream (which has no such field)."""
    client, _log = messages_client
    tool = {"type": "custom", "name": "ship", "input_schema": SCHEMA, "cache_control": {"type": "ephemeral"}}
    assert _post(client, tools=[tool]).status_code == 200
    assert env.up.calls[-1]["body"]["tools"] == [{"type": "function",
                                                   "function": {"name": "ship", "parameters": SCHEMA}}]
