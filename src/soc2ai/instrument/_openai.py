"""Instrumenting ``openai.OpenAI`` / ``openai.AsyncOpenAI``: ``chat.completions.create`` (streaming and raw too)."""

from __future__ import annotations

from typing import Any

from soc2ai.instrument.core import CallState, Recorder
from soc2ai.instrument.streams import forget_raw_views, patch_create
from soc2ai.scan.interface import Action


class OpenAIAccumulator:
    """Assembles ``ChatCompletionChunk`` objects."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.meta: dict[str, Any] = {}
        self.tool_args: dict[int, list[str]] = {}

    def add(self, chunk: Any) -> None:
        """One chunk."""
        for name, key in (("id", "response_id"), ("model", "model_served"),
                          ("system_fingerprint", "system_fingerprint")):
            value = getattr(chunk, name, None)
            if value:
                self.meta.setdefault(key, value)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.meta["input_tokens"] = usage.prompt_tokens
            self.meta["output_tokens"] = usage.completion_tokens
        for choice in getattr(chunk, "choices", None) or []:
            if choice.index == 0:
                if choice.delta is not None and choice.delta.content:
                    self.parts.append(choice.delta.content)
                for tc in (choice.delta.tool_calls if choice.delta is not None else None) or []:
                    fn = getattr(tc, "function", None)
                    if fn is not None and fn.arguments:
                        self.tool_args.setdefault(tc.index, []).append(fn.arguments)
                if choice.finish_reason:
                    self.meta["finish_reason"] = choice.finish_reason

    def text(self) -> str:
        """Assembled output."""
        return "".join(self.parts)

    def tool_arguments(self) -> list[str]:
        """Assembled arguments of each streamed tool call."""
        return ["".join(self.tool_args[i]) for i in sorted(self.tool_args)]

    def fields(self) -> dict[str, Any]:
        """Record fields."""
        return dict(self.meta)


def _complete(resp: Any, state: CallState, rec: Recorder) -> Any:
    choices = list(getattr(resp, "choices", None) or [])
    shown_texts = []
    for choice in choices:  # every choice is screened (n > 1 must not let unscreened text through)
        text = (choice.message.content or "") if choice.message is not None else ""
        action, shown = rec.post_scan(state, text)
        if action in (Action.REDACT, Action.BLOCK):
            choice.message.content = shown
        calls = (choice.message.tool_calls if choice.message is not None else None) or []
        for tc in calls:  # tool-call arguments can carry data out as well as text can
            fn = getattr(tc, "function", None)
            if fn is None or not isinstance(fn.arguments, str) or not fn.arguments:
                continue
            tc_action, tc_shown = rec.post_scan_arguments(state, fn.arguments)
            if tc_action is Action.BLOCK:
                action = Action.BLOCK
                break
            if tc_action is Action.REDACT:
                fn.arguments = tc_shown
        if action is Action.BLOCK:
            choice.message.content = shown = ""
            choice.message.tool_calls = None
            choice.finish_reason = "content_filter"
        if action in (Action.REDACT, Action.BLOCK) and getattr(choice.message, "parsed", None) is not None:
            choice.message.parsed = None  # parse(): the object was built from the unredacted text
        shown_texts.append(shown)
    usage = getattr(resp, "usage", None)
    rec.finish(state, status=200, output="\n".join(shown_texts), model_served=getattr(resp, "model", None),
               input_tokens=usage.prompt_tokens if usage else None,
               output_tokens=usage.completion_tokens if usage else None, response_id=getattr(resp, "id", None),
               system_fingerprint=getattr(resp, "system_fingerprint", None),
               finish_reason=choices[0].finish_reason if choices else None)
    return resp


def instrument_openai(client: Any, rec: Recorder) -> None:
    """Wrap ``client.chat.completions.create`` and ``.parse`` (idempotent); ``.stream`` uses create, and so do
    ``with_raw_response`` / ``with_streaming_response`` (their responses' ``parse()`` is screened)."""
    # ``chat.completions.stream(...)`` goes through create (stream=True); ``parse(...)`` posts itself.
    for method in ("create", "parse"):
        if hasattr(client.chat.completions, method):
            patch_create(client.chat.completions, rec, endpoint="chat.completions", accumulator=OpenAIAccumulator,
                         complete=_complete, method=method)
    forget_raw_views(client, client.chat)  # ``client.with_raw_response.chat.completions`` too
