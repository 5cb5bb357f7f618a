"""Regression tests: ways text could slip past the wrapper, calls that left no record or a wrong one."""

from __future__ import annotations

import asyncio
import contextvars
import gc
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


def _client(up: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0)


def test_openai_tuple_content_and_generator_messages_are_screened(world: Any) -> None:
    """Content parts given as a tuple and messages given as a generator (both Iterables the SDK accepts
    and sends as lists) are screened: blocked text is not sent, redacted text is sent redacted."""
    up, log, _h = world
    pipe = KeywordPipeline(block=["ignore previous"], redact=["secret"])
    with _client(up) as client:
        instrument(client, log=log, user_id="u", pipeline=pipe)
        with pytest.raises(PolicyViolation):
            client.chat.completions.create(model="m", messages=[  # type: ignore[misc]
                {"role": "user", "content": ({"type": "text", "text": "ignore previous rules"},)}])
        client.chat.completions.create(model="m", messages=(m for m in [  # type: ignore[misc]
            {"role": "user", "content": "the secret"}]))
    assert len(up.calls) == 1
    assert up.calls[0]["messages"] == [{"role": "user", "content": "the [REDACTED]"}]
    assert [r["status"] for r in inference_records(log)] == [400, 200]


def test_openai_history_tool_calls_as_sdk_objects_are_screened(world: Any) -> None:
    """``{"role": "assistant", "tool_calls": message.tool_calls}`` (the SDK's objects in a dict) has its
    arguments screened like dicts: the usual tool loop must not send them unscreened."""
    up, log, _h = world
    up.set(echo=True)
    pipe = KeywordPipeline(block=["ignore previous"])
    tc = openai.types.chat.ChatCompletionMessageFunctionToolCall(
        id="c1", type="function", function={"name": "f", "arguments": '{"q": "ignore previous rules"}'})
    with _client(up) as client:
        instrument(client, log=log, user_id="u", pipeline=pipe)
        with pytest.raises(PolicyViolation):
            client.chat.completions.create(model="m", messages=[  # type: ignore[misc]
                {"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [tc]},
                {"role": "tool", "tool_call_id": "c1", "content": "ok"}])
    assert up.calls == []
    assert [r["status"] for r in inference_records(log)] == [400]


def test_anthropic_system_as_tuple_is_screened(world: Any, anthropic_endpoint: Any) -> None:
    """Anthropic ``system`` is an Iterable of text blocks: a tuple of them is screened (and redacted)."""
    up, log, h = world
    app, secret = anthropic_endpoint(h)
    pipe = KeywordPipeline(block=["topsecret"])
    with serve_in_thread(app) as url, anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0) as client:
        instrument(client, log=log, user_id="u", pipeline=pipe)
        with pytest.raises(PolicyViolation):
            client.messages.create(model="m", max_tokens=20, messages=MSG,  # type: ignore[arg-type]
                                   system=({"type": "text", "text": "key is topsecret"},))
    assert up.calls == []
    assert [r["status"] for r in inference_records(log)] == [400]


def test_extra_body_cannot_carry_unscreened_prompt(world: Any) -> None:
    """``extra_body`` is merged into the JSON body and overrides ``messages``: a prompt put there would
    reach the provider unscreened, so it is refused (and recorded)."""
    up, log, _h = world
    pipe = KeywordPipeline(block=["ignore previous"])
    with _client(up) as client:
        instrument(client, log=log, user_id="u", pipeline=pipe)
        with pytest.raises(PolicyViolation):
            client.chat.completions.create(model="m", messages=MSG,  # type: ignore[arg-type]
                                           extra_body={"messages": [{"role": "user", "content": "ignore previous"}]})
        client.chat.completions.create(model="m", messages=MSG, extra_body={"seed": 1})  # type: ignore[arg-type]
    assert len(up.calls) == 1
    assert [r["status"] for r in inference_records(log)] == [400, 200]


def test_streamed_record_has_the_user_of_the_call_not_of_the_reader(world: Any) -> None:
    """``user_id`` as a callable (the current request's user) is read when the call is made: a stream read
    later, in another context, is recorded for the user who made the call."""
    up, log, _h = world
    current: contextvars.ContextVar[str | None] = contextvars.ContextVar("user", default=None)
    with _client(up) as client:
        instrument(client, log=log, user_id=current.get)
        token = current.set("alice")
        stream = client.chat.completions.create(model="m", messages=MSG, stream=True)  # type: ignore[arg-type]
        current.reset(token)
        current.set("bob")
        list(stream)
        current.set("alice")
        client.chat.completions.create(model="m", messages=MSG)  # type: ignore[arg-type]
    recs = inference_records(log)
    assert len(recs) == 2 and recs[0]["subject_ref"] == recs[1]["subject_ref"]


async def test_async_cancellation_is_recorded(world: Any) -> None:
    """A call cancelled while waiting for the provider (a timeout around it, a client gone) was sent: it
    is recorded (499), not lost."""
    up, log, _h = world
    up.set(delay_s=2.0)
    client = openai.AsyncOpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0)
    instrument(client, log=log, user_id="u")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.chat.completions.create(model="m", messages=MSG), 0.3)  # type: ignore[arg-type]
    await client.close()
    recs = inference_records(log)
    assert [r["status"] for r in recs] == [499]


def test_post_scan_failure_is_recorded(world: Any) -> None:
    """A scanner that fails on the output (after the provider answered) leaves a record, then raises."""
    up, log, _h = world

    class Broken(KeywordPipeline):
        def run(self, text: str, **kw: Any) -> Any:
            if kw.get("stage") is not None and str(kw["stage"]).endswith("post"):
                raise RuntimeError("scanner down")
            return super().run(text, **kw)

    with _client(up) as client:
        instrument(client, log=log, user_id="u", pipeline=Broken())
        with pytest.raises(RuntimeError):
            client.chat.completions.create(model="m", messages=MSG)  # type: ignore[arg-type]
        stream = client.chat.completions.create(model="m", messages=MSG, stream=True)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError):
            list(stream)
    recs = inference_records(log)
    assert len(recs) == 2 and all(r["status"] == 500 for r in recs)


def test_abandoned_stream_is_recorded(world: Any) -> None:
    """A stream left after a ``break`` without ``close()`` is recorded (499) once it is dropped."""
    up, log, _h = world
    up.set(reply="a b c d")
    with _client(up) as client:
        instrument(client, log=log, user_id="u")
        stream = client.chat.completions.create(model="m", messages=MSG, stream=True)  # type: ignore[arg-type]
        for _chunk in stream:
            break
        del stream, _chunk
        gc.collect()
    assert [r["status"] for r in inference_records(log)] == [499]


def test_raw_response_header_in_any_case_is_screened(world: Any) -> None:
    """The SDK reads its raw-response header case-insensitively (any truthy value): asked for by hand in
    lower case, the raw response's ``parse()`` is still the screened result, and the record has the output."""
    up, log, _h = world
    up.set(reply="a secret")
    pipe = KeywordPipeline(redact=["secret"])
    with _client(up) as client:
        instrument(client, log=log, user_id="u", pipeline=pipe)
        raw: Any = client.chat.completions.create(model="m", messages=MSG,  # type: ignore[arg-type]
                                                  extra_headers={"x-stainless-raw-response": "true"})
        assert raw.parse().choices[0].message.content == "a [REDACTED]"
    recs = inference_records(log)
    assert len(recs) == 1 and recs[0]["status"] == 200 and recs[0]["output_tokens"] > 0


def test_override_cast_to_header_is_refused(world: Any) -> None:
    """The SDK's private cast-to override header makes create() return the bare HTTP response, which the
    wrapper cannot screen: refused before anything is sent."""
    import httpx2

    up, log, _h = world
    with _client(up) as client:
        instrument(client, log=log, user_id="u")
        with pytest.raises(PolicyViolation):
            client.chat.completions.create(model="m", messages=MSG,  # type: ignore[arg-type]
                                           extra_headers={"____stainless_override_cast_to": httpx2.Response})  # type: ignore[dict-item]
    assert up.calls == []
    assert [r["status"] for r in inference_records(log)] == [400]
