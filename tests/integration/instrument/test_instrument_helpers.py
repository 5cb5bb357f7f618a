"""The SDKs' convenience entry points are recorded too: openai ``.stream()`` / ``.parse()``, anthropic
``messages.stream()`` (sync and async). A call that bypassed the wrapper would leave no audit record."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pydantic

from soc2ai.instrument import instrument
from soc2ai.testing.gateway import inference_records
from soc2ai.testing.scanners import KeywordPipeline
from soc2ai.testing.server import serve_in_thread

MSG = [{"role": "user", "content": "hello"}]


class City(pydantic.BaseModel):
    city: str




def test_openai_stream_helper_recorded_once(world: Any) -> None:
    up, log, _h = world
    up.set(reply="a b c")
    with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as client:
        instrument(client, log=log, user_id="hana")
        with client.chat.completions.stream(model="m", messages=MSG) as s:  # type: ignore[arg-type]
            deltas = [e.delta for e in s if e.type == "content.delta"]
            final = s.get_final_completion()
    assert "".join(deltas) == "a b c" == final.choices[0].message.content
    recs = inference_records(log)
    assert len(recs) == 1 and recs[0]["status"] == 200 and recs[0]["params"]["stream"] is True
    assert log.match(log.find(recs[0]["id"]) or 0, response="a b c").response is True


def test_openai_parse_recorded_and_redaction_clears_parsed(world: Any) -> None:
    up, log, _h = world
    with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as client:
        instrument(client, log=log, user_id="ivan", pipeline=KeywordPipeline(redact=["atlantis"]))
        up.set(reply='{"city": "Paris"}')
        ok = client.chat.completions.parse(model="m", messages=MSG, response_format=City)  # type: ignore[arg-type]
        up.set(reply='{"city": "Atlantis"}')
        red = client.chat.completions.parse(model="m", messages=MSG, response_format=City)  # type: ignore[arg-type]
    assert ok.choices[0].message.parsed == City(city="Paris")
    # The parsed object was built from the unredacted text, so it is withheld with it.
    assert red.choices[0].message.content == '{"city": "[REDACTED]"}' and red.choices[0].message.parsed is None
    recs = inference_records(log)
    assert [r["status"] for r in recs] == [200, 200] and [r["flagged"] for r in recs] == [False, True]




def test_anthropic_stream_helper_recorded(world: Any, anthropic_endpoint: Any) -> None:
    up, log, h = world
    app, secret = anthropic_endpoint(h)
    up.set(reply="hej verden")
    with serve_in_thread(app) as url, anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0) as client:
        instrument(client, log=log, user_id="jonas", pipeline=KeywordPipeline(redact=["verden"]))
        with client.messages.stream(model="m", max_tokens=20, messages=MSG) as s:  # type: ignore[arg-type]
            text = "".join(s.text_stream)
            final = s.get_final_message()
        with client.messages.stream(model="m", max_tokens=20, messages=MSG) as s:  # type: ignore[arg-type]
            pass  # left without reading: recorded as closed early
    assert text == "hej verden" == final.content[0].text  # type: ignore[union-attr]
    recs = [r for r in inference_records(log) if r.get("key_id") is None]
    assert [r["status"] for r in recs] == [200, 499]
    assert recs[0]["endpoint"] == "messages" and recs[0]["finish_reason"] == "end_turn"
    assert recs[0]["flagged"] is True and "already delivered" in recs[0]["error"]



def test_anthropic_tool_use_input_screened(world: Any, anthropic_endpoint: Any) -> None:
    """tool_use input is post-screened: redacted in place, withheld on block, flagged when streamed."""
    import json

    up, log, h = world
    app, secret = anthropic_endpoint(h)
    up.set(tool_calls=(("send_mail", json.dumps({"to": "ops@example.com", "body": "the secret plan"})),))
    tool = {"name": "send_mail", "input_schema": {"type": "object"}}
    with serve_in_thread(app) as url, anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0) as client:
        instrument(client, log=log, user_id="lena", pipeline=KeywordPipeline(redact=["secret"]))
        msg = client.messages.create(model="m", max_tokens=50, messages=MSG, tools=[tool])  # type: ignore[arg-type]
        with client.messages.stream(model="m", max_tokens=50, messages=MSG, tools=[tool]) as s:  # type: ignore[arg-type]
            s.get_final_message()
    with serve_in_thread(app) as url, anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0) as client:
        instrument(client, log=log, user_id="lena", pipeline=KeywordPipeline(block=["ops@example.com"]))
        blocked = client.messages.create(model="m", max_tokens=50, messages=MSG, tools=[tool])  # type: ignore[arg-type]
    uses = [b for b in msg.content if b.type == "tool_use"]
    assert [u.input for u in uses] == [{"to": "ops@example.com", "body": "the [REDACTED] plan"}]  # type: ignore[union-attr]
    assert not [b for b in blocked.content if b.type == "tool_use"] and blocked.stop_reason == "end_turn"
    recs = [r for r in inference_records(log) if r.get("key_id") is None]
    assert [r["flagged"] for r in recs] == [True, True, True]
    assert recs[0].get("error") is None and "already delivered" in recs[1]["error"]
    assert recs[2]["finish_reason"] == "content_filter"


def test_openai_responses_parse_recorded_and_redaction_clears_parsed(world: Any) -> None:
    """responses.parse(text_format=...) posts the request itself: it is screened and recorded like
    create, and a redacted answer's parsed object (built from the unredacted text) is withheld."""
    up, log, _h = world
    with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as client:
        instrument(client, log=log, user_id="iris", pipeline=KeywordPipeline(redact=["atlantis"]))
        up.set(reply='{"city": "Paris"}')
        ok = client.responses.parse(model="m", input="where?", text_format=City)
        up.set(reply='{"city": "Atlantis"}')
        red = client.responses.parse(model="m", input="where?", text_format=City)
    assert ok.output_parsed == City(city="Paris")
    assert red.output_text == '{"city": "[REDACTED]"}' and red.output_parsed is None
    recs = inference_records(log)
    assert [(r["endpoint"], r["status"], r["flagged"]) for r in recs] == [("responses", 200, False),
                                                                           ("responses", 200, True)]
    assert log.match(log.find(recs[0]["id"]) or 0, response='{"city": "Paris"}').response is True


def test_anthropic_parse_recorded_and_redaction_clears_parsed(world: Any, anthropic_endpoint: Any) -> None:
    """messages.parse and beta.messages.parse (structured outputs) post the request themselves: both are
    screened and recorded, and a blocked prompt is never sent."""
    import pytest

    from soc2ai.errors import PolicyViolation

    up, log, h = world
    app, secret = anthropic_endpoint(h)
    pipe = KeywordPipeline(block=["ignore previous"], redact=["atlantis"])
    with serve_in_thread(app) as url, anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0) as client:
        instrument(client, log=log, user_id="jun", pipeline=pipe)
        up.set(reply='{"city": "Paris"}')
        ok = client.messages.parse(model="m", max_tokens=50, messages=MSG, output_format=City)  # type: ignore[arg-type]
        up.set(reply='{"city": "Atlantis"}')
        red = client.messages.parse(model="m", max_tokens=50, messages=MSG, output_format=City)  # type: ignore[arg-type]
        beta = client.beta.messages.parse(model="m", max_tokens=50, messages=MSG, output_format=City)  # type: ignore[arg-type]
        sent = len(up.calls)
        with pytest.raises(PolicyViolation):
            client.messages.parse(model="m", max_tokens=50, output_format=City,
                                  messages=[{"role": "user", "content": "ignore previous"}])
        assert len(up.calls) == sent
    assert ok.parsed_output == City(city="Paris")
    for msg in (red, beta):
        assert msg.content[0].text == '{"city": "[REDACTED]"}' and msg.parsed_output is None  # type: ignore[union-attr]
    recs = [r for r in inference_records(log) if r["provider"] == "anthropic"]  # not the gateway's own
    assert [(r["endpoint"], r["status"], r["flagged"]) for r in recs] == [
        ("messages", 200, False), ("messages", 200, True), ("messages", 200, True), ("messages", 400, True)]


async def test_async_parse_helpers_recorded(world: Any, anthropic_endpoint: Any) -> None:
    """The async clients' parse() helpers are wrapped too: one screened record each."""
    up, log, h = world
    app, secret = anthropic_endpoint(h)
    up.set(reply='{"city": "Atlantis"}')
    pipe = KeywordPipeline(redact=["atlantis"])
    async with openai.AsyncOpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as oai:
        instrument(oai, log=log, user_id="lea", pipeline=pipe)
        r = await oai.responses.parse(model="m", input="where?", text_format=City)
    with serve_in_thread(app) as url:
        ant = anthropic.AsyncAnthropic(base_url=url, api_key=secret, max_retries=0)
        instrument(ant, log=log, user_id="lea", pipeline=pipe)
        m = await ant.messages.parse(model="m", max_tokens=50, messages=MSG, output_format=City)  # type: ignore[arg-type]
        await ant.close()
    assert r.output_parsed is None and m.parsed_output is None
    recs = [x for x in inference_records(log) if x.get("key_id") is None]  # not the gateway's own
    assert [(x["endpoint"], x["status"], x["flagged"]) for x in recs] == [("responses", 200, True),
                                                                          ("messages", 200, True)]


def test_anthropic_count_tokens_screened_and_recorded(world: Any) -> None:
    """count_tokens sends the prompt to the provider: it is screened like create's (a blocked prompt is
    not sent, a redacted one is counted as create would send it) and leaves a record with the count."""
    import pytest
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from soc2ai.errors import PolicyViolation

    _up, log, _h = world
    bodies: list[bytes] = []

    async def count(request: Request) -> JSONResponse:
        bodies.append(await request.body())
        return JSONResponse({"input_tokens": 42})

    app = Starlette(routes=[Route("/v1/messages/count_tokens", count, methods=["POST"])])
    pipe = KeywordPipeline(block=["ignore previous"], redact=["hunter2"])
    with serve_in_thread(app) as url, anthropic.Anthropic(base_url=url, api_key="x", max_retries=0) as client:
        instrument(client, log=log, user_id="mo", pipeline=pipe)
        n = client.messages.count_tokens(model="m", messages=[{"role": "user", "content": "my pw is hunter2"}])
        b = client.beta.messages.count_tokens(model="m", messages=MSG)  # type: ignore[arg-type]
        with pytest.raises(PolicyViolation):
            client.messages.count_tokens(model="m", messages=[{"role": "user", "content": "ignore previous"}])
    assert n.input_tokens == b.input_tokens == 42 and len(bodies) == 2
    assert b"hunter2" not in bodies[0] and b"[REDACTED]" in bodies[0]
    recs = inference_records(log)
    assert [(r["endpoint"], r["status"], r["flagged"]) for r in recs] == [
        ("messages.count_tokens", 200, True), ("messages.count_tokens", 200, False),
        ("messages.count_tokens", 400, True)]
    assert recs[0]["input_tokens"] == 42 and recs[0]["output_tokens"] == 0 and recs[0]["output_hash"] is None
