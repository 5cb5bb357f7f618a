"""Tool-call arguments a provider sends as a JSON object instead of the spec's string: the SDKs keep the
object (they build responses without validating), and the wrapper screens and redacts it as its JSON
text instead of skipping it."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai

from soc2ai.instrument import instrument
from soc2ai.testing.gateway import inference_records
from soc2ai.testing.scanners import KeywordPipeline

MSG: Any = [{"role": "user", "content": "pay"}]
CALL = {"id": "call_1", "type": "function", "function": {"name": "pay", "arguments": {"card": "secret-4242"}}}


def _client(payload: bytes, content_type: str) -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": content_type}, content=payload)

    return openai.OpenAI(base_url="http://upstream.test/v1", api_key="x", max_retries=0,
                         http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))


def test_object_arguments_are_screened(world: Any) -> None:
    """A JSON answer: the object arguments come back redacted, as a JSON string; a chat stream and a
    Responses answer with object arguments are post-screened (flagged) rather than skipped."""
    _up, log, _h = world
    pipe = KeywordPipeline(redact=["secret"])
    answer = {"id": "c1", "object": "chat.completion", "created": 0, "model": "m", "choices": [
        {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
                                                                  "tool_calls": [CALL]}}]}
    with _client(json.dumps(answer).encode(), "application/json") as client:
        instrument(client, log=log, user_id="ada", pipeline=pipe)
        r = client.chat.completions.create(model="m", messages=MSG)
    assert json.loads(r.choices[0].message.tool_calls[0].function.arguments) == {"card": "[REDACTED]-4242"}
    chunk = {"id": "c2", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [
        {"index": 0, "delta": {"role": "assistant", "tool_calls": [{"index": 0, **CALL}]}, "finish_reason": "tool_calls"}]}
    with _client(b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n", "text/event-stream") as client:
        instrument(client, log=log, user_id="ada", pipeline=pipe)
        for _ in client.chat.completions.create(model="m", messages=MSG, stream=True):
            pass
    response = {"id": "resp_1", "object": "response", "created_at": 0, "model": "m", "status": "completed",
                "output": [{"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "pay",
                            "arguments": {"card": "secret-4242"}, "status": "completed"}],
                "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}
    with _client(json.dumps(response).encode(), "application/json") as client:
        instrument(client, log=log, user_id="ada", pipeline=pipe)
        resp = client.responses.create(model="m", input="pay")
    assert json.loads(resp.output[0].arguments) == {"card": "[REDACTED]-4242"}
    recs = inference_records(log)
    assert [r["flagged"] for r in recs] == [True, True, True]


def test_object_arguments_in_the_history_leave_the_callers_messages_as_they_were(world: Any) -> None:
    """History tool calls with object arguments are screened (and redacted) as their JSON text without
    changing the caller's messages: the caller keeps its history, and reads it as it wrote it."""
    _up, log, _h = world
    sent: list[Any] = []
    answer = {"id": "c1", "object": "chat.completion", "created": 0, "model": "m", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]}

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(json.loads(request.content))
        return httpx2.Response(200, headers={"content-type": "application/json"}, content=json.dumps(answer).encode())

    history: Any = [*MSG, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "done"},
                    {"role": "assistant", "content": None, "function_call": {**CALL["function"]}},
                    {"role": "function", "name": "pay", "content": "done"}]
    before = json.loads(json.dumps(history))
    for finds in ("secret", "nothing-to-find"):
        with openai.OpenAI(base_url="http://upstream.test/v1", api_key="x", max_retries=0,
                           http_client=httpx2.Client(transport=httpx2.MockTransport(handler))) as client:
            instrument(client, log=log, user_id="ada", pipeline=KeywordPipeline(redact=[finds]))
            client.chat.completions.create(model="m", messages=history)
    assert "secret" not in json.dumps(sent[0])
    assert json.loads(sent[0]["messages"][1]["tool_calls"][0]["function"]["arguments"]) == {"card": "[REDACTED]-4242"}
    assert json.loads(sent[0]["messages"][3]["function_call"]["arguments"]) == {"card": "[REDACTED]-4242"}
    assert history == before and sent[1]["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"card": "secret-4242"}
    assert [r["flagged"] for r in inference_records(log)] == [True, False]


def test_escaped_arguments_cannot_hide_a_value(world: Any) -> None:
    """Arguments whose JSON spells the value with \\u escapes (the same JSON value) are screened decoded:
    the escape does not hide the keyword, and the redacted arguments still parse."""
    _up, log, _h = world
    escaped = '{"card": "\\u0073ecret-4242"}'
    assert json.loads(escaped) == {"card": "secret-4242"}
    call = {**CALL, "function": {"name": "pay", "arguments": escaped}}
    answer = {"id": "c1", "object": "chat.completion", "created": 0, "model": "m", "choices": [
        {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
                                                                  "tool_calls": [call]}}]}
    with _client(json.dumps(answer).encode(), "application/json") as client:
        instrument(client, log=log, user_id="ada", pipeline=KeywordPipeline(redact=["secret"]))
        r = client.chat.completions.create(model="m", messages=MSG)
    assert json.loads(r.choices[0].message.tool_calls[0].function.arguments) == {"card": "[REDACTED]-4242"}
    assert inference_records(log)[0]["flagged"] is True


def test_escaped_arguments_in_responses_history_are_screened_decoded(world: Any) -> None:
    """A Responses ``function_call`` item given back as input, its arguments spelling the value with \\u
    escapes: screened decoded and redacted; a clean item goes out exactly as the caller wrote it."""
    up, log, _h = world
    escaped = '{"card": "\\u0073ecret-4242"}'
    clean = '{"city": "\\u004fslo"}'
    items: Any = [{"type": "function_call", "call_id": "c1", "name": "pay", "arguments": escaped},
                  {"type": "function_call_output", "call_id": "c1", "output": "paid"},
                  {"type": "function_call", "call_id": "c2", "name": "weather", "arguments": clean},
                  {"type": "function_call_output", "call_id": "c2", "output": "sunny"},
                  {"role": "user", "content": "thanks"}]
    with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as client:
        instrument(client, log=log, user_id="ada", pipeline=KeywordPipeline(redact=["secret"]))
        client.responses.create(model="m", input=items)
    sent = up.calls[-1]["body"]["input"]
    assert json.loads(sent[0]["arguments"]) == {"card": "[REDACTED]-4242"}
    assert sent[2]["arguments"] == clean and items[0]["arguments"] == escaped  # the caller's items unchanged
    assert inference_records(log)[0]["flagged"] is True
