"""Definition fields given as SDK model instances (``response_format=ResponseFormatJSONObject(...)``), which
the SDK's ``create`` sends as their dump: they are not taken for a class to build a schema from (that
raised TypeError where the call used to work), and their text is screened and redacted like a dict's."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
from openai.types.shared import ResponseFormatJSONObject, ResponseFormatJSONSchema

from soc2ai.instrument import instrument
from soc2ai.testing.gateway import inference_records
from soc2ai.testing.scanners import KeywordPipeline

MSG: Any = [{"role": "user", "content": "hello"}]


def _client(bodies: list[dict[str, Any]]) -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        bodies.append(json.loads(request.content))
        return httpx2.Response(200, json={
            "id": "c", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "{}"}}]})

    return openai.OpenAI(base_url="http://upstream.test/v1", api_key="x", max_retries=0,
                         http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))


def test_response_format_model_instance_sent_and_screened(world: Any) -> None:
    _up, log, _h = world
    bodies: list[dict[str, Any]] = []
    schema = ResponseFormatJSONSchema.model_validate({"type": "json_schema", "json_schema": {
        "name": "out", "description": "the password is hunter2", "schema": {"type": "object"}}})
    with _client(bodies) as client:
        instrument(client, log=log, user_id="di", pipeline=KeywordPipeline(redact=["hunter2"]))
        client.chat.completions.create(model="m", messages=MSG, response_format=ResponseFormatJSONObject(
            type="json_object"))
        client.chat.completions.create(model="m", messages=MSG, response_format=schema)
    assert bodies[0]["response_format"] == {"type": "json_object"}
    assert bodies[1]["response_format"]["json_schema"]["description"] == "the password is [REDACTED]"
    assert schema.json_schema.description == "the password is hunter2"  # the caller's object unchanged
    recs = inference_records(log)
    assert [(r["status"], r["flagged"]) for r in recs] == [(200, False), (200, True)]
