"""Conversions between OpenAI chat completions (the gateway's internal shape) and Anthropic messages.

Used both ways: ``/v1/messages`` clients talk Anthropic to an OpenAI-style upstream, and OpenAI clients
reach an Anthropic provider. Text, ``tool_use`` and ``tool_result`` blocks, tool definitions and structured
outputs (``output_config.format`` <-> ``response_format``) are translated; other block types (images,
documents) and request fields that cannot be translated are refused with a 400 naming them.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from soc2ai.gateway.core import message_text
from soc2ai.gateway.errors import bad_request

_STOP_TO_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
_FINISH_TO_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                   "content_filter": "end_turn", "refusal": "refusal"}


def _blocks_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for i, block in enumerate(content):
            if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
                raise bad_request(f"{where}[{i}]: only text content blocks are supported here", param=where)
            out.append(block["text"])
        return "".join(out)
    raise bad_request(f"{where} must be a string or a list of text blocks", param=where)


def _message_to_chat(m: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """One Anthropic message as OpenAI messages: tool results become ``tool`` messages (first, as OpenAI
    wants them right after the assistant turn that called), tool uses become ``tool_calls``."""
    content = m.get("content")
    if not isinstance(content, list):
        return [{"role": m["role"], "content": _blocks_text(content, where)}]
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        at = f"{where}[{i}]"
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use" and m["role"] == "assistant":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str) \
                    or not isinstance(block.get("input"), dict):
                raise bad_request(f"{at}: tool_use needs string id and name and an object input", param=at)
            calls.append({"id": block["id"], "type": "function",
                          "function": {"name": block["name"], "arguments": orjson.dumps(block["input"]).decode()}})
        elif kind == "tool_result" and m["role"] == "user":
            if not isinstance(block.get("tool_use_id"), str):
                raise bad_request(f"{at}: tool_result needs a string tool_use_id", param=at)
            body = block.get("content", "")
            results.append({"role": "tool", "tool_call_id": block["tool_use_id"],
                            "content": _blocks_text(body, f"{at}.content")})
        else:
            raise bad_request(f"{at}: unsupported content block {kind!r} (text, tool_use, tool_result)", param=at)
    out: list[dict[str, Any]] = list(results)
    if m["role"] == "assistant":
        out.append({"role": "assistant", "content": "".join(texts) if texts else None,
                    **({"tool_calls": calls} if calls else {})})
    elif texts or not results:
        out.append({"role": "user", "content": "".join(texts)})
    return out


# Keys of an Anthropic tool definition that are translated, or (cache_control, a caching hint) ignored. Any
# other (input_examples, defer_loading, ...) changes what the model does with the tool: a 400 naming it.
_TOOL_KEYS = frozenset({"name", "input_schema", "description", "strict", "type", "cache_control"})


def _tools_to_chat(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise bad_request("tools must be a list", param="tools")
    out = []
    for i, t in enumerate(tools):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not isinstance(t.get("input_schema"), dict):
            raise bad_request(f"tools[{i}] needs a string name and an object input_schema", param=f"tools[{i}]")
        extra = next((k for k, v in t.items() if k not in _TOOL_KEYS and v is not None), None)
        if extra is not None or t.get("type") not in (None, "custom"):
            at = f"tools[{i}].{extra or 'type'}"
            raise bad_request(f"{at}: not translated by the gateway (name, description, input_schema, strict)",
                              param=at)
        fn: dict[str, Any] = {"name": t["name"], "parameters": t["input_schema"]}
        if isinstance(t.get("description"), str):
            fn["description"] = t["description"]
        strict = t.get("strict")
        if strict is not None:  # strict tool use: a guarantee on the input's shape, kept as OpenAI's
            if not isinstance(strict, bool):
                raise bad_request(f"tools[{i}].strict must be a boolean", param=f"tools[{i}].strict")
            fn["strict"] = strict
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice_to_chat(choice: Any) -> tuple[Any, bool | None]:
    """``(tool_choice, parallel_tool_calls)``: Anthropic's ``disable_parallel_tool_use`` is OpenAI's
    ``parallel_tool_calls = false`` (None when not given)."""
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "tool" and isinstance(choice.get("name"), str):
        mapped: Any = {"type": "function", "function": {"name": choice["name"]}}
    else:
        mapped = {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))
        if mapped is None:
            raise bad_request("tool_choice must be {type: auto | any | none | tool}", param="tool_choice")
    disable = choice.get("disable_parallel_tool_use")
    if disable is not None and not isinstance(disable, bool):
        raise bad_request("tool_choice.disable_parallel_tool_use must be a boolean",
                          param="tool_choice.disable_parallel_tool_use")
    return mapped, None if disable is None else not disable


# What ``messages_to_chat`` does with each /v1/messages request field. Translated: the fields read below.
# Ignored (accepted, not forwarded): they do not change what the model answers (attribution, capacity and
# speed, prompt caching, diagnostics). Every other field with a value is refused with a 400 naming it,
# since a field the gateway does not translate may change the answer (fail closed, never dropped silently).
_TRANSLATED = frozenset({"model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k",
                         "stop_sequences", "stream", "tools", "tool_choice", "output_config", "output_format",
                         "thinking", "template", "variables"})
_IGNORED = frozenset({"metadata", "service_tier", "speed", "cache_control", "diagnostics", "user_profile_id"})
_REFUSED_WHY = {
    "inference_geo": "the gateway's routing ([gateway.models]) decides where a request is processed",
    "container": "server-side containers (code execution) are not available through the gateway",
    "mcp_servers": "MCP servers are called by the provider, out of the gateway's screening",
    "context_management": "it changes the context the model sees after the gateway screened it",
}
# The name an Anthropic schema gets as an OpenAI ``json_schema`` (Anthropic has none). A constant, not
# the schema's ``title``: names are not screened, a title is, and a redacted title must not leak here.
_SCHEMA_NAME = "output"


def _json_schema_format(value: Any, where: str) -> dict[str, Any]:
    """An Anthropic output format (``{"type": "json_schema", "schema": {...}}``) as OpenAI's
    ``response_format``; any other shape is a 400 naming ``where``."""
    if not isinstance(value, dict) or value.get("type") != "json_schema" or not isinstance(value.get("schema"), dict):
        raise bad_request(f'{where} must be {{"type": "json_schema", "schema": {{...}}}}', param=where)
    extra = sorted(set(value) - {"type", "schema"})
    if extra:
        raise bad_request(f"{where}.{extra[0]} is not supported", param=f"{where}.{extra[0]}")
    return {"type": "json_schema", "json_schema": {"name": _SCHEMA_NAME, "schema": value["schema"]}}


def _output_format_to_chat(req: dict[str, Any]) -> dict[str, Any] | None:
    """The request's structured-output schema (``output_config.format``, or the older beta
    ``output_format``) as ``response_format``; None without one. ``output_config`` keys other than
    ``format`` (``effort``, ``task_budget``, ...) are refused: not every provider of a fallback chain can
    honour them, and dropping them would change the answer unseen."""
    found = None
    config = req.get("output_config")
    if config is not None:
        if not isinstance(config, dict):
            raise bad_request("output_config must be an object", param="output_config")
        for k, v in config.items():
            if k != "format" and v is not None:
                raise bad_request(f"output_config.{k} is not supported by the gateway (only output_config.format)",
                                  param=f"output_config.{k}")
        if config.get("format") is not None:
            found = _json_schema_format(config["format"], "output_config.format")
    if req.get("output_format") is not None:
        if found is not None:
            raise bad_request("output_format and output_config.format are both given; send one", param="output_format")
        found = _json_schema_format(req["output_format"], "output_format")
    return found


def _refuse_untranslated(req: dict[str, Any]) -> None:
    """A 400 naming the first request field with a value that would not reach the model (see
    :data:`_TRANSLATED`); ``thinking`` only as ``{"type": "disabled"}`` (thinking blocks are not
    translated)."""
    for k in sorted(req):
        if k in _TRANSLATED or k in _IGNORED or req[k] is None:
            continue
        why = _REFUSED_WHY.get(k, "the gateway does not translate it, and dropping it could change the answer")
        raise bad_request(f"{k} is not supported by the gateway's /v1/messages: {why}", param=k)
    thinking = req.get("thinking")
    if thinking is not None and thinking != {"type": "disabled"}:
        raise bad_request('thinking is not supported by the gateway\'s /v1/messages (thinking blocks are not '
                          'translated); omit it or send {"type": "disabled"}', param="thinking")
    top_k = req.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0):
        raise bad_request("top_k must be a non-negative integer", param="top_k")


def messages_to_chat(req: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic ``/v1/messages`` request as an OpenAI chat request (validated)."""
    msgs = req.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise bad_request("messages must be a non-empty list", param="messages")
    max_tokens = req.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise bad_request("max_tokens must be a positive integer", param="max_tokens")
    out_msgs: list[dict[str, Any]] = []
    if req.get("system") is not None:
        out_msgs.append({"role": "system", "content": _blocks_text(req["system"], "system")})
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            raise bad_request(f"messages[{i}].role must be 'user' or 'assistant'", param=f"messages[{i}]")
        out_msgs.extend(_message_to_chat(m, f"messages[{i}].content"))
    _refuse_untranslated(req)
    chat: dict[str, Any] = {"model": req.get("model"), "messages": out_msgs, "max_tokens": max_tokens}
    # top_k has no OpenAI field: sent as ``top_k``, which vLLM-style servers take and OpenAI refuses (a 400
    # passed back), rather than dropped.
    for src, dst in (("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k"),
                     ("stop_sequences", "stop"), ("stream", "stream")):
        if req.get(src) is not None:
            chat[dst] = req[src]
    if req.get("tools") is not None:
        chat["tools"] = _tools_to_chat(req["tools"])
    if req.get("tool_choice") is not None:
        chat["tool_choice"], parallel = _tool_choice_to_chat(req["tool_choice"])
        if parallel is not None:
            chat["parallel_tool_calls"] = parallel
    response_format = _output_format_to_chat(req)
    if response_format is not None:  # screened from here on like any response_format (DEFINITION_FIELDS)
        chat["response_format"] = response_format
    for name in ("template", "variables"):
        if name in req:
            chat[name] = req[name]
    return chat


def _tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's JSON arguments as Anthropic ``input`` (an object; anything else is wrapped)."""
    try:
        value = orjson.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except orjson.JSONDecodeError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def tool_use_blocks(tool_calls: Any) -> list[dict[str, Any]]:
    """OpenAI ``tool_calls`` as Anthropic ``tool_use`` content blocks."""
    out = []
    for tc in tool_calls if isinstance(tool_calls, list) else ():
        fn = tc.get("function") if isinstance(tc, dict) else None
        if isinstance(fn, dict):
            out.append({"type": "tool_use", "id": str(tc.get("id") or ""), "name": str(fn.get("name") or ""),
                        "input": _tool_input(fn.get("arguments"))})
    return out


def chat_response_to_message(resp: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI chat completion as an Anthropic message."""
    choice = (resp.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content = message.get("content") or ""
    if isinstance(content, list):  # a list of parts, as some servers send: its text, not its reasoning
        content = [p for p in content if not (isinstance(p, dict) and p.get("type") == "thinking")]
    text = message_text(content)
    stop = _FINISH_TO_STOP.get(choice.get("finish_reason") or "stop", "end_turn")
    if not text and isinstance(refusal := message.get("refusal"), str) and refusal:
        text, stop = refusal, "refusal"  # OpenAI's refusal field; Anthropic says so with stop_reason
    tools = tool_use_blocks(message.get("tool_calls"))
    usage = resp.get("usage") or {}
    content = ([{"type": "text", "text": text}] if text or not tools else []) + tools
    return {"id": "msg_" + str(resp.get("id") or "").removeprefix("chatcmpl-"), "type": "message",
            "role": "assistant", "model": model, "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": int(usage.get("prompt_tokens") or 0),
                      "output_tokens": int(usage.get("completion_tokens") or 0)}}


def _chat_message_to_anthropic(m: dict[str, Any]) -> dict[str, Any]:
    if m.get("role") == "tool":
        return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": str(m.get("tool_call_id") or ""),
                                             "content": m.get("content") or ""}]}
    blocks = tool_use_blocks(m.get("tool_calls")) if m.get("role") == "assistant" else []
    if not blocks:
        return {"role": m["role"], "content": m.get("content") or ""}
    text = m.get("content")
    return {"role": "assistant", "content": ([{"type": "text", "text": text}] if text else []) + blocks}


# What ``chat_to_anthropic_request`` does with each chat request field. Translated: the fields read there.
# Not sent (accepted): they do not change the answer (attribution, storage, caching hints, stream options the
# gateway handles itself, and ``seed``, best effort on OpenAI too). Any other field is refused with a 400
# naming it unless its value is the neutral one below: dropping it would change the answer the client asked
# for (fail closed, as on /v1/messages).
_CHAT_TRANSLATED = frozenset({"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
                              "top_k", "stop", "stream", "tools", "tool_choice", "parallel_tool_calls",
                              "response_format", "n"})
_CHAT_NOT_SENT = frozenset({"user", "metadata", "store", "service_tier", "stream_options", "seed",
                            "prompt_cache_key", "safety_identifier"})


def _neutral(name: str, value: Any) -> bool:
    """Whether ``value`` of chat field ``name`` asks for nothing an Anthropic provider would not do anyway."""
    if name == "logprobs":
        return value is False
    if name in ("top_logprobs", "frequency_penalty", "presence_penalty"):
        return not isinstance(value, bool) and value == 0
    return (name == "logit_bias" and value == {}) or (name == "modalities" and value == ["text"])


def _refuse_untranslatable_chat(chat: dict[str, Any]) -> None:
    for name, value in chat.items():
        if value is None or name in _CHAT_TRANSLATED or name in _CHAT_NOT_SENT or _neutral(name, value):
            continue
        raise bad_request(f"an Anthropic provider cannot take {name!r}: it has no equivalent, and dropping it "
                          "would change the answer", param=name)
    for i, t in enumerate(chat.get("tools") or ()):
        if isinstance(t, dict) and t.get("type", "function") != "function":
            raise bad_request(f"tools[{i}]: an Anthropic provider takes function tools only", param=f"tools[{i}]")


def chat_to_anthropic_request(chat: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI chat request for an Anthropic provider (system messages folded into ``system``, tool
    messages into ``tool_result`` blocks of one user turn); fields it cannot honour are a 400."""
    _refuse_untranslatable_chat(chat)
    system = [m["content"] for m in chat["messages"] if m.get("role") == "system"]
    msgs: list[dict[str, Any]] = []
    for m in chat["messages"]:
        if m.get("role") == "system":
            continue
        am = _chat_message_to_anthropic(m)
        if m.get("role") == "tool" and msgs and msgs[-1]["role"] == "user" and isinstance(msgs[-1]["content"], list):
            msgs[-1]["content"].extend(am["content"])  # consecutive results answer one assistant turn
        else:
            msgs.append(am)
    out: dict[str, Any] = {"model": model, "messages": msgs,
                           "max_tokens": chat.get("max_tokens") or chat.get("max_completion_tokens") or 1024}
    if system:
        out["system"] = "\n\n".join(str(s) for s in system)
    for src, dst in (("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k"),
                     ("stop", "stop_sequences")):
        if chat.get(src) is not None:
            v = chat[src]
            out[dst] = [v] if dst == "stop_sequences" and isinstance(v, str) else v
    if isinstance(chat.get("tools"), list):
        out["tools"] = [_tool_to_anthropic(t["function"]) for t in chat["tools"]
                        if isinstance(t, dict) and isinstance(t.get("function"), dict)
                        and isinstance(t["function"].get("name"), str)]
    choice = chat.get("tool_choice")
    if choice is not None:
        if isinstance(choice, dict):
            fn = choice.get("function")
            if not (isinstance(fn, dict) and isinstance(fn.get("name"), str)):
                raise bad_request("an Anthropic provider takes tool_choice {\"type\": \"function\", "
                                  "\"function\": {\"name\": ...}} or none / auto / required", param="tool_choice")
            out["tool_choice"] = {"type": "tool", "name": fn["name"]}
        else:
            out["tool_choice"] = {"type": {"auto": "auto", "required": "any", "none": "none"}.get(choice, "auto")}
    if chat.get("parallel_tool_calls") is False and out.get("tools"):
        tc = out.setdefault("tool_choice", {"type": "auto"})
        if tc["type"] != "none":  # Anthropic takes the flag with auto, any and tool only
            tc["disable_parallel_tool_use"] = True
    fmt = _response_format_to_anthropic(chat.get("response_format"))
    if fmt is not None:
        out["output_config"] = {"format": fmt}
    n = chat.get("n")
    if isinstance(n, int) and n > 1:  # one answer would come back where the client asked for several
        raise bad_request("an Anthropic provider answers with one choice: n must be 1", param="n")
    return out


def _tool_to_anthropic(fn: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI function definition as an Anthropic tool (strict tool use kept)."""
    tool: dict[str, Any] = {"name": fn["name"], "input_schema": fn.get("parameters") or {"type": "object"}}
    if fn.get("description"):
        tool["description"] = fn["description"]
    if isinstance(fn.get("strict"), bool):
        tool["strict"] = fn["strict"]
    return tool


def _response_format_to_anthropic(rf: Any) -> dict[str, Any] | None:
    """A chat ``response_format`` as Anthropic's ``output_config.format`` (None for none or plain text);
    Anthropic has no schema-less JSON mode, so ``json_object`` and anything else is a 400 rather than an
    answer of another shape."""
    if rf is None or (isinstance(rf, dict) and rf.get("type") == "text"):
        return None
    spec = rf.get("json_schema") if isinstance(rf, dict) and rf.get("type") == "json_schema" else None
    if not (isinstance(spec, dict) and isinstance(spec.get("schema"), dict)):
        raise bad_request('an Anthropic provider takes response_format {"type": "json_schema", "json_schema": '
                          '{"name": ..., "schema": {...}}} or {"type": "text"}', param="response_format")
    return {"type": "json_schema", "schema": spec["schema"]}


def anthropic_message_to_chat(msg: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic message response as an OpenAI chat completion."""
    blocks = [b for b in msg.get("content") or [] if isinstance(b, dict)]
    text = "".join(b.get("text", "") for b in blocks if b.get("type", "text") == "text")
    calls = [{"id": str(b.get("id") or ""), "type": "function",
              "function": {"name": str(b.get("name") or ""), "arguments": orjson.dumps(b.get("input") or {}).decode()}}
             for b in blocks if b.get("type") == "tool_use"]
    usage = msg.get("usage") or {}
    inp, outp = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return {"id": "chatcmpl-" + str(msg.get("id") or ""), "object": "chat.completion", "created": int(time.time()),
            "model": msg.get("model"),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": _STOP_TO_FINISH.get(msg.get("stop_reason") or "", "stop")}],
            "usage": {"prompt_tokens": inp, "completion_tokens": outp, "total_tokens": inp + outp}}


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One Anthropic server-sent event."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def message_stream_events(msg_id: str, model: str, input_tokens: int) -> tuple[bytes, bytes]:
    """The opening events of an Anthropic stream: ``message_start`` and ``content_block_start``."""
    start = sse("message_start", {"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 0}}})
    block = sse("content_block_start", {"type": "content_block_start", "index": 0,
                                        "content_block": {"type": "text", "text": ""}})
    return start, block


def message_stream_delta(text: str) -> bytes:
    """A text delta event."""
    return sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": text}})


def message_stream_end(finish: str | None, output_tokens: int, tool_calls: Any = None) -> bytes:
    """The closing events: ``content_block_stop`` of the text block, one complete ``tool_use`` block per
    tool call (start, its whole input as one ``input_json_delta``, stop), ``message_delta``, ``message_stop``."""
    tools = b""
    for i, block in enumerate(tool_use_blocks(tool_calls), start=1):
        tools += (sse("content_block_start", {"type": "content_block_start", "index": i,
                                              "content_block": {**block, "input": {}}})
                  + sse("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                      "type": "input_json_delta", "partial_json": orjson.dumps(block["input"]).decode()}})
                  + sse("content_block_stop", {"type": "content_block_stop", "index": i}))
    return (sse("content_block_stop", {"type": "content_block_stop", "index": 0}) + tools
            + sse("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": _FINISH_TO_STOP.get(finish or "stop", "end_turn"),
                                              "stop_sequence": None},
                                    "usage": {"output_tokens": output_tokens}})
            + sse("message_stop", {"type": "message_stop"}))
