"""The official openai and anthropic SDKs as clients of a running gateway (uvicorn on a local port)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from soc2ai.testing.gateway import Harness as Env
from soc2ai.testing.gateway import inference_records
from soc2ai.testing.scanners import KeywordPipeline
from soc2ai.testing.server import serve_in_thread


def test_openai_sdk_non_streaming_records_one_call(env: Env) -> None:
    """A plain chat completion returns the upstream answer and leaves exactly one inference record."""
    cfg = env.config()
    app, log, keys = env.app(cfg)
    secret, key = keys.create(role="inference", user_id="alice")
    with serve_in_thread(app) as url, openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0) as client:
        r = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                           temperature=0.2)
    assert r.choices[0].message.content == "Hello from the fake upstream."
    assert r.usage is not None and r.usage.total_tokens > 0
    recs = inference_records(log)
    assert len(recs) == 1
    rec = recs[0]
    assert rec["status"] == 200 and rec["model"] == "m" and rec["model_served"] == "model-a"
    assert rec["provider"] == "up" and rec["fallback_path"] == ["up:model-a=200"]
    assert rec["key_id"] == key.id and rec["tokens_estimated"] is False
    assert rec["params"]["temperature"] in ("0.2", 0.2)
    assert rec["response_id"] == r.id and rec["finish_reason"] == "stop"
    assert rec["subject_ref"] and "alice" not in str(rec)
    assert log.match(log.find(rec["id"]) or 0, response="Hello from the fake upstream.").response is True


def test_openai_sdk_streaming_assembles_and_records_once(env: Env) -> None:
    """Streaming through the gateway yields the upstream words in order and one record at the end."""
    cfg = env.config()
    app, log, keys = env.app(cfg)
    secret, _ = keys.create(role="inference", user_id="bob")
    env.up.set(reply="one two three four")
    with serve_in_thread(app) as url, openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0) as client:
        stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "count"}],
                                                stream=True)
        pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == "one two three four"
    recs = inference_records(log)
    assert len(recs) == 1 and recs[0]["status"] == 200
    assert recs[0]["output_tokens"] > 0 and recs[0]["tokens_estimated"] is False


def test_streaming_usage_only_when_asked(env: Env) -> None:
    """The gateway asks upstream for usage but passes the usage chunk on only to clients that asked."""
    cfg = env.config(gateway='stream_mode = "passthrough"')
    app, _log, keys = env.app(cfg)
    secret, _ = keys.create(role="inference", user_id="bob")
    with serve_in_thread(app) as url, openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0) as client:
        msgs = [{"role": "user", "content": "x"}]
        with_usage = list(client.chat.completions.create(model="m", messages=msgs, stream=True,  # type: ignore[arg-type]
                                                         stream_options={"include_usage": True}))
        without = list(client.chat.completions.create(model="m", messages=msgs, stream=True))  # type: ignore[arg-type]
    assert with_usage[-1].usage is not None
    assert all(c.usage is None for c in without)


@pytest.mark.parametrize("mode", ["buffer", "passthrough"])
def test_streamed_output_post_scan(env: Env, mode: str) -> None:
    """Buffer mode redacts streamed output before the client sees it; pass-through only records the flag."""
    cfg = env.config(gateway=f'stream_mode = "{mode}"')
    app, log, keys = env.app(cfg, pipeline=KeywordPipeline(redact=["secret"]))
    secret, _ = keys.create(role="inference", user_id="carol")
    env.up.set(reply="the secret plan")
    with serve_in_thread(app) as url, openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0) as client:
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "tell me"}], stream=True) if c.choices)
    rec = inference_records(log)[0]
    assert rec["flagged"] is True
    assert rec["scans"][0]["stage"] == "post"
    if mode == "buffer":
        assert text == "the [REDACTED] plan"
        assert rec.get("error") is None
    else:
        assert text == "the secret plan"
        assert "already sent" in rec["error"]


def test_anthropic_sdk_messages_and_stream(env: Env) -> None:
    """The anthropic SDK works against /v1/messages, streaming and not, served by an OpenAI upstream."""
    cfg = env.config()
    app, log, keys = env.app(cfg)
    secret, _ = keys.create(role="inference", user_id="dave")
    env.up.set(reply="bonjour le monde")
    with serve_in_thread(app) as url, anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0) as client:
        msg = client.messages.create(model="m", max_tokens=50, system="be brief",
                                     messages=[{"role": "user", "content": "hello"}])
        with client.messages.stream(model="m", max_tokens=50,
                                    messages=[{"role": "user", "content": "hello"}]) as s:
            streamed = "".join(s.text_stream)
            final = s.get_final_message()
    assert msg.content[0].type == "text" and msg.content[0].text == "bonjour le monde"
    assert msg.stop_reason == "end_turn" and msg.usage.output_tokens > 0
    assert streamed == "bonjour le monde" and final.stop_reason == "end_turn"
    recs = inference_records(log)
    assert [r["endpoint"] for r in recs] == ["messages", "messages"]


def test_anthropic_sdk_errors_in_anthropic_shape(env: Env) -> None:
    """A bad key on /v1/messages raises the anthropic SDK's AuthenticationError (Anthropic error shape)."""
    cfg = env.config()
    app, _log, _keys = env.app(cfg)
    with serve_in_thread(app) as url, anthropic.Anthropic(base_url=url, api_key="s2a_nope_nope", max_retries=0) as client:
        with pytest.raises(anthropic.AuthenticationError) as err:
            client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    body = err.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"


async def test_async_openai_sdk(env: Env) -> None:
    """AsyncOpenAI against the gateway, several concurrent calls, one record each."""
    import asyncio

    cfg = env.config()
    app, log, keys = env.app(cfg)
    secret, _ = keys.create(role="inference", user_id="erin")
    with serve_in_thread(app) as url:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=secret, max_retries=0)
        rs = await asyncio.gather(*(client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"q{i}"}]) for i in range(8)))
        await client.close()
    assert all(r.choices[0].message.content for r in rs)
    assert len(inference_records(log)) == 8


def test_embeddings_and_models(env: Env) -> None:
    """Embeddings are forwarded and recorded; /v1/models lists only the aliases the key may use."""
    cfg = env.config()
    app, log, keys = env.app(cfg)
    secret, _ = keys.create(role="inference", user_id="fay", models=["solo"])
    with serve_in_thread(app) as url, openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0) as client:
        emb = client.embeddings.create(model="solo", input=["a", "b"])
        ids = [m.id for m in client.models.list().data]
    assert len(emb.data) == 2
    assert ids == ["solo"]
    assert inference_records(log)[0]["endpoint"] == "embeddings"
