"""Streams the wrappers used to under-record: a streamed ``n > 1`` completion (every choice is assembled,
post-screened and recorded, as a non-streamed one is), and raw responses the caller drops without
``parse()`` or ``close()`` (recorded when dropped, not never)."""

from __future__ import annotations

import gc
import json
from typing import Any

import httpx2
import openai

from soc2ai.instrument import instrument
from soc2ai.testing.gateway import inference_records
from soc2ai.testing.scanners import KeywordPipeline

MSG: Any = [{"role": "user", "content": "hello"}]


def _chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {"id": "chatcmpl-n", "object": "chat.completion.chunk", "created": 0, "model": "gpt-n",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _sse(chunks: list[bytes]) -> httpx2.MockTransport:
    """An OpenAI-compatible upstream that streams ``chunks`` (the fake upstream streams one choice)."""
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                               content=b"".join(chunks) + b"data: [DONE]\n\n")

    return httpx2.MockTransport(handler)


def _client(chunks: list[bytes]) -> openai.OpenAI:
    return openai.OpenAI(base_url="http://upstream.test/v1", api_key="x", max_retries=0,
                         http_client=httpx2.Client(transport=_sse(chunks)))


def test_streamed_n_choices_are_all_screened_and_recorded(world: Any) -> None:
    """Choice 1's text and tool-call arguments are post-screened as choice 0's are (flagged: the chunks
    were delivered), and the record holds the list of the choices' texts, as a non-streamed n > 1 call's
    and the gateway's do;
    with one choice the record is the one choice's text, as before."""
    _up, log, _h = world
    pipe = KeywordPipeline(redact=["secret"])
    text_chunks = [_chunk(0, {"role": "assistant", "content": "all "}), _chunk(1, {"role": "assistant", "content": "the "}),
                   _chunk(0, {"content": "fine"}), _chunk(1, {"content": "secret plan"}),
                   _chunk(0, {}, "stop"), _chunk(1, {}, "stop")]
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    tool_chunks = [_chunk(0, {"content": "ok"}), _chunk(1, {"tool_calls": [call]}),
                   _chunk(1, {"tool_calls": [{"index": 0, "function": {"arguments": '{"q": "sec'}}]}),
                   _chunk(1, {"tool_calls": [{"index": 0, "function": {"arguments": 'ret"}'}}]}),
                   _chunk(0, {}, "stop"), _chunk(1, {}, "tool_calls")]
    with _client(text_chunks) as client:
        instrument(client, log=log, user_id="nia", pipeline=pipe)
        got: dict[int, str] = {}
        stream: Any = client.chat.completions.create(model="m", messages=MSG, n=2, stream=True)
        for c in stream:
            for ch in c.choices:
                got[ch.index] = got.get(ch.index, "") + (ch.delta.content or "")
    with _client(tool_chunks) as client:
        instrument(client, log=log, user_id="nia", pipeline=pipe)
        with client.chat.completions.stream(model="m", messages=MSG, n=2) as s:
            final = s.get_final_completion()
    with _client([_chunk(0, {"content": "just "}), _chunk(0, {"content": "one"}, "stop")]) as client:
        instrument(client, log=log, user_id="nia", pipeline=pipe)
        single: Any = client.chat.completions.create(model="m", messages=MSG, stream=True)
        one = "".join(c.choices[0].delta.content or "" for c in single)
    assert got == {0: "all fine", 1: "the secret plan"} and one == "just one"  # pass-through, as with one choice
    calls: Any = final.choices[1].message.tool_calls
    assert calls[0].function.arguments == '{"q": "secret"}'
    recs = inference_records(log)
    assert [(r["status"], r["flagged"], r["finish_reason"]) for r in recs] == [(200, True, "stop")] * 2 + [
        (200, False, "stop")]
    assert all("already delivered" in r["error"] for r in recs[:2]) and recs[2].get("error") is None
    assert log.match(log.find(recs[0]["id"]) or 0, response=["all fine", "the secret plan"]).response is True
    assert log.match(log.find(recs[1]["id"]) or 0, response=["ok", ""]).response is True
    assert log.match(log.find(recs[2]["id"]) or 0, response="just one").response is True


async def test_raw_responses_dropped_without_parse_or_close_are_recorded(world: Any) -> None:
    """A with_streaming_response entered by hand and dropped unread (499), and a with_raw_response(stream=True)
    read only through http_response (not screened), are recorded when the caller drops them."""
    up, log, _h = world
    up.set(reply="your secret")
    with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as client:
        instrument(client, log=log, user_id="ola", pipeline=KeywordPipeline(redact=["secret"]))
        manager = client.chat.completions.with_streaming_response.create(model="m", messages=MSG)
        response = manager.__enter__()  # never exited, never read
        assert response.status_code == 200
        del manager, response
        gc.collect()
        assert [r["status"] for r in inference_records(log)] == [499]
        raw = client.chat.completions.with_raw_response.create(model="m", messages=MSG, stream=True)
        lines = list(raw.http_response.iter_lines())
        del raw
        gc.collect()
    aclient = openai.AsyncOpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0)
    instrument(aclient, log=log, user_id="ola", pipeline=KeywordPipeline(redact=["secret"]))
    amanager = aclient.chat.completions.with_streaming_response.create(model="m", messages=MSG)
    aresponse = await amanager.__aenter__()
    del amanager, aresponse
    gc.collect()
    await aclient.close()
    assert any("secret" in line for line in lines)
    recs = inference_records(log)
    assert [r["status"] for r in recs] == [499, 200, 499] and len(up.calls) == 3
    assert "dropped by the caller" in recs[0]["error"] and "dropped by the caller" in recs[2]["error"]
    assert recs[1]["error"] == "raw response read without parse(): output not screened"


def test_non_streamed_n_choices_each_screened_and_recorded_as_a_list(world: Any) -> None:
    """Non-streamed n=2 against the fake upstream: only choice 1 carries the secret and only it is
    redacted; a block withholds only its choice; the record's output is the list of the screened
    choice texts in index order (what the gateway records)."""
    up, log, _h = world
    up.set(replies=("all clear", "the secret plan"))
    with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as client:
        instrument(client, log=log, user_id="nia", pipeline=KeywordPipeline(redact=["secret"]))
        r = client.chat.completions.create(model="m", messages=MSG, n=2)
    with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as client:
        instrument(client, log=log, user_id="nia", pipeline=KeywordPipeline(block=["secret"]))
        b = client.chat.completions.create(model="m", messages=MSG, n=2)
    assert [c.message.content for c in r.choices] == ["all clear", "the [REDACTED] plan"]
    assert [(c.message.content, c.finish_reason) for c in b.choices] == [("all clear", "stop"),
                                                                         ("", "content_filter")]
    recs = inference_records(log)
    assert [r["flagged"] for r in recs] == [True, True]
    assert log.match(log.find(recs[0]["id"]) or 0, response=["all clear", "the [REDACTED] plan"]).response is True
    assert log.match(log.find(recs[1]["id"]) or 0, response=["all clear", ""]).response is True
