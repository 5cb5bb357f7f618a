"""Endpoint handlers: chat completions (and streaming), Anthropic messages, embeddings.

Every authenticated call ends in exactly one :meth:`Gateway.record` (the inference audit record), whatever
the outcome; denials additionally leave an access record.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from soc2ai.errors import PolicyViolation
from soc2ai.gateway import anthropic_format as af
from soc2ai.gateway.cache import request_hash
from soc2ai.gateway.core import (
    Call,
    Gateway,
    arguments_as_text,
    estimate_tokens,
    history_calls,
    message_text,
    messages_text,
    template_inputs,
)
from soc2ai.gateway.errors import ApiError, bad_request
from soc2ai.gateway.upstream import send, sse_events, upstream_error
from soc2ai.scan.interface import Action, Stage
from soc2ai.scan.pipeline import strongest

logger = logging.getLogger("soc2ai.gateway")

_ROLES = frozenset({"system", "user", "assistant", "tool", "developer", "function"})
_PARAMS = ("temperature", "top_p", "seed", "max_tokens", "max_completion_tokens", "n", "presence_penalty",
           "frequency_penalty", "stop", "stream")
_NUMBER = (int, float)
JSON = "application/json"


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object; 413 over ``limit`` bytes, 400 for bad JSON / bad UTF-8."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body larger than {limit} bytes", code="request_too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body larger than {limit} bytes", code="request_too_large")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"invalid JSON body: {exc.msg}", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise bad_request("the request body must be a JSON object", code="invalid_json")
    # orjson reads 1024 levels of nesting but writes 255: a deeper body would fail when it is sent on.
    # Only bodies with that many brackets at all are checked (the count is C-speed).
    if raw.count(b"[") + raw.count(b"{") > 250:
        try:
            orjson.dumps(data)
        except orjson.JSONEncodeError as exc:
            raise bad_request("the request body is nested too deeply", code="invalid_json") from exc
    return data


def validate_chat(body: dict[str, Any]) -> None:
    """Types of the fields the gateway relies on; anything else is the upstream's business."""
    msgs = body.get("messages")
    if "template" not in body or msgs is not None:
        if not isinstance(msgs, list) or not msgs:
            raise bad_request("'messages' must be a non-empty array", param="messages")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str) or m["role"] not in _ROLES:
                raise bad_request(f"messages[{i}] must be an object with a valid 'role'", param=f"messages[{i}]")
            c = m.get("content")
            if c is not None and not isinstance(c, str | list):
                raise bad_request(f"messages[{i}].content must be a string or an array", param=f"messages[{i}]")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise bad_request("'stream' must be a boolean", param="stream")
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        v = body.get(name)
        if v is not None and (not isinstance(v, _NUMBER) or isinstance(v, bool)):
            raise bad_request(f"'{name}' must be a number", param=name)
    for name in ("max_tokens", "max_completion_tokens", "n", "seed"):
        v = body.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or (name != "seed" and v < 1)):
            raise bad_request(f"'{name}' must be a positive integer", param=name)
    so = body.get("stream_options")
    if so is not None and not isinstance(so, dict):
        raise bad_request("'stream_options' must be an object", param="stream_options")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise bad_request("'tools' must be an array", param="tools")
        for i, t in enumerate(tools):
            if not isinstance(t, dict):
                raise bad_request(f"tools[{i}] must be an object", param=f"tools[{i}]")
            fn = t.get("function")
            if t.get("type", "function") == "function" and not (isinstance(fn, dict) and isinstance(fn.get("name"), str)):
                raise bad_request(f"tools[{i}] must have 'function.name'", param=f"tools[{i}]")
    choice = body.get("tool_choice")
    if choice is not None and not (choice in ("none", "auto", "required") or isinstance(choice, dict)):
        raise bad_request("'tool_choice' must be none, auto, required or an object", param="tool_choice")


def _params(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in _PARAMS if k in body}


def error_response(exc: ApiError, shape: str) -> Response:
    """The error in the client's provider shape."""
    body = exc.anthropic_body() if shape == "anthropic" else exc.openai_body()
    return Response(body, status_code=exc.status, media_type=JSON, headers=exc.headers)


class ChatHandler:
    """``/v1/chat/completions`` (shape ``openai``) and ``/v1/messages`` (shape ``anthropic``)."""

    def __init__(self, gw: Gateway, shape: str) -> None:
        self.gw = gw
        self.shape = shape
        self.endpoint = "messages" if shape == "anthropic" else "chat.completions"

    async def handle(self, request: Request) -> Response:
        """Answer one request."""
        gw = self.gw
        t0 = time.perf_counter_ns()
        try:
            key = gw.authenticate(request.headers, self.endpoint, ("inference",))
        except ApiError as exc:
            return error_response(exc, self.shape)
        call = Call(self.endpoint, t0, key)
        try:
            body = await read_json(request, gw.settings.max_body_bytes)
            if self.shape == "anthropic":
                body = af.messages_to_chat(body)
            validate_chat(body)
            gw.authorize_model(call, body.get("model"), request.headers)
            return await self._run(call, body)
        except ApiError as exc:
            gw.record(call, status=exc.status, error=exc.message, params={})
            return error_response(exc, self.shape)
        except Exception as exc:
            logger.exception("gateway error on %s", self.endpoint)
            gw.record(call, status=500, error=f"internal error: {type(exc).__name__}")
            return error_response(ApiError(500, "internal gateway error", code="internal_error"), self.shape)

    async def _run(self, call: Call, body: dict[str, Any]) -> Response:
        gw = self.gw
        messages: list[dict[str, Any]] = list(body.get("messages") or [])
        untrusted = ""
        if "template" in body:
            text = gw.render_template(call, body.get("template"), body.get("variables"))
            role = "system" if messages else "user"
            messages = [{"role": role, "content": text}, *messages]
            untrusted = template_inputs(body.get("variables"))
        call.prompt = messages
        prompt_text = messages_text(messages)
        params = _params(body)
        await gw.rate_limit(call, estimate_tokens(prompt_text))
        try:
            if gw.screen_prompt(call, messages, prompt_text, untrusted) is Action.REDACT:
                messages = gw.redact_messages(messages)
            body = gw.screen_definitions(call, body)
        except PolicyViolation as exc:
            gw.record(call, status=400, error=str(exc), params=params, prompt_text=prompt_text)
            return error_response(ApiError(400, str(exc), code="content_policy_violation"), self.shape)
        upstream_body = {k: v for k, v in body.items() if k not in ("template", "variables")}
        upstream_body["messages"] = messages
        stream = bool(body.get("stream"))
        ttl = gw.settings.cache.ttl_s.get(call.classification, 0)
        cache_key = None
        if gw.cache is not None and not stream and ttl > 0:
            cache_key = request_hash(call.key.user_id, {**upstream_body, "model": call.alias})
            hit = await _cache_get(gw, cache_key)
            if hit is not None:
                gw.metrics.cache_hits += 1
                call.fallback_path.append("cache=hit")
                return self._respond(call, orjson.loads(hit), hit, params, prompt_text, provider="cache")
        try:
            target, resp = await send(gw, call, "chat", upstream_body, stream=stream)
        except ApiError as exc:
            gw.record(call, status=exc.status, error=exc.message, params=params, prompt_text=prompt_text)
            return error_response(exc, self.shape)
        if resp.status_code >= 400:
            content = await resp.aread()
            await resp.aclose()
            uerr = upstream_error(resp.status_code, content)
            gw.record(call, status=uerr.status, error=uerr.message, params=params, prompt_text=prompt_text,
                      provider=target.provider)
            return error_response(uerr, self.shape)
        if stream:
            synth = None if target.settings.kind != "anthropic" else orjson.loads(resp.content)
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(self._stream(call, target.provider, resp, synth, params, prompt_text,
                                                  include_usage),
                                     media_type="text/event-stream", headers={"cache-control": "no-cache"})
        try:
            data = orjson.loads(resp.content)
            if not isinstance(data, dict):
                raise orjson.JSONDecodeError("not a JSON object", "", 0)
        except orjson.JSONDecodeError:
            bad = ApiError(502, "upstream returned invalid JSON", code="upstream_error")
            gw.record(call, status=502, error=bad.message, params=params, prompt_text=prompt_text,
                      provider=target.provider)
            return error_response(bad, self.shape)
        out = self._respond(call, data, resp.content, params, prompt_text, provider=target.provider)
        if cache_key is not None and gw.cache is not None and out.status_code == 200 and not call.flagged:
            # A task scheduled after the audit record (FIFO), so the user's subject_ref exists by then.
            # The upstream's bytes, as the client got them: screening may have rewritten ``data`` in place
            # (object tool-call arguments as their JSON text), and a hit must answer what a miss did.
            gw.spawn(self._cache_put(call, cache_key, resp.content, ttl))
        return out

    async def _cache_put(self, call: Call, key: str, raw: bytes, ttl: int) -> None:
        gw = self.gw
        assert gw.cache is not None  # noqa: S101 - caller checked
        try:
            await gw.cache.put(key, raw, subject_ref=self._subject_ref(call),
                               classification=call.classification, ttl_s=ttl, now_us=gw.clock())
        except Exception as exc:  # the cache is an optimisation: never fail the call for it
            logger.warning("completion cache write failed: %s", type(exc).__name__)

    def _subject_ref(self, call: Call) -> str | None:
        log = self.gw.log
        fn = getattr(log, "subject_ref", None)
        if callable(fn):
            ref = fn(call.key.user_id)
            return str(ref) if ref else None
        subj = getattr(log, "_subjects", {}).get(call.key.user_id)
        return getattr(subj, "ref_hex", None)

    def _respond(self, call: Call, data: dict[str, Any], raw: bytes, params: dict[str, Any], prompt_text: str,
                 *, provider: str) -> Response:
        choices = data.get("choices") if isinstance(data, dict) else None
        choice: dict[str, Any] = {}
        if isinstance(choices, list) and choices:
            # Decided by the answer, not the request's ``n``: every choice returned is screened. The
            # Anthropic shape sends choice 0 only, so only it is screened and recorded. A choice that is
            # not an object cannot be screened: _respond_choices fails it closed.
            if (len(choices) > 1 and self.shape != "anthropic") or not isinstance(choices[0], dict):
                return self._respond_choices(call, data, choices, raw, params, prompt_text, provider=provider)
            choice = choices[0]
        action, post, text = self._screen_choice(call, choice)
        if action is not Action.ALLOW and action is not Action.FLAG:
            text = self._settle_choice(choice, action, post, text)
            raw = orjson.dumps(data)
        return self._send_json(call, data, raw, params, prompt_text, provider=provider, response=text,
                               output_text=text, finish=choice.get("finish_reason"),
                               estimate=estimate_tokens(text))

    def _respond_choices(self, call: Call, data: dict[str, Any], choices: list[Any], raw: bytes,
                         params: dict[str, Any], prompt_text: str, *, provider: str) -> Response:
        """:meth:`_respond` for an answer with several choices (``n`` > 1): each choice is post-screened
        like a single answer and redacted or withheld on its own; the record's output is the list of the
        choice texts in index order."""
        gw = self.gw
        if not all(isinstance(c, dict) for c in choices):
            bad = ApiError(502, "upstream returned a choice that is not an object", code="upstream_error")
            gw.record(call, status=502, error=bad.message, params=params, prompt_text=prompt_text,
                      provider=provider)
            return error_response(bad, self.shape)
        screened = [self._screen_choice(call, c) for c in choices]
        # Each choice is an answer of its own: only a blocked one is withheld, only a redacted one changed.
        texts = [self._settle_choice(c, act, post, text) if act in (Action.REDACT, Action.BLOCK) else text
                 for c, (act, post, text) in zip(choices, screened, strict=True)]
        if strongest([a for a, _, _ in screened]) in (Action.REDACT, Action.BLOCK):
            raw = orjson.dumps(data)
        order = sorted(range(len(choices)), key=lambda i: _choice_index(choices[i], i))
        texts = [texts[i] for i in order]
        # The output hash covers every choice.
        return self._send_json(call, data, raw, params, prompt_text, provider=provider, response=texts,
                               output_text="\n".join(texts), finish=choices[order[0]].get("finish_reason"),
                               estimate=sum(estimate_tokens(t) for t in texts))

    def _settle_choice(self, choice: dict[str, Any], action: Action, post: Any, text: str) -> str:
        """Apply a redact or block decision to ``choice`` in place; the text the record gets. A block leaves
        only what was screened and cleared: an empty message, no reasoning, audio, logprobs or calls."""
        if action is Action.BLOCK:
            choice["message"] = {"role": "assistant", "content": ""}
            choice["logprobs"] = None
            choice["finish_reason"] = "content_filter"
            return ""
        message = choice.get("message")
        if isinstance(message, dict):  # the text, the call arguments (redacted in place), or both
            if post is not None and post.action is Action.REDACT:
                content = message.get("content")
                message["content"] = post.text if isinstance(content, str) else self.gw.redact_output(content)
                text = post.text
            _strip_side_channels(self.gw, message, choice)
        return text

    def _send_json(self, call: Call, data: dict[str, Any], raw: bytes, params: dict[str, Any], prompt_text: str,
                   *, provider: str, response: str | list[str], output_text: str, finish: Any,
                   estimate: int) -> Response:
        """The JSON answer (``raw``, or the Anthropic shape of ``data``); its record written right after."""
        gw = self.gw
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
        # Recorded on the next loop turn, i.e. right after the response bytes were written: the audit
        # record is still exactly one per call, but its hashing is not on the response's critical path.
        asyncio.get_running_loop().call_soon(functools.partial(
            gw.record, call, status=200, response=response, provider=provider, model_served=data.get("model"),
            usage=usage, output_text=output_text, params=params, response_id=data.get("id"),
            system_fingerprint=data.get("system_fingerprint"), finish_reason=finish, prompt_text=prompt_text))
        gw.count_tokens(call.key.id, int((usage or {}).get("completion_tokens") or estimate))
        if self.shape == "anthropic":
            raw = orjson.dumps(af.chat_response_to_message(data, call.alias))
        return Response(raw, media_type=JSON)

    def _screen_choice(self, call: Call, choice: dict[str, Any]) -> tuple[Action, Any, str]:
        """Post-screen one choice: its text (a list of text parts, as some servers answer, read as text),
        reasoning / refusal side text and tool-call arguments (redacted in place). (Its action, the
        text's screening result, its text.)"""
        gw = self.gw
        msg = choice.get("message")
        message: dict[str, Any] = msg if isinstance(msg, dict) else {}
        content = message.get("content")
        text: str = content if isinstance(content, str) else message_text(content)
        post = gw.screen(call, text, Stage.POST)
        side_text = _side_text(message)
        side = gw.screen(call, side_text, Stage.POST) if side_text else None
        calls = history_calls(message)
        action = strongest([_output_action(post, gw.screen_tool_calls(call, [{"function": f} for f in calls])),
                            side.action if side is not None else Action.ALLOW])
        return action, post, text

    async def _stream(self, call: Call, provider: str, resp: Any, synth: dict[str, Any] | None,
                      params: dict[str, Any], prompt_text: str, include_usage: bool) -> AsyncIterator[bytes]:
        """Relay (passthrough) or collect-then-send (buffer) the upstream stream; record once at the end.

        OpenAI shape: deltas are assembled per choice ``index``, as the client assembles them, whatever
        the request's ``n`` (an upstream may send more choices than asked), and each choice is
        post-screened like the only one, and redacted or withheld on its own; with several, the record's
        output is the list of the choice texts in index order. A choice with an index that is not an
        integer fails the stream (502): it cannot be told which answer the client adds it to.
        Anthropic shape: every delta is assembled as one answer, as ``out`` sends them all as one."""
        gw = self.gw
        passthrough = gw.settings.stream_mode == "passthrough"
        anthropic = self.shape == "anthropic"
        acc: dict[int, _Assembled] = {}
        held: list[bytes] = []
        meta: dict[str, Any] = {}
        usage: dict[str, Any] | None = None
        status, error = 200, None
        started = False
        calls: list[dict[str, Any]] = []

        refused = False  # an OpenAI refusal streamed to an Anthropic-format client: its text, stop_reason "refusal"

        def out(payload: bytes, chunk: dict[str, Any] | None) -> list[bytes]:
            nonlocal started, refused
            if not anthropic:
                return [b"data: " + payload + b"\n\n"]
            events: list[bytes] = []
            if not started:
                started = True
                events += af.message_stream_events("msg_" + str(meta.get("id", "")).removeprefix("chatcmpl-"),
                                                   call.alias, estimate_tokens(prompt_text))
            if chunk is not None:
                choices = chunk.get("choices")
                for ch in choices if isinstance(choices, list) else ():
                    delta = ch.get("delta") if isinstance(ch, dict) else None
                    for key in ("content", "refusal"):
                        piece = delta.get(key) if isinstance(delta, dict) else None
                        if isinstance(piece, str) and piece:
                            events.append(af.message_stream_delta(piece))
                            refused = refused or key == "refusal"
            return events

        try:
            source: AsyncIterator[bytes] = (sse_events(resp) if synth is None else _synth_events(synth))
            async for payload in source:
                if payload == b"[DONE]":
                    continue
                chunk = orjson.loads(payload)
                if not isinstance(chunk, dict):
                    continue
                for k in ("id", "model", "system_fingerprint", "created"):
                    if chunk.get(k) is not None:
                        meta.setdefault(k, chunk[k])
                if isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                    if not chunk.get("choices") and not include_usage:
                        continue  # we asked upstream for usage; this client did not
                choices = chunk.get("choices")
                for ch in choices if isinstance(choices, list) else ():
                    if isinstance(ch, dict):
                        i = 0 if anthropic else ch.get("index", 0)
                        if type(i) is not int:  # bool and "1" too: a client may read them as index 1
                            if i is not None:
                                raise _BadStream("upstream stream has a choice whose index is not an integer")
                            i = 0
                        a = acc.get(i)
                        if a is None:
                            a = acc[i] = _Assembled()
                        a.add(ch)
                if passthrough:
                    for e in out(payload, chunk):
                        yield e
                else:
                    held.append(payload)
            assembled = sorted(acc.items()) or [(0, _Assembled())]
            results = [self._screen_streamed(call, a) for _, a in assembled]
            action = strongest([act for act, _, _ in results])
            calls = results[0][2]
            changed = action in (Action.REDACT, Action.BLOCK)
            if not passthrough:
                if changed:
                    # The rewritten stream has the screened text and calls only (no reasoning, logprobs).
                    rewritten: list[tuple[int, str, str | None, list[dict[str, Any]], dict[str, Any] | None]] = []
                    for (i, a), (act, post, a_calls) in zip(assembled, results, strict=True):
                        if act is Action.BLOCK:  # only the blocked choice is withheld
                            a.parts, a.legacy, a.finish, a_calls = [], None, "content_filter", []
                        elif post is not None and post.action is Action.REDACT:
                            a.parts = [post.text]
                        rewritten.append((i, "".join(a.parts), a.finish, a_calls, a.legacy))
                    calls = rewritten[0][3]
                    held = _rewrite(meta, rewritten, usage if include_usage else None)
                events = [e for payload in held
                          for e in out(payload, orjson.loads(payload) if anthropic else None)]
            else:
                events = []
                if changed:
                    error = f"post-scan {action} after pass-through streaming (output already sent)"
                    if anthropic and action is Action.BLOCK and calls:
                        # This shape sends tool calls only at the end: the blocked ones are withheld.
                        calls, assembled[0][1].finish = [], "content_filter"
                        error = "post-scan block after pass-through streaming (text already sent; tool calls " \
                                "withheld)"
            if anthropic:
                events += out(b"", None)  # message_start if nothing was sent yet
                events.append(af.message_stream_end("refusal" if refused else assembled[0][1].finish,
                                                    int((usage or {}).get("completion_tokens") or 0), calls))
            else:
                events.append(b"data: [DONE]\n\n")
            # One write for what is left (all of it in buffer mode): fewer syscalls than event by event.
            yield b"".join(events)
        except (httpx.HTTPError, orjson.JSONDecodeError, _BadStream) as exc:
            status = 502
            error = f"upstream stream failed: {exc if isinstance(exc, _BadStream) else type(exc).__name__}"
            err = ApiError(502, error, code="upstream_error")
            yield (af.sse("error", orjson.loads(err.anthropic_body())) if anthropic
                   else b"data: " + err.openai_body() + b"\n\n")
        except (asyncio.CancelledError, GeneratorExit):
            status, error = 499, "client disconnected"
            raise
        except Exception as exc:  # a bug or an upstream chunk of a shape not handled: recorded as such
            logger.exception("gateway error in a stream")
            status, error = 500, f"internal error: {type(exc).__name__}"
            err = ApiError(500, "internal gateway error", code="internal_error")
            yield (af.sse("error", orjson.loads(err.anthropic_body())) if anthropic
                   else b"data: " + err.openai_body() + b"\n\n")
        finally:
            await resp.aclose()
            ordered = [a for _, a in sorted(acc.items())]
            texts = ["".join(a.parts) for a in ordered]
            text = "\n".join(texts)
            gw.count_tokens(call.key.id, int((usage or {}).get("completion_tokens")
                                             or sum(estimate_tokens(t) for t in texts)))
            # One choice (or the upstream sent fewer than asked) is recorded as a single answer is.
            gw.record(call, status=status, response=texts if len(texts) > 1 else text, provider=provider,
                      model_served=meta.get("model"), usage=usage, output_text=text, params=params,
                      response_id=meta.get("id"), system_fingerprint=meta.get("system_fingerprint"),
                      finish_reason=ordered[0].finish if ordered else None, error=error, prompt_text=prompt_text)

    def _screen_streamed(self, call: Call, a: _Assembled) -> tuple[Action, Any, list[dict[str, Any]]]:
        """Post-screen one assembled answer (tool-call arguments redacted in place): (its action, the
        text's screening result, its tool calls in order)."""
        gw = self.gw
        post = gw.screen(call, "".join(a.parts), Stage.POST)
        side_post = gw.screen(call, "".join(a.side), Stage.POST) if a.side else None
        calls = [a.tool_calls[i] for i in sorted(a.tool_calls)]
        screened = calls + ([{"function": a.legacy}] if a.legacy is not None else [])
        action = strongest([_output_action(post, gw.screen_tool_calls(call, screened)),
                            side_post.action if side_post is not None else Action.ALLOW])
        return action, post, calls


async def _cache_get(gw: Gateway, key: str) -> bytes | None:
    assert gw.cache is not None  # noqa: S101 - caller checked
    try:
        return await gw.cache.get(key, gw.clock())
    except Exception as exc:  # an unreachable cache is a miss
        logger.warning("completion cache read failed: %s", type(exc).__name__)
        return None


def _chunk(meta: dict[str, Any], delta: dict[str, Any], finish: str | None, index: int = 0) -> bytes:
    return orjson.dumps({"id": meta.get("id"), "object": "chat.completion.chunk", "created": meta.get("created", 0),
                         "model": meta.get("model"), "system_fingerprint": meta.get("system_fingerprint"),
                         "choices": [{"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}]})


# Answer fields besides ``content`` that carry text (reasoning models on OpenAI-compatible servers,
# refusals, the transcript of an audio answer): screened with the content.
_SIDE_TEXT = ("reasoning_content", "reasoning", "refusal")


def _side_text(message: dict[str, Any]) -> str:
    texts = [v for k in _SIDE_TEXT if isinstance(v := message.get(k), str) and v]
    audio = message.get("audio")
    if isinstance(audio, dict) and isinstance(audio.get("transcript"), str):
        texts.append(audio["transcript"])
    return "\n".join(texts)


def _strip_side_channels(gw: Gateway, message: dict[str, Any], choice: dict[str, Any]) -> None:
    """A redacted answer keeps its text fields, redacted one by one; what cannot be redacted goes: the
    token logprobs (they spell out the original text) and an audio answer."""
    for k in _SIDE_TEXT:
        if isinstance(message.get(k), str):
            message[k] = gw.redact_output(message[k])
    message.pop("audio", None)
    if choice.get("logprobs") is not None:
        choice["logprobs"] = None


def _output_action(post: Any, tools: Action) -> Action:
    """What post-generation screening decided for an answer: the stronger of its text's and its tool
    calls' decisions (``post`` is None when screening is off)."""
    return strongest([tools, post.action if post is not None else Action.ALLOW])


def _merge_tool_deltas(calls: dict[int, dict[str, Any]], deltas: list[Any]) -> None:
    """Assemble streamed tool calls: the first delta of a call has its id and name, later ones append
    fragments of its arguments. A delta without an ``index`` (some OpenAI-compatible servers send each
    call whole) is the call at its position in the list: skipping it would pass its arguments unscreened."""
    for position, d in enumerate(deltas):
        if not isinstance(d, dict):
            continue
        index = d.get("index")
        tc = calls.setdefault(index if isinstance(index, int) else position,
                              {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
        for k in ("id", "type"):
            if d.get(k) is not None:
                tc[k] = d[k]
        fn = d.get("function")
        if isinstance(fn, dict):
            if isinstance(fn.get("name"), str):
                tc["function"]["name"] += fn["name"]
            if arguments_as_text(fn):
                tc["function"]["arguments"] += fn["arguments"]


def _choice_index(choice: dict[str, Any], position: int) -> int:
    """A choice's ``index`` (its position in the list when it has none)."""
    i = choice.get("index")
    return i if isinstance(i, int) else position


class _BadStream(Exception):
    """An upstream stream the gateway cannot screen as the client will read it (a 502)."""


class _Assembled:
    """One choice of a stream with several choices, assembled from its deltas."""

    __slots__ = ("finish", "legacy", "parts", "side", "tool_calls")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.side: list[str] = []  # reasoning text: screened with the answer, dropped when it is rewritten
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.legacy: dict[str, Any] | None = None  # a streamed legacy function_call
        self.finish: str | None = None

    def add(self, ch: dict[str, Any]) -> None:
        """Add one streamed choice object (its ``delta`` and ``finish_reason``)."""
        d = ch.get("delta")
        delta: dict[str, Any] = d if isinstance(d, dict) else {}
        content = delta.get("content")
        if isinstance(content, str):
            self.parts.append(content)
        elif content is not None:  # a list of parts, as some servers send: read as the JSON answer's is
            self.parts.append(message_text(content))
        self.side.extend(v for k in _SIDE_TEXT if isinstance(v := delta.get(k), str))
        # The transcript of a streamed audio answer (the non-streamed one is screened by _side_text).
        if isinstance(audio := delta.get("audio"), dict) and isinstance(t := audio.get("transcript"), str):
            self.side.append(t)
        if isinstance(delta.get("tool_calls"), list):
            _merge_tool_deltas(self.tool_calls, delta["tool_calls"])
        if isinstance(fc := delta.get("function_call"), dict):
            self.legacy = self.legacy or {"name": "", "arguments": ""}
            arguments_as_text(fc)
            for k in ("name", "arguments"):
                if isinstance(fc.get(k), str):
                    self.legacy[k] += fc[k]
        if ch.get("finish_reason"):
            self.finish = ch["finish_reason"]


def _rewrite(meta: dict[str, Any],
             choices: list[tuple[int, str, str | None, list[dict[str, Any]], dict[str, Any] | None]],
             usage: dict[str, Any] | None) -> list[bytes]:
    """A minimal stream carrying the screened answers instead of the upstream's chunks, from ``(index,
    text, finish, tool_calls, legacy)`` per choice: one chunk with each choice's text and calls, then
    each choice's finish, then the usage chunk."""
    out = []
    for index, text, _, tool_calls, legacy in choices:
        delta: dict[str, Any] = {"role": "assistant",
                                 "content": text if text or not (tool_calls or legacy) else None}
        if tool_calls:
            delta["tool_calls"] = [{"index": i, **tc} for i, tc in enumerate(tool_calls)]
        if legacy is not None:
            delta["function_call"] = legacy
        out.append(_chunk(meta, delta, None, index))
    out += [_chunk(meta, {}, finish or "stop", index) for index, _, finish, _, _ in choices]
    if usage is not None:
        out.append(orjson.dumps({"id": meta.get("id"), "object": "chat.completion.chunk",
                                 "created": meta.get("created", 0), "model": meta.get("model"),
                                 "choices": [], "usage": usage}))
    return out


async def _synth_events(completion: dict[str, Any]) -> AsyncIterator[bytes]:
    """A complete chat completion replayed as stream chunks (providers streamed without SSE)."""
    meta = {k: completion.get(k) for k in ("id", "model", "system_fingerprint", "created")}
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if isinstance(message.get("tool_calls"), list):
        delta["tool_calls"] = [{"index": i, **tc} for i, tc in enumerate(message["tool_calls"])]
    yield _chunk(meta, delta, None)
    yield _chunk(meta, {}, choice.get("finish_reason") or "stop")
    if completion.get("usage"):
        yield orjson.dumps({**meta, "object": "chat.completion.chunk", "choices": [], "usage": completion["usage"]})


class EmbeddingsHandler:
    """``/v1/embeddings``: pre-scan the input (block or redact), forward with fallback, record."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def handle(self, request: Request) -> Response:
        """Answer one request."""
        gw = self.gw
        t0 = time.perf_counter_ns()
        try:
            key = gw.authenticate(request.headers, "embeddings", ("inference",))
        except ApiError as exc:
            return error_response(exc, "openai")
        call = Call("embeddings", t0, key)
        try:
            body = await read_json(request, gw.settings.max_body_bytes)
            inp = body.get("input")
            texts = [inp] if isinstance(inp, str) else inp if isinstance(inp, list) else None
            if not texts or not all(isinstance(t, str) for t in texts):
                raise bad_request("'input' must be a string or a non-empty array of strings", param="input")
            gw.authorize_model(call, body.get("model"), request.headers)
            call.prompt = texts
            joined = "\n".join(texts)
            await gw.rate_limit(call, estimate_tokens(joined))
            try:
                pre = gw.screen(call, joined, Stage.PRE)
            except PolicyViolation as exc:
                raise ApiError(400, str(exc), code="content_policy_violation") from exc
            if pre is not None and pre.action is Action.REDACT:
                assert gw.pipeline is not None  # noqa: S101 - a redact decision needs a pipeline
                texts = [gw.pipeline.run(t, stage=Stage.PRE).text for t in texts]
                body = {**body, "input": texts}
            target, resp = await send(gw, call, "embeddings", body, stream=False)
            if resp.status_code >= 400:
                raise upstream_error(resp.status_code, resp.content)
            try:
                data = orjson.loads(resp.content)
            except orjson.JSONDecodeError:
                data = None
            if not isinstance(data, dict):
                raise ApiError(502, "upstream returned invalid JSON", code="upstream_error")
            usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
            gw.record(call, status=200, provider=target.provider, model_served=data.get("model"), usage=usage,
                      prompt_text=joined, params={})
            return Response(resp.content, media_type=JSON)
        except ApiError as exc:
            gw.record(call, status=exc.status, error=exc.message, params={})
            return error_response(exc, "openai")
        except Exception as exc:
            logger.exception("gateway error on embeddings")
            gw.record(call, status=500, error=f"internal error: {type(exc).__name__}")
            return error_response(ApiError(500, "internal gateway error", code="internal_error"), "openai")
