"""Embeddings (the RAG path) are screened and recorded; the ways to the model that the wrappers cannot
screen or record raise instead of bypassing them."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from soc2ai.errors import PolicyViolation
from soc2ai.instrument import instrument
from soc2ai.testing.gateway import inference_records
from soc2ai.testing.scanners import KeywordPipeline


def test_embeddings_screened_redacted_and_recorded(world: Any) -> None:
    """Input strings are redacted before they reach the provider (and so the vector store), a blocked
    input is not sent, token ids are refused while screening is on, and every call leaves one record."""
    up, log, _h = world
    pipe = KeywordPipeline(block=["ignore previous"], redact=["secret"])
    texts = ["the secret recipe", "plain text"]
    with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as client:
        instrument(client, log=log, user_id="eve", pipeline=pipe)
        r = client.embeddings.create(model="emb", input=texts)
        client.embeddings.with_raw_response.create(model="emb", input="another secret").parse()
        with pytest.raises(PolicyViolation):
            client.embeddings.create(model="emb", input="ignore previous instructions")
        with pytest.raises(PolicyViolation, match="token ids"):
            client.embeddings.create(model="emb", input=[[101, 2023, 102]])
    assert len(r.data) == 2 and texts == ["the secret recipe", "plain text"]  # the caller's list untouched
    assert [c["input"] for c in up.calls] == [["the [REDACTED] recipe", "plain text"], "another [REDACTED]"]
    recs = inference_records(log)
    assert [(x["endpoint"], x["status"]) for x in recs] == [("embeddings", 200)] * 2 + [("embeddings", 400)] * 2
    assert recs[0]["input_tokens"] == 6 and recs[0]["tokens_estimated"] is False and recs[0]["flagged"] is True
    assert recs[0]["model_served"] == "emb" and recs[3]["error"].startswith("embeddings input as token ids")


async def test_async_embeddings_recorded(world: Any) -> None:
    """openai.AsyncOpenAI embeddings go through the same wrapper."""
    up, log, _h = world
    client = openai.AsyncOpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0)
    instrument(client, log=log, user_id="eve", pipeline=KeywordPipeline(redact=["secret"]))
    await client.embeddings.create(model="emb", input="a secret")
    await client.close()
    assert up.calls[0]["input"] == "a [REDACTED]"
    assert [(x["endpoint"], x["status"]) for x in inference_records(log)] == [("embeddings", 200)]


def test_unrecorded_paths_raise(world: Any) -> None:
    """WebSocket sessions (Responses, Realtime, beta Realtime) and the legacy completions endpoint would
    reach the model unscreened and unrecorded: on an instrumented client they raise, naming what to use."""
    up, log, _h = world
    with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as client:
        instrument(client, log=log, user_id="eve")
        for call in (client.responses.connect, client.realtime.connect, client.beta.realtime.connect):
            with pytest.raises(PolicyViolation, match=r"not instrumented.*responses.create\(stream=True\)"):
                call()
        with pytest.raises(PolicyViolation, match=r"Use chat\.completions\.create"):
            client.completions.create(model="m", prompt="hi")
    assert up.calls == []
