"""Instrumenting ``anthropic.Anthropic`` / ``anthropic.AsyncAnthropic``: ``messages.create`` (streaming too)."""

from __future__ import annotations

from typing import Any

from soc2ai.instrument.core import CallState, Recorder
from soc2ai.instrument.streams import patch_create, patch_stream_helper
from soc2ai.scan.interface import Action


class AnthropicAccumulator:
    """Assembles raw message stream events."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.meta: dict[str, Any] = {}

    def add(self, event: Any) -> None:
        """One event."""
        kind = getattr(event, "type", "")
        if kind == "message_start":
            msg = event.message
            self.meta.update(response_id=msg.id, model_served=msg.model)
            if msg.usage is not None:
                self.meta["input_tokens"] = msg.usage.input_tokens
        elif kind == "content_block_delta":
            text = getattr(event.delta, "text", None)
            if text:
                self.parts.append(text)
        elif kind == "message_delta":
            if getattr(event.delta, "stop_reason", None):
                self.meta["finish_reason"] = event.delta.stop_reason
            if getattr(event, "usage", None) is not None:
                self.meta["output_tokens"] = event.usage.output_tokens

    def text(self) -> str:
        """Assembled output."""
        return "".join(self.parts)

    def fields(self) -> dict[str, Any]:
        """Record fields."""
        return dict(self.meta)


def _complete(msg: Any, state: CallState, rec: Recorder) -> Any:
    blocks = [b for b in getattr(msg, "content", None) or [] if getattr(b, "type", "") == "text"]
    text = "".join(b.text for b in blocks)
    action, shown = rec.post_scan(state, text)
    if blocks and action in (Action.REDACT, Action.BLOCK):
        blocks[0].text = shown
        for b in blocks[1:]:
            b.text = ""
    usage = getattr(msg, "usage", None)
    rec.finish(state, status=200, output=shown, model_served=getattr(msg, "model", None),
               input_tokens=usage.input_tokens if usage else None,
               output_tokens=usage.output_tokens if usage else None, response_id=getattr(msg, "id", None),
               finish_reason="content_filter" if action is Action.BLOCK else getattr(msg, "stop_reason", None))
    return msg


def instrument_anthropic(client: Any, rec: Recorder) -> None:
    """Wrap ``client.messages.create`` and the ``client.messages.stream`` helper (idempotent)."""
    patch_create(client.messages, rec, endpoint="messages", accumulator=AnthropicAccumulator,
                 complete=_complete, system_key="system")
    # ``messages.stream(...)`` posts the request itself (it does not go through create).
    patch_stream_helper(client.messages, rec, endpoint="messages", accumulator=AnthropicAccumulator,
                        system_key="system")
