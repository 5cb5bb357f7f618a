"""Calling upstream providers through the fallback chain, and reading their server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from soc2ai.gateway.anthropic_format import anthropic_message_to_chat, chat_to_anthropic_request
from soc2ai.gateway.errors import ApiError
from soc2ai.gateway.routing import RETRY_STATUSES, Target
from soc2ai.gateway.transport import LeanTransport, endpoint_key, serialize

if TYPE_CHECKING:
    from soc2ai.gateway.core import Call, Gateway


def request_body(target: Target, endpoint: str, body: dict[str, Any], stream: bool) -> bytes:
    """The upstream request body for ``target`` (model replaced; Anthropic providers converted)."""
    if target.settings.kind == "anthropic":
        return orjson.dumps(chat_to_anthropic_request(body, target.model))
    out = {**body, "model": target.model}
    if target.settings.kind == "azure":
        out.pop("model")
    if stream:
        out["stream"] = True
        # Ask for the usage chunk so the audit record has real token counts; it is dropped again for
        # clients that did not ask for it.
        out["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return orjson.dumps(out)


def upstream_error(resp_status: int, content: bytes) -> ApiError:
    """An upstream 4xx as an ApiError with the upstream's message (shape re-rendered for our client)."""
    message = f"upstream returned HTTP {resp_status}"
    code = None
    try:
        data = orjson.loads(content)
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            message = str(err.get("message") or message)
            code = err.get("code") if isinstance(err.get("code"), str) else None
    except orjson.JSONDecodeError:
        pass
    return ApiError(resp_status, message, code=code)


async def send(gw: Gateway, call: Call, endpoint: str, body: dict[str, Any], *,
               stream: bool) -> tuple[Target, Any]:
    """Try the alias's chain in order; return the first target that answered (not 5xx/429) and its response.

    Streaming responses are returned unread (the caller must close them). Raises 502/503 ApiError when
    every target failed or was skipped by its circuit breaker.
    """
    chain = gw.router.chain(call.alias) or []
    tried = 0
    last = "no target"
    for target in chain:
        if endpoint != "chat" and target.settings.kind == "anthropic":
            call.fallback_path.append(f"{target.label}=unsupported")
            continue
        breaker = gw.router.breakers[target.provider]
        if not breaker.allow(gw.clock()):
            call.fallback_path.append(f"{target.label}=circuit-open")
            continue
        tried += 1
        upstream_stream = stream and target.settings.kind != "anthropic"
        content = request_body(target, endpoint, body, upstream_stream)
        timeout = gw.timeouts[target.provider]
        try:
            resp: Any
            if isinstance(gw.transport, LeanTransport):
                url = target.url(endpoint)
                resp = await gw.transport.request_raw(
                    endpoint_key(url), serialize("POST", url, target.raw_headers, content),
                    connect_timeout=timeout["connect"], read_timeout=timeout["read"])
            else:  # any httpx transport (tests use httpx.MockTransport)
                resp = await gw.transport.handle_async_request(httpx.Request(
                    "POST", target.url(endpoint), content=content, headers=target.headers,
                    extensions={"timeout": timeout}))
            if not upstream_stream:
                await resp.aread()
        except httpx.TimeoutException:
            outcome = "timeout"
        except httpx.HTTPError as exc:
            outcome = "connection-error" if isinstance(exc, httpx.TransportError) else "error"
        else:
            if resp.status_code not in RETRY_STATUSES:
                breaker.success()
                call.fallback_path.append(f"{target.label}={resp.status_code}")
                if target.settings.kind == "anthropic" and resp.status_code < 400:
                    converted = anthropic_message_to_chat(orjson.loads(resp.content))
                    resp = httpx.Response(resp.status_code, content=orjson.dumps(converted),
                                          headers={"content-type": "application/json"})
                return target, resp
            outcome = str(resp.status_code)
            if upstream_stream:
                await resp.aclose()
        call.fallback_path.append(f"{target.label}={outcome}")
        last = f"{target.label}: {outcome}"
        gw.metrics.fallbacks[(("provider", target.provider), ("reason", outcome))] += 1
        if breaker.failure(gw.clock()):
            gw.metrics.breaker_opened[(("provider", target.provider),)] += 1
    if tried == 0:
        raise ApiError(503, f"no provider available for {call.alias!r} (all circuits open)",
                       code="upstream_unavailable")
    raise ApiError(502, f"all providers failed for {call.alias!r} (last: {last})", code="upstream_error")


async def sse_events(resp: Any) -> AsyncIterator[bytes]:
    """The ``data:`` payloads of an upstream event stream, in order (``[DONE]`` included)."""
    buf = b""
    async for chunk in resp.aiter_bytes():
        buf += chunk
        while True:
            end = buf.find(b"\n\n")
            if end < 0:
                break
            event, buf = buf[:end], buf[end + 2:]
            for line in event.replace(b"\r", b"").split(b"\n"):
                if line.startswith(b"data:"):
                    yield line[5:].strip()
    for line in buf.replace(b"\r", b"").split(b"\n"):
        if line.startswith(b"data:"):
            yield line[5:].strip()
