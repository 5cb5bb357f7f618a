"""Instrumenting ``anthropic.Anthropic`` / ``anthropic.AsyncAnthropic``: ``messages.create`` (streaming too)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from soc2ai.gateway.core import definitions_text, redact_definitions
from soc2ai.instrument.core import CallState, ChatPrompt, Recorder, counted, given, pydantic_schema, show_text
from soc2ai.instrument.streams import forget_raw_views, patch_create, patch_stream_helper
from soc2ai.scan.interface import Action


class AnthropicAccumulator:
    """Assembles raw message stream events."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.meta: dict[str, Any] = {}
        self.tool_json: dict[int, list[str]] = {}

    def add(self, event: Any) -> None:
        """One event."""
        kind = getattr(event, "type", "")
        if kind == "message_start":
            msg = event.message
            self.meta.update(response_id=msg.id, model_served=msg.model)
            if msg.usage is not None:
                self.meta["input_tokens"] = msg.usage.input_tokens
        elif kind == "content_block_start":
            if getattr(event.content_block, "type", "") == "tool_use":
                self.tool_json[event.index] = []
        elif kind == "content_block_delta":
            text = getattr(event.delta, "text", None)
            if text:
                self.parts.append(text)
            partial = getattr(event.delta, "partial_json", None)
            if partial and event.index in self.tool_json:
                self.tool_json[event.index].append(partial)
        elif kind == "message_delta":
            if getattr(event.delta, "stop_reason", None):
                self.meta["finish_reason"] = event.delta.stop_reason
            if getattr(event, "usage", None) is not None:
                self.meta["output_tokens"] = event.usage.output_tokens

    def text(self) -> str:
        """Assembled output."""
        return "".join(self.parts)

    def tool_arguments(self) -> list[str]:
        """The JSON input of each streamed ``tool_use`` block."""
        return ["".join(self.tool_json[i]) for i in sorted(self.tool_json)]

    def fields(self) -> dict[str, Any]:
        """Record fields."""
        return dict(self.meta)


def _set_input(use: Any, args: str) -> None:
    use.input = json.loads(args)


def _complete(msg: Any, state: CallState, rec: Recorder) -> Any:
    blocks = [b for b in getattr(msg, "content", None) or [] if getattr(b, "type", "") == "text"]
    text = "".join(b.text for b in blocks)
    action, shown = rec.post_scan(state, text)
    uses = [b for b in getattr(msg, "content", None) or [] if getattr(b, "type", "") == "tool_use"]
    # Tool inputs are screened as their JSON.
    if rec.screen_call_arguments(state, ((json.dumps(u.input), functools.partial(_set_input, u)) for u in uses)):
        action, shown = Action.BLOCK, ""
    if action is Action.BLOCK:
        msg.content = [b for b in msg.content if getattr(b, "type", "") != "tool_use"]
        if msg.stop_reason == "tool_use":
            msg.stop_reason = "end_turn"  # no tool call to answer any more
    if action in (Action.REDACT, Action.BLOCK):
        show_text(blocks, shown)
    usage = getattr(msg, "usage", None)
    rec.finish(state, status=200, output=shown, model_served=getattr(msg, "model", None),
               input_tokens=usage.input_tokens if usage else None,
               output_tokens=usage.output_tokens if usage else None, response_id=getattr(msg, "id", None),
               finish_reason="content_filter" if action is Action.BLOCK else getattr(msg, "stop_reason", None))
    return msg


def class_schemas(kwargs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``output_config.format`` the SDK builds, after the wrapper ran, from a Python type given as
    ``output_format`` (``messages.parse`` / ``stream`` / ``count_tokens``, and the beta ones), shaped as
    an ``output_format`` field. A dict ``output_format`` (beta ``create``) is sent as it is."""
    fmt: Any = kwargs.get("output_format")
    if not given(fmt) or isinstance(fmt, Mapping):
        return {}
    try:
        from anthropic.lib._parse._transform import to_json_output_format
    except ImportError:  # an SDK without the helper: pydantic's schema has the same prose
        return {"output_format": {"output_format": {"type": "json_schema", "schema": pydantic_schema(fmt)}}}
    built: Any = to_json_output_format(fmt)
    return {"output_format": {"output_format": dict(built)}}


def _format_schema(kwargs: dict[str, Any]) -> Mapping[str, Any] | None:
    """The dict schema in ``output_config.format``, or None."""
    config = kwargs.get("output_config")
    fmt = config.get("format") if isinstance(config, Mapping) else None
    return fmt if isinstance(fmt, Mapping) else None


def _tool_params(tools: Any) -> list[Any]:
    """``tools`` with each object that has ``to_dict()`` (``@beta_tool`` functions, builtin tools) as the
    dict the beta SDK sends for it, through the SDK's own helper where it has one (it keeps helper tags)."""
    try:
        from anthropic.lib.tools._tool_params import to_tool_params
    except ImportError:
        return [t.to_dict() if callable(getattr(t, "to_dict", None)) else t for t in tools]
    built: Any = to_tool_params(tools)
    return list(built)


class AnthropicPrompt(ChatPrompt):
    """``messages`` and ``system``, and the dict schema in ``output_config.format`` (where the SDK takes a
    schema that is not a class): the deployer's own text, like ``output_format``, so screened with the
    instructions and redacted in a copy of ``output_config``. ``beta``: ``client.beta.messages``, whose
    methods take tool objects (``@beta_tool``) in ``tools``."""

    def __init__(self, *, beta: bool = False) -> None:
        super().__init__("system")
        self.beta = beta

    def prompt(self, kwargs: dict[str, Any]) -> Any:
        """:meth:`ChatPrompt.prompt`. On the beta resource, tool objects in ``tools`` become the dicts the SDK
        would send for them, here: screening reads dicts, so a ``@beta_tool`` docstring went out unscreened."""
        if self.beta and given(kwargs.get("tools")):
            kwargs["tools"] = _tool_params(kwargs["tools"])
        return super().prompt(kwargs)

    def texts(self, kwargs: dict[str, Any]) -> tuple[list[str], list[str]]:
        """:meth:`ChatPrompt.texts`, the schema's prose (:func:`definitions_text`) with the instructions."""
        own, rest = super().texts(kwargs)
        fmt = _format_schema(kwargs)
        text = definitions_text({"output_format": fmt}) if fmt is not None else ""
        return ([*own, text] if text else own), rest

    def redact(self, kwargs: dict[str, Any], redact: Callable[[str], str]) -> None:
        """:meth:`ChatPrompt.redact`, and the schema's prose (the caller's ``output_config`` unchanged)."""
        super().redact(kwargs, redact)
        fmt = _format_schema(kwargs)
        if fmt is not None:
            done = redact_definitions({"output_format": fmt}, redact)["output_format"]
            kwargs["output_config"] = {**kwargs["output_config"], "format": done}


def instrument_anthropic(client: Any, rec: Recorder) -> None:
    """Wrap ``client.messages.create`` (``with_raw_response`` / ``with_streaming_response`` go through it),
    ``parse`` (structured outputs: it posts the request itself), the ``stream`` helper and ``count_tokens``
    (the prompt reaches the provider: it is screened like create's, so the count is of what create would
    send, and recorded as ``endpoint = "messages.count_tokens"``), and the same on ``client.beta.messages``
    (idempotent)."""
    # ``client.beta.messages`` (beta features: ``betas=[...]``) is a separate resource with the same shape.
    beta = getattr(client, "beta", None)
    for resource in (client.messages, getattr(beta, "messages", None)):
        if resource is None:
            continue
        shape = AnthropicPrompt(beta=resource is not client.messages)
        for method in ("create", "parse"):
            if hasattr(resource, method):
                patch_create(resource, rec, endpoint="messages", accumulator=AnthropicAccumulator,
                             complete=_complete, method=method, shape=shape, schemas=class_schemas)
        if hasattr(resource, "count_tokens"):
            patch_create(resource, rec, endpoint="messages.count_tokens", accumulator=AnthropicAccumulator,
                         complete=counted, method="count_tokens", shape=shape, schemas=class_schemas)
        # ``messages.stream(...)`` posts the request itself (it does not go through create).
        patch_stream_helper(resource, rec, endpoint="messages", accumulator=AnthropicAccumulator,
                            shape=shape, schemas=class_schemas)
    forget_raw_views(client, *([beta] if beta is not None else []))  # ``client.with_raw_response.messages`` too
