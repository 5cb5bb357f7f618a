"""Tool calls are screened like text: their arguments can carry data out (post) and back in (history, pre)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from soc2ai.testing.gateway import Harness as Env
from soc2ai.testing.gateway import inference_records
from soc2ai.testing.scanners import KeywordPipeline
from soc2ai.testing.server import serve_in_thread

ARGS = json.dumps({"to": "ops@example.com", "body": "the secret plan"})
ASK = [{"role": "user", "content": "mail the plan"}]


def _tool_call(client: openai.OpenAI, stream: bool) -> tuple[str | None, list[tuple[str, str]]]:
    """(finish_reason, [(name, arguments)]) as the SDK sees them, streamed or not."""
    if not stream:
        r = client.chat.completions.create(model="m", messages=ASK)  # type: ignore[arg-type]
        calls = r.choices[0].message.tool_calls or []
        return r.choices[0].finish_reason, [(c.function.name, c.function.arguments) for c in calls]  # type: ignore[union-attr]
    finish, acc = None, {}
    for chunk in client.chat.completions.create(model="m", messages=ASK, stream=True):  # type: ignore[arg-type]
        for ch in chunk.choices:
            finish = ch.finish_reason or finish
            for d in ch.delta.tool_calls or []:
                name, args = acc.get(d.index, ("", ""))
                fn = d.function
                acc[d.index] = (name + ((fn.name or "") if fn else ""), args + ((fn.arguments or "") if fn else ""))
    return finish, [acc[i] for i in sorted(acc)]


def _answer(env: Env, pipeline: KeywordPipeline, stream: bool) -> tuple[str | None, list[tuple[str, str]], Any]:
    """The upstream answers with one ``send_mail`` tool call; (finish, calls, log) through the gateway."""
    app, log, keys = env.app(env.config(), pipeline=pipeline)
    secret, _ = keys.create(role="inference", user_id="dana")
    env.up.set(tool_calls=(("send_mail", ARGS),))
    with serve_in_thread(app) as url, openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0) as client:
        finish, calls = _tool_call(client, stream)
    return finish, calls, log


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_tool_call_arguments_are_redacted_and_stay_valid_json(env: Env, stream: bool) -> None:
    finish, calls, log = _answer(env, KeywordPipeline(redact=["secret"]), stream)
    assert finish == "tool_calls"
    assert calls == [("send_mail", ARGS.replace("secret", "[REDACTED]"))]
    assert json.loads(calls[0][1])["body"] == "the [REDACTED] plan"
    rec = inference_records(log)[0]
    assert rec["flagged"] is True and any(s["stage"] == "post" for s in rec["scans"])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_blocked_tool_call_is_withheld(env: Env, stream: bool) -> None:
    finish, calls, log = _answer(env, KeywordPipeline(block=["ops@example.com"]), stream)
    assert finish == "content_filter" and calls == []
    assert inference_records(log)[0]["flagged"] is True


def test_redaction_that_would_break_the_arguments_blocks_instead(env: Env) -> None:
    """A redaction that would leave unparseable JSON (here it eats a quote) fails closed."""
    finish, calls, _ = _answer(env, KeywordPipeline(redact=['plan"']), False)
    assert finish == "content_filter" and calls == []


def test_tool_call_arguments_in_history_are_pre_screened(env: Env) -> None:
    """Arguments of earlier assistant tool calls are shown to the model again: redacted before upstream."""
    cfg = env.config()
    app, _, keys = env.app(cfg, pipeline=KeywordPipeline(redact=["secret"]))
    secret, _ = keys.create(role="inference", user_id="dana")
    history = [*ASK, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_0", "type": "function", "function": {"name": "send_mail", "arguments": ARGS}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "sent"}, {"role": "user", "content": "thanks"}]
    with serve_in_thread(app) as url, openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0) as client:
        client.chat.completions.create(model="m", messages=history)  # type: ignore[arg-type]
    sent = env.up.calls[-1]["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert sent == ARGS.replace("secret", "[REDACTED]")
