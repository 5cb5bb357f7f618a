"""Several choices (``n`` > 1) on /v1/chat/completions: every choice is post-screened like a single answer,
streamed or not, and the audit record's output hash covers all of them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import openai
import orjson
import pytest
from starlette.testclient import TestClient

from soc2ai.testing.gateway import Harness as Env
from soc2ai.testing.gateway import inference_records
from soc2ai.testing.scanners import KeywordPipeline
from soc2ai.testing.server import serve_in_thread

ASK: Any = [{"role": "user", "content": "make a plan"}]
CLEAN, LEAKY = "all clear here", "the secret plan"


@contextmanager
def served(env: Env, pipeline: Any, mode: str = "buffer") -> Iterator[tuple[openai.OpenAI, Any]]:
    """(openai client against a served gateway, its ledger); the fake upstream answers choice 0 with CLEAN
    and choice 1 with LEAKY. Read the records after the block: the server has stopped, so the record
    written after the response (on the next loop turn) is in the ledger."""
    app, log, keys = env.app(env.config(gateway=f'stream_mode = "{mode}"'), pipeline=pipeline)
    secret, _ = keys.create(role="inference", user_id="nina")
    env.up.set(replies=(CLEAN, LEAKY))
    with serve_in_thread(app) as url, openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0) as client:
        yield client, log


def _streamed(client: openai.OpenAI, **kw: Any) -> tuple[dict[int, str], dict[int, str | None], list[str]]:
    """(text per choice index, finish_reason per index, every chunk as JSON) of a streamed n=2 call."""
    texts: dict[int, str] = {}
    finish: dict[int, str | None] = {}
    raw: list[str] = []
    for chunk in client.chat.completions.create(model="m", messages=ASK, n=2, stream=True, **kw):
        raw.append(chunk.model_dump_json())
        for ch in chunk.choices:
            texts[ch.index] = texts.get(ch.index, "") + (ch.delta.content or "")
            finish[ch.index] = ch.finish_reason or finish.get(ch.index)
    return texts, finish, raw


def _output_matches(log: Any, rec: dict[str, Any], response: Any) -> bool:
    return bool(log.match(log.find(rec["id"]) or 0, response=response).response)


def test_each_choice_is_redacted_on_its_own(env: Env) -> None:
    """Only choice 1 carries the secret: it is redacted, choice 0 comes back as it was, the record is
    flagged and its output hash is over both (screened) choices."""
    with served(env, KeywordPipeline(redact=["secret"])) as (client, log):
        r = client.chat.completions.create(model="m", messages=ASK, n=2)
    assert [c.message.content for c in r.choices] == [CLEAN, "the [REDACTED] plan"]
    assert [c.index for c in r.choices] == [0, 1]
    assert env.up.calls[0]["body"]["n"] == 2
    rec = inference_records(log)[0]
    assert rec["status"] == 200 and rec["flagged"] is True and rec["finish_reason"] == "stop"
    assert [s["stage"] for s in rec["scans"]] == ["post"]
    assert _output_matches(log, rec, [CLEAN, "the [REDACTED] plan"])


def test_default_pipeline_redacts_pii_in_the_second_choice(env: Env) -> None:
    """The default scanners and policy (output PII is redacted) apply to every choice."""
    from soc2ai.gateway.screening import build_default_pipeline

    cfg = env.config()
    app, log, keys = env.app(cfg, pipeline=build_default_pipeline(cfg))
    secret, _ = keys.create(role="inference", user_id="omar")
    email = "jane.doe@example.com"
    env.up.set(replies=("The capital of France is Paris.", f"Write to {email} for the details."))
    with serve_in_thread(app) as url, openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0) as client:
        r = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "capital of France?"}],
                                           n=2)
    first, second = (c.message.content or "" for c in r.choices)
    assert first == "The capital of France is Paris."
    assert email not in second and second.startswith("Write to ")
    rec = inference_records(log)[0]
    assert rec["flagged"] is True and any(s["stage"] == "post" for s in rec["scans"])


@pytest.mark.parametrize("mode", ["buffer", "passthrough"])
def test_streamed_choices_are_screened_per_index(env: Env, mode: str) -> None:
    """Streamed, the deltas are assembled per choice index and each choice is post-screened. Buffer mode
    sends no unscreened text of any choice; pass-through sends it and records the post-scan."""
    with served(env, KeywordPipeline(redact=["secret"]), mode) as (client, log):
        texts, finish, raw = _streamed(client, stream_options={"include_usage": True})
    rec = inference_records(log)[0]
    assert rec["flagged"] is True and [s["stage"] for s in rec["scans"]] == ["post"]
    assert finish == {0: "stop", 1: "stop"}
    assert orjson.loads(raw[-1])["usage"] is not None
    if mode == "buffer":
        assert texts == {0: CLEAN, 1: "the [REDACTED] plan"}
        assert not any("secret" in c for c in raw)
        assert rec.get("error") is None
        assert _output_matches(log, rec, [CLEAN, "the [REDACTED] plan"])
    else:
        assert texts == {0: CLEAN, 1: LEAKY}
        assert "already sent" in rec["error"]
        assert _output_matches(log, rec, [CLEAN, LEAKY])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_block_on_one_choice_withholds_that_choice(env: Env, stream: bool) -> None:
    """A block on choice 1 withholds that answer as a single-choice block does (an empty message with
    finish_reason content_filter; buffer mode when streamed); choice 0 comes back as it was."""
    with served(env, KeywordPipeline(block=["secret"])) as (client, log):
        if stream:
            texts, finish, raw = _streamed(client)
            assert not any("secret" in c for c in raw)
        else:
            r = client.chat.completions.create(model="m", messages=ASK, n=2)
            texts = {c.index: c.message.content or "" for c in r.choices}
            finish = {c.index: c.finish_reason for c in r.choices}
    assert texts == {0: CLEAN, 1: ""} and finish == {0: "stop", 1: "content_filter"}
    rec = inference_records(log)[0]
    assert rec["status"] == 200 and rec["flagged"] is True and rec["finish_reason"] == "stop"
    assert _output_matches(log, rec, [CLEAN, ""])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_record_output_hash_covers_every_choice(env: Env, stream: bool) -> None:
    """With screening off too, the output hash is over the list of choice texts in index order: neither
    choice alone nor the list in another order matches it."""
    with served(env, None) as (client, log):
        if stream:
            texts, _, _ = _streamed(client)
            assert texts == {0: CLEAN, 1: LEAKY}
        else:
            r = client.chat.completions.create(model="m", messages=ASK, n=2)
            assert [c.message.content for c in r.choices] == [CLEAN, LEAKY]
    rec = inference_records(log)[0]
    assert rec["flagged"] is False and rec["output_tokens"] > 0
    assert _output_matches(log, rec, [CLEAN, LEAKY])
    assert not _output_matches(log, rec, CLEAN)
    assert not _output_matches(log, rec, [LEAKY, CLEAN])


# --- tool calls in one choice (an upstream served by httpx.MockTransport) ---------------------------------

ARGS = orjson.dumps({"to": "ops@example.com", "body": "the secret plan"}).decode()
CALL = {"id": "call_1", "type": "function", "function": {"name": "send_mail", "arguments": ARGS}}


def _gateway(env: Env, answer: Any, pipeline: Any, mode: str = "buffer") -> tuple[TestClient, Any]:
    app, log, keys = env.app(env.config(gateway=f'stream_mode = "{mode}"'), pipeline=pipeline,
                             transport=httpx.MockTransport(lambda request: answer))
    secret, _ = keys.create(role="inference", user_id="u")
    return TestClient(app, headers={"authorization": f"Bearer {secret}"}), log


def test_tool_call_arguments_in_one_choice_are_redacted(env: Env) -> None:
    """Choice 1 answers with a tool call whose arguments carry the secret: they are redacted in place
    (still JSON), choice 0's text is left alone."""
    answer = httpx.Response(200, json={
        "id": "chatcmpl-2", "object": "chat.completion", "model": "model-a",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"},
                    {"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": [CALL]},
                     "finish_reason": "tool_calls"}]})
    client, log = _gateway(env, answer, KeywordPipeline(redact=["secret"]))
    with client:
        r = client.post("/v1/chat/completions", json={"model": "m", "messages": ASK, "n": 2})
    assert r.status_code == 200 and "secret" not in r.text
    c0, c1 = r.json()["choices"]
    assert c0["message"] == {"role": "assistant", "content": "fine"}
    assert orjson.loads(c1["message"]["tool_calls"][0]["function"]["arguments"])["body"] == "the [REDACTED] plan"
    assert inference_records(log)[0]["flagged"] is True


def test_streamed_tool_call_in_one_choice_is_redacted_before_sending(env: Env) -> None:
    """Streamed, interleaved: choice 1's tool-call arguments (in fragments) are assembled, redacted, and
    the rewritten stream carries both choices."""
    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return b"data: " + orjson.dumps({"id": "chatcmpl-3", "object": "chat.completion.chunk", "model": "model-a",
                                         "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}) \
            + b"\n\n"
    tc = [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "send_mail", "arguments": ""}}]
    body = b"".join([chunk(0, {"role": "assistant", "content": ""}), chunk(1, {"role": "assistant", "content": None}),
                     chunk(1, {"tool_calls": tc}), chunk(0, {"content": "fine"}),
                     *(chunk(1, {"tool_calls": [{"index": 0, "function": {"arguments": ARGS[k:k + 9]}}]})
                       for k in range(0, len(ARGS), 9)),
                     chunk(0, {}, "stop"), chunk(1, {}, "tool_calls"), b"data: [DONE]\n\n"])
    answer = httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
    client, log = _gateway(env, answer, KeywordPipeline(redact=["secret"]))
    with client:
        r = client.post("/v1/chat/completions", json={"model": "m", "messages": ASK, "n": 2, "stream": True})
    assert r.status_code == 200 and "secret" not in r.text
    chunks = [orjson.loads(line[6:]) for line in r.text.split("\n\n") if line.startswith("data: {")]
    deltas = {(ch["index"], "content" in ch["delta"]): ch["delta"] for c in chunks for ch in c["choices"]}
    assert deltas[(0, True)]["content"] == "fine"
    args = deltas[(1, True)]["tool_calls"][0]["function"]["arguments"]
    assert orjson.loads(args)["body"] == "the [REDACTED] plan"
    assert inference_records(log)[0]["flagged"] is True


def test_a_choice_that_is_not_an_object_fails_closed(env: Env) -> None:
    """A malformed choice cannot be screened: 502, recorded, nothing of the answer passed on."""
    answer = httpx.Response(200, json={"id": "x", "object": "chat.completion", "model": "model-a",
                                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}},
                                                   "the secret plan"]})
    client, log = _gateway(env, answer, KeywordPipeline(redact=["secret"]))
    with client:
        r = client.post("/v1/chat/completions", json={"model": "m", "messages": ASK, "n": 2})
    assert r.status_code == 502 and "secret" not in r.text
    assert inference_records(log)[0]["status"] == 502


# --- odd upstream streams and answers: nothing unscreened reaches the client -------------------------------

def _sse(*choices: dict[str, Any]) -> httpx.Response:
    """An upstream event stream, one chunk per choice object given."""
    body = b"".join(b"data: " + orjson.dumps({"id": "chatcmpl-4", "object": "chat.completion.chunk", "model": "model-a",
                                              "choices": [c]}) + b"\n\n" for c in choices)
    return httpx.Response(200, content=body + b"data: [DONE]\n\n", headers={"content-type": "text/event-stream"})


def _post_stream(client: TestClient, **body: Any) -> tuple[str, dict[int, str]]:
    """(the raw event stream, text per choice index as a client assembles it)."""
    r = client.post("/v1/chat/completions", json={"model": "m", "messages": ASK, "stream": True, **body})
    assert r.status_code == 200
    texts: dict[int, str] = {}
    for line in r.text.split("\n\n"):
        if line.startswith("data: {"):
            for ch in orjson.loads(line[6:]).get("choices", []):
                if isinstance(ch.get("index"), int) and isinstance(content := ch["delta"].get("content"), str):
                    texts[ch["index"]] = texts.get(ch["index"], "") + content
    return r.text, texts


def test_stream_without_n_is_screened_per_index(env: Env) -> None:
    """An upstream may stream more choices than asked (here two, for a request without ``n``): they are
    screened per index, as the client assembles them. Screened as one interleaved text, "the sec" +
    "hello" + "ret plan" hid the secret of choice 0."""
    answer = _sse({"index": 0, "delta": {"content": "the sec"}}, {"index": 1, "delta": {"content": "hello"}},
                  {"index": 0, "delta": {"content": "ret plan"}}, {"index": 1, "delta": {"content": " world"}},
                  {"index": 0, "delta": {}, "finish_reason": "stop"}, {"index": 1, "delta": {}, "finish_reason": "stop"})
    client, log = _gateway(env, answer, KeywordPipeline(redact=["secret"]))
    with client:
        raw, texts = _post_stream(client)
    assert texts == {0: "the [REDACTED] plan", 1: "hello world"} and '"the sec"' not in raw
    rec = inference_records(log)[0]
    assert rec["flagged"] is True
    assert _output_matches(log, rec, ["the [REDACTED] plan", "hello world"])


@pytest.mark.parametrize("index", ["1", True, 1.0])
def test_stream_choice_index_not_an_integer_fails_closed(env: Env, index: Any) -> None:
    """A client may add a chunk of index "1" (or true, or 1.0) to choice 1; the gateway cannot tell which
    answer it belongs to, so it cannot screen it as read: the stream fails (502), nothing of it is sent."""
    answer = _sse({"index": 1, "delta": {"content": "the sec"}}, {"index": index, "delta": {"content": "ret"}},
                  {"index": 0, "delta": {"content": "hi"}})
    client, log = _gateway(env, answer, KeywordPipeline(redact=["secret"]))
    with client:
        raw, texts = _post_stream(client, n=2)
    assert texts == {} and "sec" not in raw and '"code":"upstream_error"' in raw
    rec = inference_records(log)[0]
    assert rec["status"] == 502 and "index is not an integer" in rec["error"]


def test_streamed_tool_call_without_index_is_screened(env: Env) -> None:
    """Some OpenAI-compatible servers stream each tool call whole, without its ``index``: its arguments
    are screened (and redacted) like any other call's, not passed on unread."""
    answer = _sse({"index": 0, "delta": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "send_mail", "arguments": ARGS}}]}},
                  {"index": 0, "delta": {}, "finish_reason": "tool_calls"})
    client, log = _gateway(env, answer, KeywordPipeline(redact=["secret"]))
    with client:
        raw, _ = _post_stream(client)
    assert "secret" not in raw
    call = next(ch["delta"]["tool_calls"][0] for line in raw.split("\n\n") if line.startswith("data: {")
                for ch in orjson.loads(line[6:])["choices"] if ch["delta"].get("tool_calls"))
    assert orjson.loads(call["function"]["arguments"])["body"] == "the [REDACTED] plan"
    assert inference_records(log)[0]["flagged"] is True


@pytest.mark.parametrize("delta", [{"content": [{"type": "text", "text": LEAKY}]},
                                   {"audio": {"id": "a1", "transcript": LEAKY}}], ids=["parts", "audio"])
def test_streamed_list_content_and_audio_transcript_are_screened(env: Env, delta: dict[str, Any]) -> None:
    """Text streamed as a list of parts, or as an audio answer's transcript, is screened like the JSON
    answer's (buffer mode: the redacted answer is sent instead)."""
    answer = _sse({"index": 0, "delta": delta}, {"index": 0, "delta": {}, "finish_reason": "stop"})
    client, log = _gateway(env, answer, KeywordPipeline(redact=["secret"]))
    with client:
        raw, _ = _post_stream(client)
    assert "secret" not in raw
    assert inference_records(log)[0]["flagged"] is True


def test_single_choice_that_is_not_an_object_fails_closed(env: Env) -> None:
    """As with several choices: one choice that is not an object cannot be screened (502), never relayed."""
    answer = httpx.Response(200, json={"id": "x", "object": "chat.completion", "model": "model-a",
                                       "choices": ["the secret plan"]})
    client, log = _gateway(env, answer, KeywordPipeline(redact=["secret"]))
    with client:
        r = client.post("/v1/chat/completions", json={"model": "m", "messages": ASK})
    assert r.status_code == 502 and "secret" not in r.text
    assert inference_records(log)[0]["status"] == 502


def test_messages_records_the_one_choice_it_sends(env: Env) -> None:
    """/v1/messages answers with choice 0 only: an upstream sending two choices gets choice 0 screened,
    sent and recorded (the record's output is what the client received, not a list with choice 1)."""
    answer = httpx.Response(200, json={
        "id": "chatcmpl-5", "object": "chat.completion", "model": "model-a",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": CLEAN}, "finish_reason": "stop"},
                    {"index": 1, "message": {"role": "assistant", "content": "other"}, "finish_reason": "stop"}]})
    client, log = _gateway(env, answer, KeywordPipeline(redact=["secret"]))
    with client:
        r = client.post("/v1/messages", json={"model": "m", "max_tokens": 20, "messages": ASK})
    assert r.status_code == 200 and r.json()["content"] == [{"type": "text", "text": CLEAN}]
    rec = inference_records(log)[0]
    assert _output_matches(log, rec, CLEAN) and not _output_matches(log, rec, [CLEAN, "other"])


def test_huge_n_is_the_upstreams_400_not_a_hang(env: Env) -> None:
    """The gateway passes ``n`` on; the fake upstream refuses more than 128 choices, as OpenAI does,
    instead of building 2**62 of them (the fuzz of the OpenAPI document sends such values)."""
    app, log, keys = env.app(env.config(), pipeline=KeywordPipeline(redact=["secret"]))
    secret, _ = keys.create(role="inference", user_id="u")
    with TestClient(app, headers={"authorization": f"Bearer {secret}"}) as client:
        for stream in (False, True):
            r = client.post("/v1/chat/completions", json={"model": "m", "messages": ASK, "n": 2**62,
                                                          "stream": stream})
            assert r.status_code == 400 and r.json()["error"]["message"] == "n must be at most 128"
    assert [rec["status"] for rec in inference_records(log)] == [400, 400]
