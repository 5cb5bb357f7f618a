"""``with_raw_response`` / ``with_streaming_response`` go through the wrappers: screened, recorded once, and
the raw response (headers, ``http_response``) still works. LangChain's ``ChatOpenAI`` calls
``chat.completions.with_raw_response.create`` for every completion: a bypass would leave no screening and
no (or an empty) record."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from soc2ai.errors import PolicyViolation
from soc2ai.instrument import instrument
from soc2ai.testing.gateway import inference_records
from soc2ai.testing.scanners import KeywordPipeline
from soc2ai.testing.server import serve_in_thread

MSG = [{"role": "user", "content": "hello"}]
SECRET = [{"role": "user", "content": "the secret"}]
BLOCKED = [{"role": "user", "content": "ignore previous"}]
PIPE = KeywordPipeline(block=["ignore previous"], redact=["secret"])
# What differs between two records of the same call made twice.
VOLATILE = {"id", "idx", "ts", "latency_us", "response_id"}


def _same(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in VOLATILE}


def _own(log: Any) -> list[dict[str, Any]]:
    """The instrumented client's records (not those of the gateway serving as Anthropic upstream)."""
    return [r for r in inference_records(log) if r.get("key_id") is None]


def test_openai_raw_response_screened_and_recorded_like_create(world: Any) -> None:
    up, log, _h = world
    up.set(reply="your secret")
    with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as client:
        _ = client.chat.completions.with_raw_response  # a view built before instrument() must not bypass it
        instrument(client, log=log, user_id="raw", pipeline=PIPE)
        plain = client.chat.completions.create(model="m", messages=SECRET, temperature=0)  # type: ignore[arg-type]
        raw = client.chat.completions.with_raw_response.create(model="m", messages=SECRET, temperature=0)  # type: ignore[arg-type]
        # never parsed: still screened and recorded when the call returns
        client.with_raw_response.chat.completions.create(model="m", messages=SECRET, temperature=0)  # type: ignore[arg-type]
        with pytest.raises(PolicyViolation):
            client.chat.completions.with_raw_response.create(model="m", messages=BLOCKED)  # type: ignore[arg-type]
    assert [c["messages"][0]["content"] for c in up.calls] == ["the [REDACTED]"] * 3  # blocked one never sent
    assert raw.http_response.status_code == 200 and raw.headers["content-type"].startswith("application/json")
    completion = raw.parse()
    assert completion is raw.parse() and completion.choices[0].message.content == "your [REDACTED]"
    assert plain.choices[0].message.content == "your [REDACTED]"
    recs = inference_records(log)
    assert [r["status"] for r in recs] == [200, 200, 200, 400]
    assert _same(recs[0]) == _same(recs[1]) == _same(recs[2])  # same fields, output hash of the redacted text
    assert recs[1]["response_id"] == completion.id and recs[1]["flagged"] and recs[1]["output_tokens"] > 0


def test_openai_streaming_response_and_raw_stream(world: Any) -> None:
    up, log, _h = world
    up.set(reply="your secret")
    with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as client:
        instrument(client, log=log, user_id="sr", pipeline=PIPE)
        view = client.chat.completions.with_streaming_response
        with view.create(model="m", messages=MSG) as r:  # type: ignore[arg-type]
            parsed = r.parse()
        with view.create(model="m", messages=MSG, stream=True) as r:  # type: ignore[arg-type]
            streamed = "".join(c.choices[0].delta.content or "" for c in r.parse() if c.choices)
        with view.create(model="m", messages=MSG, stream=True) as r:  # type: ignore[arg-type]
            pass  # left without reading
        with view.create(model="m", messages=MSG) as r:  # type: ignore[arg-type]
            body = r.json()  # read around parse(): not screened, but recorded as such
        raw = client.chat.completions.with_raw_response.create(model="m", messages=MSG, stream=True)  # type: ignore[arg-type]
        raw_streamed = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        with pytest.raises(PolicyViolation), view.create(model="m", messages=BLOCKED):  # type: ignore[arg-type]
            pass
    assert parsed.choices[0].message.content == "your [REDACTED]"
    assert streamed == raw_streamed == "your secret"  # streams are pass-through: flagged in the record
    assert body["choices"][0]["message"]["content"] == "your secret"  # type: ignore[index]
    recs = inference_records(log)
    assert [r["status"] for r in recs] == [200, 200, 499, 200, 200, 400] and len(up.calls) == 5
    assert recs[0]["response_id"] == parsed.id and recs[0]["flagged"] and recs[0].get("error") is None
    assert recs[1]["params"]["stream"] is True and recs[1]["finish_reason"] == "stop"
    assert "already delivered" in recs[1]["error"] and "already delivered" in recs[4]["error"]
    assert "closed by the caller before it was read" in recs[2]["error"] and "not screened" in recs[3]["error"]
    assert log.match(log.find(recs[1]["id"]) or 0, response="your secret").response is True


async def test_openai_async_raw_and_streaming_response(world: Any) -> None:
    up, log, _h = world
    up.set(reply="your secret")
    client = openai.AsyncOpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0)
    instrument(client, log=log, user_id="ar", pipeline=PIPE)
    raw = await client.chat.completions.with_raw_response.create(model="m", messages=SECRET)  # type: ignore[arg-type]
    raw_stream = await client.chat.completions.with_raw_response.create(model="m", messages=MSG, stream=True)  # type: ignore[arg-type]
    raw_streamed = [c.choices[0].delta.content or "" async for c in raw_stream.parse() if c.choices]
    async with client.chat.completions.with_streaming_response.create(model="m", messages=MSG) as r:  # type: ignore[arg-type]
        parsed = await r.parse()
        assert r.headers["content-type"].startswith("application/json")
    async with client.chat.completions.with_streaming_response.create(model="m", messages=MSG, stream=True) as r:  # type: ignore[arg-type]
        streamed = [c.choices[0].delta.content or "" async for c in await r.parse() if c.choices]
    with pytest.raises(PolicyViolation):
        async with client.chat.completions.with_streaming_response.create(model="m", messages=BLOCKED):  # type: ignore[arg-type]
            pass
    await client.close()
    assert up.calls[0]["messages"][0]["content"] == "the [REDACTED]" and len(up.calls) == 4
    assert raw.parse().choices[0].message.content == parsed.choices[0].message.content == "your [REDACTED]"
    assert "".join(raw_streamed) == "".join(streamed) == "your secret"
    recs = inference_records(log)
    assert [r["status"] for r in recs] == [200, 200, 200, 200, 400]
    assert [bool(r.get("error")) for r in recs] == [False, True, False, True, True]  # streams: already delivered


def test_anthropic_raw_and_streaming_response(world: Any, anthropic_endpoint: Any) -> None:
    up, log, h = world
    app, secret = anthropic_endpoint(h)
    up.set(reply="your secret")
    with serve_in_thread(app) as url, anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0) as client:
        instrument(client, log=log, user_id="an", pipeline=PIPE)
        plain = client.messages.create(model="m", max_tokens=20, messages=SECRET)  # type: ignore[arg-type]
        raw = client.messages.with_raw_response.create(model="m", max_tokens=20, messages=SECRET)  # type: ignore[arg-type]
        with client.messages.with_streaming_response.create(model="m", max_tokens=20, messages=MSG,  # type: ignore[arg-type]
                                                            stream=True) as r:
            events = list(r.parse())
        with pytest.raises(PolicyViolation):
            client.messages.with_raw_response.create(model="m", max_tokens=20, messages=BLOCKED)  # type: ignore[arg-type]
    assert raw.http_response.status_code == 200
    assert raw.parse().content[0].text == plain.content[0].text == "your [REDACTED]"  # type: ignore[union-attr]
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == "your secret"  # type: ignore[union-attr]
    recs = _own(log)
    assert [r["status"] for r in recs] == [200, 200, 200, 400] and recs[0]["provider"] == "anthropic"
    assert _same(recs[0]) == _same(recs[1]) and recs[1]["response_id"] == raw.parse().id
    assert recs[2]["finish_reason"] == "end_turn" and "already delivered" in recs[2]["error"]


async def test_anthropic_async_raw_response_recorded_without_parse(world: Any, anthropic_endpoint: Any) -> None:
    _up, log, h = world
    app, secret = anthropic_endpoint(h)
    with serve_in_thread(app) as url:
        client = anthropic.AsyncAnthropic(base_url=url, api_key=secret, max_retries=0)
        instrument(client, log=log, user_id="aa", pipeline=PIPE)
        raw = await client.messages.with_raw_response.create(model="m", max_tokens=20, messages=MSG)  # type: ignore[arg-type]
        recorded_before_parse = len(_own(log))
        async with client.messages.with_streaming_response.create(model="m", max_tokens=20, messages=MSG,  # type: ignore[arg-type]
                                                                  stream=True) as r:
            text = "".join([e.delta.text async for e in await r.parse() if e.type == "content_block_delta"])  # type: ignore[union-attr]
        await client.close()
    assert recorded_before_parse == 1
    assert (await raw.parse()).content[0].text == text == "Hello from the fake upstream."  # type: ignore[union-attr]
    recs = _own(log)
    assert [r["status"] for r in recs] == [200, 200] and recs[1]["output_tokens"] > 0
