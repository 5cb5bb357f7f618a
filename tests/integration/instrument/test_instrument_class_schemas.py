"""Output schemas given as Python classes (``parse(response_format=Model)``, ``responses.parse(text_format=
Model)``, anthropic ``output_format=Model``) are built by the SDK after the wrapper ran. The wrapper builds
the same schema and screens it like a dict schema; what would be redacted or blocked there refuses the
call (a class cannot be redacted in place), before anything is sent, and the refusal is recorded."""

from __future__ import annotations

import json
from typing import Any, Literal

import anthropic
import openai
import pydantic
import pytest

from soc2ai.errors import PolicyViolation
from soc2ai.instrument import instrument
from soc2ai.testing.gateway import inference_records
from soc2ai.testing.scanners import KeywordPipeline
from soc2ai.testing.server import serve_in_thread

MSG = [{"role": "user", "content": "hello"}]
PIPE = KeywordPipeline(redact=["hunter2"], block=["forbidden"], flag=["noteworthy"])


class Login(pydantic.BaseModel):
    """Credentials for the service."""

    user: str = pydantic.Field(description="the account; its password is hunter2")


class Mode(pydantic.BaseModel):
    mode: Literal["normal", "forbidden"] = "normal"


class Noted(pydantic.BaseModel):
    city: str = pydantic.Field(description="a noteworthy remark", examples=["Paris"])


class City(pydantic.BaseModel):
    city: str


def _refused(exc: pytest.ExceptionInfo[PolicyViolation], arg: str) -> None:
    text = str(exc.value)
    assert "KEYWORD" in text and arg in text and "cannot be redacted" in text
    assert "hunter2" not in text and "forbidden" not in text  # finding types, never the matched text


def test_openai_parse_class_schema_screened(world: Any) -> None:
    """chat.completions.parse and responses.parse: a class whose description would be redacted, or whose
    enum would be blocked, is refused and never sent; a flagged one is sent and flagged; a clean one as before."""
    up, log, _h = world
    up.set(reply='{"city": "Paris"}')
    with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as client:
        instrument(client, log=log, user_id="ana", pipeline=PIPE)
        with pytest.raises(PolicyViolation) as exc:
            client.chat.completions.parse(model="m", messages=MSG, response_format=Login)  # type: ignore[arg-type]
        _refused(exc, "response_format=Login")
        with pytest.raises(PolicyViolation) as exc:
            client.chat.completions.parse(model="m", messages=MSG, response_format=Mode)  # type: ignore[arg-type]
        _refused(exc, "response_format=Mode")
        with pytest.raises(PolicyViolation) as exc:
            client.responses.parse(model="m", input="where?", text_format=Login)
        _refused(exc, "text_format=Login")
        assert up.calls == []  # nothing left the process
        flagged = client.chat.completions.parse(model="m", messages=MSG, response_format=Noted)  # type: ignore[arg-type]
        ok = client.responses.parse(model="m", input="where?", text_format=City)
    assert flagged.choices[0].message.parsed == Noted(city="Paris") and ok.output_parsed == City(city="Paris")
    assert up.calls[0]["body"]["response_format"]["json_schema"]["schema"]["properties"]["city"]["description"] \
        == "a noteworthy remark"
    recs = inference_records(log)
    assert [(r["endpoint"], r["status"], r["flagged"]) for r in recs] == [
        ("chat.completions", 400, True), ("chat.completions", 400, True), ("responses", 400, True),
        ("chat.completions", 200, True), ("responses", 200, False)]
    assert all("cannot be redacted" in r["error"] for r in recs[:3])
    assert "hunter2" not in json.dumps(recs)
    assert {d["decision"] for d in recs[0]["scans"]} == {"redact"} and recs[1]["scans"][0]["decision"] == "block"


async def test_anthropic_output_format_class_screened(world: Any, anthropic_endpoint: Any) -> None:
    """messages.parse / beta.messages.parse / messages.stream / count_tokens with output_format=Model (sync and
    async): refused before anything is sent when the schema the SDK builds holds a redacted or blocked word."""
    up, log, h = world
    app, secret = anthropic_endpoint(h)
    with serve_in_thread(app) as url, anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0) as client:
        instrument(client, log=log, user_id="bo", pipeline=PIPE)
        for call in (client.messages.parse, client.beta.messages.parse):
            with pytest.raises(PolicyViolation) as exc:
                call(model="m", max_tokens=50, messages=MSG, output_format=Login)  # type: ignore[arg-type]
            _refused(exc, "output_format=Login")
        with pytest.raises(PolicyViolation) as exc:
            client.messages.stream(model="m", max_tokens=50, messages=MSG, output_format=Mode)  # type: ignore[arg-type]
        _refused(exc, "output_format=Mode")
        with pytest.raises(PolicyViolation):
            client.messages.count_tokens(model="m", messages=MSG, output_format=Login)  # type: ignore[arg-type]
        aclient = anthropic.AsyncAnthropic(base_url=url, api_key=secret, max_retries=0)
        instrument(aclient, log=log, user_id="bo", pipeline=PIPE)
        with pytest.raises(PolicyViolation) as exc:
            await aclient.messages.parse(model="m", max_tokens=50, messages=MSG, output_format=Login)  # type: ignore[arg-type]
        _refused(exc, "output_format=Login")
        assert up.calls == []
        up.set(reply='{"city": "Paris"}')
        ok = await aclient.messages.parse(model="m", max_tokens=50, messages=MSG, output_format=City)  # type: ignore[arg-type]
        await aclient.close()
    assert ok.parsed_output == City(city="Paris")
    recs = [r for r in inference_records(log) if r.get("key_id") is None]  # not the gateway's own
    assert [(r["endpoint"], r["status"]) for r in recs] == [
        ("messages", 400), ("messages", 400), ("messages", 400), ("messages.count_tokens", 400), ("messages", 400),
        ("messages", 200)]
    assert all(r["flagged"] and "cannot be redacted" in r["error"] for r in recs[:5])


def test_anthropic_output_config_format_dict_screened(world: Any) -> None:
    """The schema as a dict goes in output_config.format (the SDK refuses a dict output_format): screened as
    the deployer's own text, redacted in what is sent (the caller's dict unchanged), refused when blocked."""
    import httpx2

    _up, log, _h = world
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        bodies.append(json.loads(request.content))
        return httpx2.Response(200, json={
            "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
            "stop_sequence": None, "content": [{"type": "text", "text": '{"city": "Paris"}'}],
            "usage": {"input_tokens": 3, "output_tokens": 4}})

    schema = {"type": "object", "description": "password hunter2", "properties": {"city": {"type": "string"}}}
    config = {"format": {"type": "json_schema", "schema": schema}, "effort": "low"}
    with anthropic.Anthropic(base_url="http://upstream.test", api_key="x", max_retries=0,
                             http_client=httpx2.Client(transport=httpx2.MockTransport(handler))) as client:
        instrument(client, log=log, user_id="cy", pipeline=PIPE)
        client.messages.create(model="m", max_tokens=50, messages=MSG, output_config=config)  # type: ignore[call-overload]
        with pytest.raises(PolicyViolation, match="KEYWORD"):
            client.messages.create(model="m", max_tokens=50, messages=MSG, output_config={  # type: ignore[call-overload]
                "format": {"type": "json_schema", "schema": {"type": "string", "enum": ["forbidden"]}}})
        with pytest.raises(PolicyViolation, match="extra_body cannot carry output_config"):
            client.messages.create(model="m", max_tokens=50, messages=MSG, extra_body={"output_config": config})  # type: ignore[arg-type]
    assert len(bodies) == 1 and "hunter2" not in json.dumps(bodies)
    assert bodies[0]["output_config"] == {"format": {"type": "json_schema", "schema": {
        **schema, "description": "password [REDACTED]"}}, "effort": "low"}
    assert schema["description"] == "password hunter2"
    recs = inference_records(log)
    assert [(r["status"], r["flagged"]) for r in recs] == [(200, True), (400, True), (400, False)]
