"""Conversions between OpenAI chat completions (the gateway's internal shape) and Anthropic messages.

Used both ways: ``/v1/messages`` clients talk Anthropic to an OpenAI-style upstream, and OpenAI clients
reach an Anthropic provider. Text content only; other block types are refused with a 400.
"""

from __future__ import annotations

import time
from typing import Any

from soc2ai.gateway.errors import bad_request

_STOP_TO_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
_FINISH_TO_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                   "content_filter": "end_turn"}


def _blocks_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for i, block in enumerate(content):
            if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
                raise bad_request(f"{where}[{i}]: only text content blocks are supported", param=where)
            out.append(block["text"])
        return "".join(out)
    raise bad_request(f"{where} must be a string or a list of text blocks", param=where)


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
        out_msgs.append({"role": m["role"], "content": _blocks_text(m.get("content"), f"messages[{i}].content")})
    chat: dict[str, Any] = {"model": req.get("model"), "messages": out_msgs, "max_tokens": max_tokens}
    for src, dst in (("temperature", "temperature"), ("top_p", "top_p"), ("stop_sequences", "stop"),
                     ("stream", "stream")):
        if req.get(src) is not None:
            chat[dst] = req[src]
    for name in ("template", "variables"):
        if name in req:
            chat[name] = req[name]
    return chat


def chat_response_to_message(resp: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI chat completion as an Anthropic message."""
    choice = (resp.get("choices") or [{}])[0]
    text = (choice.get("message") or {}).get("content") or ""
    usage = resp.get("usage") or {}
    return {"id": "msg_" + str(resp.get("id") or "").removeprefix("chatcmpl-"), "type": "message",
            "role": "assistant", "model": model, "content": [{"type": "text", "text": text}],
            "stop_reason": _FINISH_TO_STOP.get(choice.get("finish_reason") or "stop", "end_turn"),
            "stop_sequence": None,
            "usage": {"input_tokens": int(usage.get("prompt_tokens") or 0),
                      "output_tokens": int(usage.get("completion_tokens") or 0)}}


def chat_to_anthropic_request(chat: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI chat request for an Anthropic provider (system messages folded into ``system``)."""
    system = [m["content"] for m in chat["messages"] if m.get("role") == "system"]
    msgs = [{"role": m["role"], "content": m["content"]} for m in chat["messages"] if m.get("role") != "system"]
    out: dict[str, Any] = {"model": model, "messages": msgs,
                           "max_tokens": chat.get("max_tokens") or chat.get("max_completion_tokens") or 1024}
    if system:
        out["system"] = "\n\n".join(str(s) for s in system)
    for src, dst in (("temperature", "temperature"), ("top_p", "top_p"), ("stop", "stop_sequences")):
        if chat.get(src) is not None:
            v = chat[src]
            out[dst] = [v] if dst == "stop_sequences" and isinstance(v, str) else v
    return out


def anthropic_message_to_chat(msg: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic message response as an OpenAI chat completion."""
    text = "".join(b.get("text", "") for b in msg.get("content") or [] if isinstance(b, dict))
    usage = msg.get("usage") or {}
    inp, outp = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    return {"id": "chatcmpl-" + str(msg.get("id") or ""), "object": "chat.completion", "created": int(time.time()),
            "model": msg.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                         "finish_reason": _STOP_TO_FINISH.get(msg.get("stop_reason") or "", "stop")}],
            "usage": {"prompt_tokens": inp, "completion_tokens": outp, "total_tokens": inp + outp}}


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One Anthropic server-sent event."""
    import orjson

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


def message_stream_end(finish: str | None, output_tokens: int) -> bytes:
    """The closing events: ``content_block_stop``, ``message_delta``, ``message_stop``."""
    return (sse("content_block_stop", {"type": "content_block_stop", "index": 0})
            + sse("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": _FINISH_TO_STOP.get(finish or "stop", "end_turn"),
                                              "stop_sequence": None},
                                    "usage": {"output_tokens": output_tokens}})
            + sse("message_stop", {"type": "message_stop"}))
