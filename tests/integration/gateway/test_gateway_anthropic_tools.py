"""Tools across the Anthropic format: /v1/messages clients with an OpenAI upstream, and OpenAI clients
with an Anthropic provider (a second gateway's /v1/messages). Tool definitions, tool_use / tool_calls,
tool results, streamed or not, all arrive in the other format intact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from soc2ai.config import parse_config
from soc2ai.testing.gateway import Harness, inference_records
from soc2ai.testing.server import serve_in_thread

ARGS = {"city": "Oslo", "unit": "celsius"}
TOOL = {"name": "weather", "description": "current weather", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}}}
ASK = [{"role": "user", "content": "weather in Oslo?"}]


def _anthropic_client(env: Harness) -> tuple[Any, str]:
    app, _log, keys = env.app(env.config())
    secret, _ = keys.create(role="inference", user_id="tools")
    return app, secret


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_messages_tools_reach_openai_upstream_and_tool_use_comes_back(env: Harness, stream: bool) -> None:
    app, secret = _anthropic_client(env)
    env.up.set(tool_calls=(("weather", json.dumps(ARGS)),))
    with serve_in_thread(app) as url, anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0) as client:
        kw: dict[str, Any] = {"model": "m", "max_tokens": 50, "messages": ASK, "tools": [TOOL],
                              "tool_choice": {"type": "tool", "name": "weather"}}
        if stream:
            with client.messages.stream(**kw) as s:
                msg = s.get_final_message()
        else:
            msg = client.messages.create(**kw)
    uses = [b for b in msg.content if b.type == "tool_use"]
    assert msg.stop_reason == "tool_use"
    assert [(u.name, u.input) for u in uses] == [("weather", ARGS)] and uses[0].id == "call_0"
    sent = env.up.calls[-1]
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "weather", "parameters": TOOL["input_schema"], "description": "current weather"}}]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "weather"}}


def test_messages_tool_result_turn_becomes_openai_tool_message(env: Harness) -> None:
    app, secret = _anthropic_client(env)
    history = [*ASK, {"role": "assistant", "content": [
        {"type": "text", "text": "checking"},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": ARGS}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "4 degrees"},
                                     {"type": "text", "text": "and tomorrow?"}]}]
    with serve_in_thread(app) as url, anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0) as client:
        client.messages.create(model="m", max_tokens=50, messages=history, tools=[TOOL])  # type: ignore[arg-type]
    msgs = env.up.calls[-1]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "user"]
    assert msgs[1]["content"] == "checking"
    assert msgs[1]["tool_calls"] == [{"id": "toolu_1", "type": "function", "function": {
        "name": "weather", "arguments": json.dumps(ARGS, separators=(",", ":"))}}]
    assert msgs[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "4 degrees"}
    assert msgs[3] == {"role": "user", "content": "and tomorrow?"}


def test_messages_unsupported_block_is_a_400_naming_it(env: Harness) -> None:
    app, secret = _anthropic_client(env)
    image = [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                       "data": "iVBORw0KGgo="}}]}]
    with serve_in_thread(app) as url, anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0) as client:
        with pytest.raises(anthropic.BadRequestError) as err:
            client.messages.create(model="m", max_tokens=5, messages=image)  # type: ignore[arg-type]
    assert "messages[0].content[0]" in str(err.value) and "image" in str(err.value)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_openai_client_tools_through_an_anthropic_provider(env: Harness, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, stream: bool) -> None:
    """OpenAI tools → Anthropic tools → (inner gateway) → OpenAI upstream, and tool calls all the way back."""
    inner_app, secret = _anthropic_client(env)
    env.up.set(tool_calls=(("weather", json.dumps(ARGS)),))
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", secret)
    outer = tmp_path / "outer"
    outer.mkdir()
    with serve_in_thread(inner_app) as inner_url:
        cfg = parse_config(
            f'[ledger]\nstore = "sqlite:///{outer}/a.db"\nkeys_dir = "{outer}/keys"\nspool_dir = "{outer}/spool"\n'
            f'[gateway]\nkeys_db = "{outer}/keys.db"\n[gateway.providers.claude]\nkind = "anthropic"\n'
            f'base_url = "{inner_url}"\napi_key_env = "TEST_ANTHROPIC_KEY"\n[gateway.models]\nclaude = ["claude:m"]\n',
            root=outer)
        h = Harness(outer, env.up, env.backup)
        app, log, keys = h.app(cfg)
        key, _ = keys.create(role="inference", user_id="u")
        tools = [{"type": "function", "function": {"name": "weather", "description": "current weather",
                                                   "parameters": TOOL["input_schema"]}}]
        with serve_in_thread(app) as url, openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0) as c:
            kw: dict[str, Any] = {"model": "claude", "messages": ASK, "max_tokens": 50, "tools": tools,
                                  "tool_choice": "required"}
            if stream:
                acc: dict[int, list[str]] = {}
                finish = None
                for ch in c.chat.completions.create(**kw, stream=True):
                    for choice in ch.choices:
                        finish = choice.finish_reason or finish
                        for d in choice.delta.tool_calls or []:
                            acc.setdefault(d.index, []).append(d.function.arguments or "" if d.function else "")
                calls = [("weather", "".join(acc[i])) for i in sorted(acc)]
            else:
                r = c.chat.completions.create(**kw)
                finish = r.choices[0].finish_reason
                calls = [(tc.function.name, tc.function.arguments) for tc in r.choices[0].message.tool_calls or []]
    assert finish == "tool_calls"
    assert [(n, json.loads(a)) for n, a in calls] == [("weather", ARGS)]
    assert env.up.calls[-1]["tool_choice"] == "required"  # OpenAI "required" → Anthropic "any" → "required"
    assert inference_records(log)[0]["provider"] == "claude"
    for lg in h.logs:
        lg.close()
