"""Instrumenting ``openai.OpenAI`` / ``openai.AsyncOpenAI``: ``chat.completions.create`` (streaming and raw too)
and ``responses.create`` (the Responses API, streaming too)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from soc2ai.errors import PolicyViolation
from soc2ai.gateway.core import INSTRUCTION_ROLES, canonical_arguments, json_still_valid, media_kinds
from soc2ai.instrument.core import (
    CallState,
    Recorder,
    arguments_text,
    counted,
    given,
    pydantic_schema,
    refuse_unrecorded,
    show_text,
)
from soc2ai.instrument.streams import forget_raw_views, patch_create
from soc2ai.scan.interface import Action


class OpenAIAccumulator:
    """Assembles ``ChatCompletionChunk`` objects, each choice (``n > 1``) by its ``index``."""

    def __init__(self) -> None:
        self.texts: dict[int, list[str]] = {}
        self.meta: dict[str, Any] = {}
        self.tool_args: dict[int, dict[int, list[str]]] = {}

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
            index = choice.index if isinstance(choice.index, int) else 0
            parts = self.texts.setdefault(index, [])
            if choice.delta is not None and choice.delta.content:
                parts.append(choice.delta.content)
            for tc in (choice.delta.tool_calls if choice.delta is not None else None) or []:
                fn = getattr(tc, "function", None)
                if fn is not None and (args := arguments_text(fn)):
                    self.tool_args.setdefault(index, {}).setdefault(tc.index, []).append(args)
            if choice.finish_reason and index == 0:
                self.meta["finish_reason"] = choice.finish_reason

    def outputs(self) -> list[tuple[str, list[str]]]:
        """Each choice's assembled text and tool calls' arguments, by index: all are post-screened."""
        calls = self.tool_args
        return [("".join(self.texts.get(i, ())), ["".join(calls[i][t]) for t in sorted(calls.get(i, {}))])
                for i in sorted(self.texts.keys() | calls.keys())]

    def text(self) -> str:
        """Assembled output: the one choice's text (several choices' texts by index, one a line)."""
        return "\n".join(text for text, _args in self.outputs())

    def tool_arguments(self) -> list[str]:
        """Assembled arguments of each streamed tool call, of every choice."""
        return [args for _text, calls in self.outputs() for args in calls]

    def fields(self) -> dict[str, Any]:
        """Record fields (``finish_reason``: the first choice's, as for a non-streamed call)."""
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
        fns = [fn for tc in calls if (fn := getattr(tc, "function", None)) is not None and arguments_text(fn)]
        if rec.screen_call_arguments(state, ((fn.arguments, functools.partial(setattr, fn, "arguments"))
                                             for fn in fns)):
            action = Action.BLOCK
        if action is Action.BLOCK:
            choice.message.content = shown = ""
            choice.message.tool_calls = None
            choice.finish_reason = "content_filter"
        if action in (Action.REDACT, Action.BLOCK) and getattr(choice.message, "parsed", None) is not None:
            choice.message.parsed = None  # parse(): the object was built from the unredacted text
        shown_texts.append(shown)
    usage = getattr(resp, "usage", None)
    # Several choices: the list of their texts (index order), as the gateway records them.
    rec.finish(state, status=200, output=shown_texts if len(shown_texts) > 1 else "".join(shown_texts),
               model_served=getattr(resp, "model", None),
               input_tokens=usage.prompt_tokens if usage else None,
               output_tokens=usage.completion_tokens if usage else None, response_id=getattr(resp, "id", None),
               system_fingerprint=getattr(resp, "system_fingerprint", None),
               finish_reason=choices[0].finish_reason if choices else None)
    return resp


def _response_format(type_: Any) -> dict[str, Any]:
    """The ``response_format`` the SDK sends for a Python type (``chat.completions.parse``)."""
    try:
        from openai.lib._parsing import type_to_response_format_param
    except ImportError:  # an SDK without the helper: pydantic's schema has the same prose
        name = getattr(type_, "__name__", "response")
        return {"type": "json_schema", "json_schema": {"name": name, "schema": pydantic_schema(type_)}}
    built: Any = type_to_response_format_param(type_)
    return dict(built)


def _text_format(type_: Any) -> dict[str, Any]:
    """The ``text.format`` the SDK sends for ``responses.parse(text_format=...)``."""
    try:
        from openai.lib._parsing._responses import type_to_text_format_param
    except ImportError:
        return {"type": "json_schema", "name": getattr(type_, "__name__", "response"),
                "schema": pydantic_schema(type_)}
    built: Any = type_to_text_format_param(type_)
    return dict(built)


def class_schemas(kwargs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The output schemas the SDK builds after the wrapper ran, from a Python type given as
    ``response_format`` (``chat.completions.parse``) or ``text_format`` (``responses.parse``), as the
    request fields they become (``response_format``, ``text.format``). A dict ``response_format`` is sent
    as it is (screened as a definition field); ``text_format`` always goes through the SDK's helper."""
    out: dict[str, dict[str, Any]] = {}
    rf = kwargs.get("response_format")
    if given(rf) and not isinstance(rf, Mapping):
        out["response_format"] = {"response_format": _response_format(rf)}
    tf = kwargs.get("text_format")
    if given(tf):
        out["text_format"] = {"text": {"format": _text_format(tf)}}
    return out


# --- the Responses API ----------------------------------------------------------------------------

_TEXT_PARTS = ("input_text", "output_text")


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _put(obj: Any, key: str, value: Any) -> None:
    if isinstance(obj, dict):
        obj[key] = value
    else:
        setattr(obj, key, value)


def _text_slots(kwargs: dict[str, Any]) -> Iterator[tuple[Any, str, bool]]:
    """``(container, key, own)`` of every string of the request that the model reads as text:
    ``instructions``, a string ``input``, and in a list of input items (dicts or the SDK's output objects
    given back) message ``content`` strings, their ``input_text`` / ``output_text`` parts,
    ``function_call_output`` strings, and the JSON ``arguments`` of ``function_call`` items (as the chat
    wrapper screens history tool calls). ``own``: the deployer's instructions (``instructions``, system
    and developer messages). Images, files, audio and other item types are not text slots (passed through)."""
    for key in ("instructions", "input"):
        if isinstance(kwargs.get(key), str):
            yield kwargs, key, key == "instructions"
    items = kwargs.get("input")
    for item in items if isinstance(items, list) else ():
        kind = _get(item, "type")
        if kind == "function_call" and isinstance(_get(item, "arguments"), str):
            yield item, "arguments", False  # a tool call in the history: the model is shown its arguments again
            continue
        key = "output" if kind == "function_call_output" else "content"
        if kind not in (None, "message", "function_call_output"):
            continue
        own = _get(item, "role") in INSTRUCTION_ROLES
        value = _get(item, key)
        if isinstance(value, str):
            yield item, key, own
        for part in value if isinstance(value, list) else ():
            if _get(part, "type") in _TEXT_PARTS and isinstance(_get(part, "text"), str):
                yield part, "text", own


def _slot_text(obj: Any, key: str) -> str:
    """A text slot's string as screening reads it: a history call's ``arguments`` with ``\\u`` escapes
    decoded (:func:`~soc2ai.gateway.core.canonical_arguments`: an escape must not hide a value)."""
    text: str = _get(obj, key)
    return (canonical_arguments(text) or text) if key == "arguments" else text


def _plain(value: Any) -> Any:
    """SDK objects (output items given back as input) as JSON for the record."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class ResponsesPrompt:
    """Where ``responses.create`` keeps the prompt: ``input`` (a string or input items) and ``instructions``."""

    def apply_template(self, kwargs: dict[str, Any], text: str) -> None:
        """As ``instructions`` when there is an input, else as the input."""
        kwargs["instructions" if kwargs.get("input") else "input"] = text

    def prompt(self, kwargs: dict[str, Any]) -> Any:
        """``input`` as sent, with ``instructions`` when there are any."""
        if not isinstance(kwargs.get("input"), str | list | type(None)):  # any iterable: read it once
            kwargs["input"] = list(kwargs["input"])
        prompt = _plain(kwargs.get("input"))
        return {"instructions": kwargs["instructions"], "input": prompt} if kwargs.get("instructions") else prompt

    def texts(self, kwargs: dict[str, Any]) -> tuple[list[str], list[str]]:
        """The strings of :func:`_text_slots`: (``instructions`` and system / developer items, the rest)."""
        own: list[str] = []
        rest: list[str] = []
        for obj, key, is_own in _text_slots(kwargs):
            (own if is_own else rest).append(_slot_text(obj, key))
        return own, rest

    def media(self, kwargs: dict[str, Any]) -> list[str]:
        """Images, files and audio in the input items (:func:`media_kinds`)."""
        items = kwargs.get("input")
        return media_kinds(_plain(items)) if isinstance(items, list) else []

    def redact(self, kwargs: dict[str, Any], redact: Callable[[str], str]) -> None:
        """Redact every text slot in a copy of ``input`` (the caller's items stay as they were)."""
        if isinstance(kwargs.get("input"), list):
            kwargs["input"] = copy.deepcopy(kwargs["input"])
        for obj, key, _own in list(_text_slots(kwargs)):
            text = _slot_text(obj, key)
            new = redact(text)
            if new == text:
                continue  # nothing to redact: sent as the caller wrote it
            if key == "arguments" and not json_still_valid(text, new):
                raise PolicyViolation("tool call arguments cannot be redacted without breaking them")
            _put(obj, key, new)


class EmbeddingsPrompt:
    """``embeddings.create``'s ``input``: a string or a list of strings (what goes into a vector store: the
    RAG path PII must not take unscreened). Token-id input cannot be screened."""

    def apply_template(self, kwargs: dict[str, Any], text: str) -> None:
        """As the input."""
        kwargs["input"] = text

    def prompt(self, kwargs: dict[str, Any]) -> Any:
        """The input as sent (an iterable is read once, into a list)."""
        if not isinstance(kwargs.get("input"), str | list | type(None)):
            kwargs["input"] = list(kwargs["input"])
        return kwargs.get("input")

    def unreadable(self, kwargs: dict[str, Any]) -> str | None:
        """Why the input cannot be screened (token ids), or None."""
        inp = kwargs.get("input")
        if isinstance(inp, str) or (isinstance(inp, list) and all(isinstance(t, str) for t in inp)):
            return None
        return "embeddings input as token ids cannot be screened: send text"

    def texts(self, kwargs: dict[str, Any]) -> tuple[list[str], list[str]]:
        """No instructions; the input strings."""
        inp = kwargs.get("input")
        return [], [inp] if isinstance(inp, str) else [t for t in inp or () if isinstance(t, str)]

    def redact(self, kwargs: dict[str, Any], redact: Callable[[str], str]) -> None:
        """Each input string redacted (a new list; the caller's stays as it was)."""
        inp = kwargs.get("input")
        kwargs["input"] = redact(inp) if isinstance(inp, str) else [
            redact(t) if isinstance(t, str) else t for t in inp or ()]

    def media(self, kwargs: dict[str, Any]) -> list[str]:
        """Embeddings input is text or token ids (see :meth:`unreadable`)."""
        return []


def _complete_embeddings(resp: Any, state: CallState, rec: Recorder) -> Any:
    """Vectors, no text to screen: recorded with the served model and the prompt's token count."""
    usage = getattr(resp, "usage", None)
    rec.finish(state, status=200, model_served=getattr(resp, "model", None),
               input_tokens=getattr(usage, "prompt_tokens", None), output_tokens=0)
    return resp


def _response_fields(resp: Any) -> dict[str, Any]:
    """Record fields of a ``Response``: served model, id, usage, and its status as the finish reason
    (the reason, e.g. ``max_output_tokens``, when it is incomplete)."""
    usage = getattr(resp, "usage", None)
    reason = getattr(getattr(resp, "incomplete_details", None), "reason", None)
    return {"model_served": getattr(resp, "model", None), "response_id": getattr(resp, "id", None),
            "input_tokens": usage.input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
            "finish_reason": reason or getattr(resp, "status", None)}


class ResponsesAccumulator:
    """Assembles the Responses API's stream events (``response.output_text.delta`` ... ``response.completed``)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.meta: dict[str, Any] = {}
        self.call_args: list[str] = []

    def add(self, event: Any) -> None:
        """One event."""
        kind = getattr(event, "type", "")
        if kind == "response.output_text.delta":
            self.parts.append(event.delta)
        elif kind == "response.output_item.done" and getattr(event.item, "type", "") == "function_call":
            self.call_args.append(arguments_text(event.item) or "")
        elif kind in ("response.created", "response.completed", "response.incomplete", "response.failed"):
            fields = _response_fields(event.response)
            self.meta.update({k: v for k, v in fields.items() if v is not None})

    def text(self) -> str:
        """Assembled output text."""
        return "".join(self.parts)

    def tool_arguments(self) -> list[str]:
        """The arguments of each streamed function call (from its ``response.output_item.done``)."""
        return list(self.call_args)

    def fields(self) -> dict[str, Any]:
        """Record fields."""
        return dict(self.meta)


def _complete_response(resp: Any, state: CallState, rec: Recorder) -> Any:
    """Post-scan a ``Response``'s output text and function calls' arguments; redact or withhold them in the
    objects the caller reads (``output_text`` is computed from the message parts)."""
    output = list(getattr(resp, "output", None) or [])
    parts = [c for item in output if getattr(item, "type", "") == "message"
             for c in item.content if getattr(c, "type", "") == "output_text"]
    action, shown = rec.post_scan(state, "".join(p.text for p in parts))
    calls = [i for i in output if getattr(i, "type", "") == "function_call" and arguments_text(i) is not None]
    if rec.screen_call_arguments(state, ((c.arguments, functools.partial(setattr, c, "arguments")) for c in calls)):
        action, shown = Action.BLOCK, ""
    if action is Action.BLOCK:
        resp.output = [i for i in output if getattr(i, "type", "") != "function_call"]
    if action in (Action.REDACT, Action.BLOCK):
        show_text(parts, shown)
    fields = _response_fields(resp)
    if action is Action.BLOCK:
        fields["finish_reason"] = "content_filter"
    rec.finish(state, status=200, output=shown, **fields)
    return resp


def _complete_retrieved(resp: Any, state: CallState, rec: Recorder) -> Any:
    """``responses.retrieve``: where a background response's answer reaches the caller. Screened and
    recorded like create's once it is there; a poll that finds it queued or in progress leaves no record."""
    if getattr(resp, "status", None) in ("queued", "in_progress"):
        rec.discard(state)
        return resp
    state.model = getattr(resp, "model", None) or state.model
    return _complete_response(resp, state, rec)


def _complete_compacted(resp: Any, state: CallState, rec: Recorder) -> Any:
    """``responses.compact``: the conversation went to the model, which returns the user's messages and one
    encrypted compaction item, no text of its own to screen. Recorded with its usage, no output."""
    usage = getattr(resp, "usage", None)
    rec.finish(state, status=200, response_id=getattr(resp, "id", None),
               input_tokens=usage.input_tokens if usage else None,
               output_tokens=usage.output_tokens if usage else 0)
    return resp


def instrument_openai(client: Any, rec: Recorder) -> None:
    """Wrap ``client.chat.completions.create`` and ``.parse`` (idempotent); ``.stream`` uses create, and so do
    ``with_raw_response`` / ``with_streaming_response`` (their responses' ``parse()`` is screened).
    ``client.responses.create`` and ``.parse`` too (``responses.stream(...)`` goes through create),
    ``.retrieve`` (a background response's answer), and the two calls that send a prompt without
    answering it: ``.compact`` and ``.input_tokens.count`` (pre-screened like create, recorded as
    ``responses.compact`` / ``responses.input_tokens``)."""
    # ``chat.completions.stream(...)`` goes through create (stream=True); ``parse(...)`` posts itself.
    for method in ("create", "parse"):
        if hasattr(client.chat.completions, method):
            patch_create(client.chat.completions, rec, endpoint="chat.completions", accumulator=OpenAIAccumulator,
                         complete=_complete, method=method, schemas=class_schemas)
    if getattr(client, "responses", None) is not None:
        for method in ("create", "parse"):  # parse(text_format=...) posts the request itself
            if hasattr(client.responses, method):
                patch_create(client.responses, rec, endpoint="responses", accumulator=ResponsesAccumulator,
                             complete=_complete_response, method=method, shape=ResponsesPrompt(),
                             schemas=class_schemas)
        if hasattr(client.responses, "retrieve"):
            patch_create(client.responses, rec, endpoint="responses.retrieve", accumulator=ResponsesAccumulator,
                         complete=_complete_retrieved, method="retrieve", shape=ResponsesPrompt())
        if hasattr(client.responses, "compact"):
            patch_create(client.responses, rec, endpoint="responses.compact", accumulator=ResponsesAccumulator,
                         complete=_complete_compacted, method="compact", shape=ResponsesPrompt())
        counter = getattr(client.responses, "input_tokens", None)
        if counter is not None and hasattr(counter, "count"):
            patch_create(counter, rec, endpoint="responses.input_tokens", accumulator=ResponsesAccumulator,
                         complete=counted, method="count", shape=ResponsesPrompt())
    embeddings = getattr(client, "embeddings", None)
    if embeddings is not None and hasattr(embeddings, "create"):
        patch_create(embeddings, rec, endpoint="embeddings", accumulator=ResponsesAccumulator,
                     complete=_complete_embeddings, shape=EmbeddingsPrompt())
    # Ways to the model the wrappers cannot screen or record raise instead of bypassing them silently.
    instead = "responses.create(stream=True)"
    refuse_unrecorded(getattr(client, "responses", None), "connect", "client.responses.connect", instead)
    refuse_unrecorded(getattr(client, "realtime", None), "connect", "client.realtime.connect", instead)
    refuse_unrecorded(getattr(getattr(client, "beta", None), "realtime", None), "connect",
                      "client.beta.realtime.connect", instead)
    refuse_unrecorded(getattr(client, "completions", None), "create", "client.completions.create",
                      "chat.completions.create")
    forget_raw_views(client, client.chat)  # ``client.with_raw_response.chat.completions`` too
