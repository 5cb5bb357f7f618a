"""Instrumenting ``openai.OpenAI`` / ``openai.AsyncOpenAI``: ``chat.completions.create`` (streaming too)."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from soc2ai.instrument.core import CallState, Recorder, error_status
from soc2ai.instrument.streams import AsyncStreamProxy, StreamProxy
from soc2ai.scan.interface import Action


class OpenAIAccumulator:
    """Assembles ``ChatCompletionChunk`` objects."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.meta: dict[str, Any] = {}

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
                if choice.finish_reason:
                    self.meta["finish_reason"] = choice.finish_reason

    def text(self) -> str:
        """Assembled output."""
        return "".join(self.parts)

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
            if action is Action.BLOCK:
                choice.finish_reason = "content_filter"
        shown_texts.append(shown)
    usage = getattr(resp, "usage", None)
    rec.finish(state, status=200, output="\n".join(shown_texts), model_served=getattr(resp, "model", None),
               input_tokens=usage.prompt_tokens if usage else None,
               output_tokens=usage.completion_tokens if usage else None, response_id=getattr(resp, "id", None),
               system_fingerprint=getattr(resp, "system_fingerprint", None),
               finish_reason=choices[0].finish_reason if choices else None)
    return resp


def instrument_openai(client: Any, rec: Recorder) -> None:
    """Replace ``client.chat.completions.create`` with a recording wrapper (idempotent)."""
    completions = client.chat.completions
    original = completions.create
    if getattr(original, "__soc2ai__", False):
        return
    # The SDK decorates create() with sync wrappers returning coroutines: ask the resource class instead.
    if inspect.iscoroutinefunction(original) or type(completions).__name__.startswith("Async"):
        @functools.wraps(original)
        async def acreate(*args: Any, **kwargs: Any) -> Any:
            state = rec.begin("chat.completions", kwargs)
            try:
                resp = await original(*args, **kwargs)
            except Exception as exc:
                rec.finish(state, status=error_status(exc), error=type(exc).__name__)
                raise
            if kwargs.get("stream"):
                return AsyncStreamProxy(resp, state, rec, OpenAIAccumulator())
            return _complete(resp, state, rec)

        acreate.__soc2ai__ = True  # type: ignore[attr-defined]
        completions.create = acreate
        return

    @functools.wraps(original)
    def create(*args: Any, **kwargs: Any) -> Any:
        state = rec.begin("chat.completions", kwargs)
        try:
            resp = original(*args, **kwargs)
        except Exception as exc:
            rec.finish(state, status=error_status(exc), error=type(exc).__name__)
            raise
        if kwargs.get("stream"):
            return StreamProxy(resp, state, rec, OpenAIAccumulator())
        return _complete(resp, state, rec)

    create.__soc2ai__ = True  # type: ignore[attr-defined]
    completions.create = create
