"""Tool definitions the SDKs build from Python objects, redacted as the deployer's own text: openai's
``pydantic_function_tool(Model)`` / ``pydantic_responses_function_tool(Model)`` are dict subclasses that
remember the model ``parse()`` reads a call's arguments into, and keep it when their text is redacted;
anthropic's ``@beta_tool`` functions are screened and redacted as the dicts the beta SDK sends for them;
``tools`` given as a tuple or a generator is screened like a list."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import openai
import pydantic
import pytest

from soc2ai.instrument import instrument
from soc2ai.testing.gateway import inference_records
from soc2ai.testing.scanners import KeywordPipeline

MSG: Any = [{"role": "user", "content": "weather?"}]
PIPE = KeywordPipeline(redact=["hunter2"])


class Lookup(pydantic.BaseModel):
    """Look up the weather; the admin password is hunter2."""

    city: str = pydantic.Field(description="the city (never hunter2)")


def _sent(body: dict[str, Any]) -> dict[str, Any]:
    """The one function tool of a chat or Responses request body, as the Responses shape."""
    tool: dict[str, Any] = body["tools"][0]
    fn: dict[str, Any] = tool.get("function", tool)
    return fn


def _redacted(tool: dict[str, Any]) -> None:
    assert tool["name"] == "Lookup" and tool["strict"] is True
    assert tool["description"] == "Look up the weather; the admin password is [REDACTED]."
    assert tool["parameters"]["properties"]["city"]["description"] == "the city (never [REDACTED])"
    assert "hunter2" not in json.dumps(tool)


async def test_chat_parse_pydantic_tool_redacted_keeps_model(world: Any) -> None:
    """chat.completions.parse (sync and async): the redacted tool is what is sent, and the call's arguments
    still come back as a Lookup (a plain dict before); the caller's tool is left as it was."""
    up, log, _h = world
    up.set(tool_calls=(("Lookup", '{"city": "Paris"}'),))
    tool = openai.pydantic_function_tool(Lookup)
    with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as client:
        instrument(client, log=log, user_id="ana", pipeline=PIPE)
        done = client.chat.completions.parse(model="m", messages=MSG, tools=[tool])
    aclient = openai.AsyncOpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0)
    instrument(aclient, log=log, user_id="ana", pipeline=PIPE)
    adone = await aclient.chat.completions.parse(model="m", messages=MSG, tools=[tool])
    await aclient.close()
    for got in (done, adone):
        calls: Any = got.choices[0].message.tool_calls
        assert isinstance(calls[0].function.parsed_arguments, Lookup)
        assert calls[0].function.parsed_arguments == Lookup(city="Paris")
    for call in up.calls:
        _redacted(_sent(call["body"]))
    fn: Any = tool["function"]
    assert type(fn).__name__ == "PydanticFunctionTool" and "hunter2" in fn["description"]  # the caller's
    recs = inference_records(log)
    assert [(r["endpoint"], r["status"], r["flagged"]) for r in recs] == [("chat.completions", 200, True)] * 2


def test_responses_parse_pydantic_tools_redacted_keep_model(world: Any) -> None:
    """responses.parse with a chat-shaped pydantic_function_tool (the SDK raised: it needs the
    PydanticFunctionTool under "function") and with pydantic_responses_function_tool (arguments came back as
    a dict): the redacted tool is sent and the arguments are parsed into a Lookup."""
    up, log, _h = world
    up.set(tool_calls=(("Lookup", '{"city": "Paris"}'),))
    with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as client:
        instrument(client, log=log, user_id="ana", pipeline=PIPE)
        chat_shaped = client.responses.parse(model="m", input="weather?", tools=[openai.pydantic_function_tool(Lookup)])
        own = client.responses.parse(model="m", input="weather?",
                                     tools=[openai.pydantic_responses_function_tool(Lookup)])
    for got in (chat_shaped, own):
        call: Any = got.output[0]
        assert call.type == "function_call" and isinstance(call.parsed_arguments, Lookup)
        assert call.parsed_arguments == Lookup(city="Paris")
    assert len(up.calls) == 2
    for sent in up.calls:
        _redacted(_sent(sent["body"]))
    recs = inference_records(log)
    assert [(r["endpoint"], r["status"], r["flagged"]) for r in recs] == [("responses", 200, True)] * 2


@pytest.mark.parametrize("as_given", [tuple, lambda tools: (t for t in tools)], ids=["tuple", "generator"])
def test_tools_not_in_a_list_are_screened(world: Any, as_given: Any) -> None:
    """``tools`` is typed Iterable: a tuple or a generator of tools was sent unscreened (screening reads lists)."""
    up, log, _h = world
    tool = {"type": "function", "function": {"name": "f", "description": "the password is hunter2",
                                              "parameters": {"type": "object"}}}
    with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0) as client:
        instrument(client, log=log, user_id="ana", pipeline=PIPE)
        client.chat.completions.create(model="m", messages=MSG, tools=as_given([tool]))
    sent = up.calls[0]["body"]["tools"]
    assert sent == [{"type": "function", "function": {"name": "f", "description": "the password is [REDACTED]",
                                                      "parameters": {"type": "object"}}}]
    assert inference_records(log)[0]["flagged"] is True


def test_anthropic_beta_tool_objects_screened(world: Any) -> None:
    """beta.messages.create / count_tokens / parse take @beta_tool functions in ``tools`` (a list or a tuple)
    and send their ``to_dict()``: that text went out unscreened. It is redacted in what is sent now; the tool
    runner (which sends the dicts itself and runs tools by name) still runs the tool after the redaction."""
    _up, log, _h = world
    bodies: list[dict[str, Any]] = []
    ran: list[str] = []

    @anthropic.beta_tool
    def lookup(city: str) -> str:
        """Look up the weather; the admin password is hunter2.

        Args:
            city: the city (never hunter2)
        """
        ran.append(city)
        return f"sunny in {city}"

    def handler(request: httpx2.Request) -> httpx2.Response:
        bodies.append(json.loads(request.content))
        if request.url.path.endswith("/count_tokens"):
            return httpx2.Response(200, json={"input_tokens": 7})
        use = len(bodies) == 4  # the tool runner's first turn: a call of the tool
        content = [{"type": "tool_use", "id": "tu_1", "name": "lookup", "input": {"city": "Paris"}}] if use \
            else [{"type": "text", "text": "done"}]
        return httpx2.Response(200, json={
            "id": f"msg_{len(bodies)}", "type": "message", "role": "assistant", "model": "m",
            "stop_reason": "tool_use" if use else "end_turn", "stop_sequence": None,
            "content": content, "usage": {"input_tokens": 3, "output_tokens": 4}})

    with anthropic.Anthropic(base_url="http://upstream.test", api_key="x", max_retries=0,
                             http_client=httpx2.Client(transport=httpx2.MockTransport(handler))) as client:
        instrument(client, log=log, user_id="cy", pipeline=PIPE)
        client.beta.messages.create(model="m", max_tokens=50, messages=MSG, tools=[lookup])
        client.beta.messages.count_tokens(model="m", messages=MSG, tools=[lookup])
        client.beta.messages.parse(model="m", max_tokens=50, messages=MSG, tools=(lookup,))
        final = client.beta.messages.tool_runner(model="m", max_tokens=50, messages=MSG, tools=[lookup]).until_done()
    assert ran == ["Paris"] and final.content[0].type == "text"
    # The runner's second turn continues its server-side thread: the tools were sent with the first.
    assert [("tools" in b) for b in bodies] == [True] * 4 + [False] and "hunter2" not in json.dumps(bodies)
    for body in bodies[:4]:
        sent = body["tools"][0]
        assert sent["name"] == "lookup"
        assert sent["description"] == "Look up the weather; the admin password is [REDACTED]."
        assert sent["input_schema"]["properties"]["city"]["description"] == "the city (never [REDACTED])"
    assert "hunter2" in lookup.to_dict()["description"]  # the caller's tool as it was
    recs = inference_records(log)
    assert [(r["endpoint"], r["status"], r["flagged"]) for r in recs] == [
        ("messages", 200, True), ("messages.count_tokens", 200, True), ("messages", 200, True),
        ("messages", 200, True), ("messages", 200, False)]  # the runner's last turn sends no tools
