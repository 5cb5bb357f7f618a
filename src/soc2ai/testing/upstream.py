"""A local fake OpenAI-compatible upstream for tests, the demo and the benchmarks.

A small asyncio HTTP/1.1 server (keep-alive, chunked SSE streaming) with no dependency beyond the
standard library, so it costs little CPU under benchmark load. Its behaviour can be changed while it runs::

    with FakeUpstream() as up:            # serves on 127.0.0.1:<free port> in a background thread
        up.set(mode="status", status=503) # or "ok", "drop" (close the connection), delay_s=2.0, ...
        client = openai.OpenAI(base_url=up.url + "/v1", api_key="x")

Run it standalone (benchmarks): ``python -m soc2ai.testing.upstream --port 9100``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Literal

import orjson

Mode = Literal["ok", "status", "drop"]


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the fake upstream answers: mode, status code, delays, reply text, streaming chunking."""

    mode: Mode = "ok"
    status: int = 500
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    reply: str = "Hello from the fake upstream."
    echo: bool = False          # reply with the last user message instead of ``reply``
    usage: bool = True          # include a ``usage`` object
    retry_after: str | None = None
    # (function name, JSON arguments) per tool call; when set the reply is tool calls (finish "tool_calls")
    tool_calls: tuple[tuple[str, str], ...] = ()
    # with a request's ``n`` > 1, the text of choice i is ``replies[i]`` (past its end: ``reply`` / echo)
    replies: tuple[str, ...] = ()


@dataclass
class _Stats:
    calls: list[dict[str, Any]] = field(default_factory=list)


def _reply_text(b: Behaviour, body: dict[str, Any]) -> str:
    if not b.echo:
        return b.reply
    for msg in reversed(body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            return content if isinstance(content, str) else orjson.dumps(content).decode()
    return b.reply


_MAX_N = 128  # OpenAI's limit on ``n``


def _choice_texts(b: Behaviour, req: dict[str, Any], text: str) -> list[str]:
    """One reply text per requested choice (``n``, default 1)."""
    n = req.get("n")
    count = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
    return [b.replies[i] if i < len(b.replies) else text for i in range(count)]


def _words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


class FakeUpstream:
    """The fake provider. ``url`` is its base (append ``/v1``); ``calls`` lists what it received."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, name: str = "fake") -> None:
        self.host = host
        self.port = port
        self.name = name
        self.behaviour = Behaviour()
        self._stats = _Stats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._seq = 0
        self._conns: set[_Conn] = set()
        # background=True responses by id, and how often each was fetched (the first fetch finds it
        # still in progress, as a poll of a real background response would).
        self._background: dict[str, tuple[dict[str, Any], int]] = {}

    # --- control ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://host:port`` (OpenAI clients want ``url + "/v1"``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Requests received so far: ``{"path", "model", "stream", "upstream", "t"}`` (t: monotonic ns)."""
        return list(self._stats.calls)

    def set(self, **changes: Any) -> None:
        """Change the behaviour (fields of :class:`Behaviour`) while serving."""
        self.behaviour = replace(self.behaviour, **changes)

    def reset(self) -> None:
        """Back to the default behaviour; forget recorded calls and stored background responses."""
        self.behaviour = Behaviour()
        self._stats.calls.clear()
        self._background.clear()

    # --- lifecycle -------------------------------------------------------------------------------
    async def serve(self) -> asyncio.AbstractServer:
        """Start serving on the running loop (port 0 picks a free one)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._server = await loop.create_server(lambda: _Conn(self), self.host, self.port,
                                                reuse_address=True, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]
        return self._server

    def start(self) -> FakeUpstream:
        """Serve in a daemon thread with its own event loop; return once it accepts connections."""
        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.serve())
            self._ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-upstream-{self.name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake upstream did not start")
        return self

    def stop(self) -> None:
        """Stop the background server."""
        loop, server = self._loop, self._server
        if loop is None or server is None or loop.is_closed():
            return
        self._server = None

        async def shutdown() -> None:
            server.close()
            for conn in list(self._conns):  # server.close() leaves accepted connections open
                conn.abort()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        fut = asyncio.run_coroutine_threadsafe(shutdown(), loop)
        with contextlib.suppress(Exception):
            fut.result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- request handling ------------------------------------------------------------------------
    def _next_id(self, prefix: str = "chatcmpl-fake") -> str:
        self._seq += 1
        return f"{prefix}{self._seq:08d}"

    async def handle(self, conn: _Conn, method: str, path: str, body: bytes) -> None:
        b = self.behaviour
        try:
            req: dict[str, Any] = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            req = {}
        if not isinstance(req, dict):
            req = {}
        self._stats.calls.append({"path": path, "model": req.get("model"), "stream": bool(req.get("stream")),
                                  "upstream": self.name, "t": time.monotonic_ns(), "messages": req.get("messages"),
                                  "tools": req.get("tools"), "tool_choice": req.get("tool_choice"),
                                  "input": req.get("input"), "instructions": req.get("instructions"),
                                  "body": req})
        if b.delay_s:
            await asyncio.sleep(b.delay_s)
        if b.mode == "drop":
            conn.abort()
            return
        if b.mode == "status":
            extra = [(b"retry-after", b.retry_after.encode())] if b.retry_after else []
            err = {"error": {"message": f"fake upstream error {b.status}", "type": "server_error",
                             "param": None, "code": None}}
            conn.respond(b.status, orjson.dumps(err), extra)
            return
        path = path.split("?", 1)[0]
        if method == "GET" and path.endswith("/models"):
            conn.respond(200, orjson.dumps({"object": "list", "data": [
                {"id": "fake-model", "object": "model", "created": 0, "owned_by": self.name}]}))
        elif path.endswith("/embeddings"):
            inputs = req.get("input")
            n = len(inputs) if isinstance(inputs, list) else 1
            data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(n)]
            conn.respond(200, orjson.dumps({"object": "list", "data": data, "model": req.get("model"),
                                            "usage": {"prompt_tokens": 3 * n, "total_tokens": 3 * n}}))
        elif path.endswith("/responses/input_tokens") and method == "POST":
            conn.respond(200, orjson.dumps({"object": "response.input_tokens", "input_tokens": _prompt_tokens(req)}))
        elif path.endswith("/responses/compact") and method == "POST":
            conn.respond(200, orjson.dumps(self._compacted(req)))
        elif path.endswith("/responses") and method == "POST":
            text = _responses_reply_text(b, req)
            if req.get("stream"):
                await self._responses_stream(conn, req, text, b)
            elif req.get("background"):
                done = self._response(req, text, b, "completed")
                self._background[done["id"]] = (done, 0)
                conn.respond(200, orjson.dumps({**done, "status": "queued", "output": [], "usage": None}))
            else:
                conn.respond(200, orjson.dumps(self._response(req, text, b, "completed")))
        elif method == "GET" and "/responses/" in path and path.rsplit("/", 1)[-1] in self._background:
            rid = path.rsplit("/", 1)[-1]
            done, polls = self._background[rid]
            self._background[rid] = (done, polls + 1)
            out = done if polls else {**done, "status": "in_progress", "output": [], "usage": None}
            conn.respond(200, orjson.dumps(out))
        elif path.endswith("/chat/completions"):
            asked = req.get("n")
            if isinstance(asked, int) and asked > _MAX_N:  # as OpenAI answers; and a huge n would exhaust memory here
                conn.respond(400, orjson.dumps({"error": {"message": f"n must be at most {_MAX_N}", "param": "n",
                                                          "type": "invalid_request_error", "code": None}}))
                return
            text = _reply_text(b, req)
            if req.get("stream"):
                await self._stream(conn, req, text, b)
            else:
                conn.respond(200, orjson.dumps(self._completion(req, text, b)))
        else:
            conn.respond(404, orjson.dumps({"error": {"message": "not found", "type": "invalid_request_error",
                                                      "param": None, "code": None}}))

    def _completion(self, req: dict[str, Any], text: str, b: Behaviour) -> dict[str, Any]:
        texts = _choice_texts(b, req, text)
        out: dict[str, Any] = {
            "id": self._next_id(), "object": "chat.completion", "created": int(time.time()),
            "model": req.get("model") or "fake-model", "system_fingerprint": "fp_fake",
            "choices": [{"index": k, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": t}} for k, t in enumerate(texts)],
        }
        if b.tool_calls:
            for choice in out["choices"]:
                choice.update(finish_reason="tool_calls", message={
                    "role": "assistant", "content": None,
                    "tool_calls": [{"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
                                   for i, (n, a) in enumerate(b.tool_calls)]})
        if b.usage:
            prompt_tokens = max(1, len(orjson.dumps(req.get("messages"))) // 4)
            completion = sum(max(1, len(t) // 4) for t in texts)
            out["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                            "total_tokens": prompt_tokens + completion}
        return out

    async def _stream(self, conn: _Conn, req: dict[str, Any], text: str, b: Behaviour) -> None:
        cid, created, model = self._next_id(), int(time.time()), req.get("model") or "fake-model"
        texts = _choice_texts(b, req, text)

        def chunk(delta: dict[str, Any], finish: str | None, usage: dict[str, int] | None = None,
                  index: int = 0) -> bytes:
            body: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created,
                                    "model": model, "system_fingerprint": "fp_fake",
                                    "choices": [{"index": index, "delta": delta, "finish_reason": finish,
                                                 "logprobs": None}] if usage is None else []}
            if usage is not None:
                body["usage"] = usage
            return b"data: " + orjson.dumps(body) + b"\n\n"

        conn.start_stream()
        if b.tool_calls:
            # As OpenAI streams them: the call's id and name first, then its arguments in fragments.
            for c in range(len(texts)):
                conn.send_chunk(chunk({"role": "assistant", "content": None}, None, index=c))
                for i, (name, args) in enumerate(b.tool_calls):
                    conn.send_chunk(chunk({"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function",
                                                           "function": {"name": name, "arguments": ""}}]}, None,
                                          index=c))
                    for k in range(0, len(args), 7):
                        conn.send_chunk(chunk({"tool_calls": [{"index": i,
                                                               "function": {"arguments": args[k:k + 7]}}]},
                                              None, index=c))
                conn.send_chunk(chunk({}, "tool_calls", index=c))
            conn.send_chunk(b"data: [DONE]\n\n")
            conn.end_stream()
            return
        for c in range(len(texts)):
            conn.send_chunk(chunk({"role": "assistant", "content": ""}, None, index=c))
        # Several choices come interleaved, word by word, as OpenAI sends them.
        words = [_words(t) for t in texts]
        for k in range(max(len(w) for w in words)):
            if b.chunk_delay_s:
                await asyncio.sleep(b.chunk_delay_s)
            if conn.closed:
                return
            for c, w in enumerate(words):
                if k < len(w):
                    conn.send_chunk(chunk({"content": w[k]}, None, index=c))
        for c in range(len(texts)):
            conn.send_chunk(chunk({}, "stop", index=c))
        opts = req.get("stream_options")
        if b.usage and isinstance(opts, dict) and opts.get("include_usage"):
            p, c = max(1, len(orjson.dumps(req.get("messages"))) // 4), sum(max(1, len(t) // 4) for t in texts)
            conn.send_chunk(chunk({}, None, {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}))
        conn.send_chunk(b"data: [DONE]\n\n")
        conn.end_stream()

    # --- the Responses API (``POST /v1/responses``): a text message, or function calls (``tool_calls``) ------
    def _response(self, req: dict[str, Any], text: str | None, b: Behaviour, status: str,
                  rid: str | None = None) -> dict[str, Any]:
        """A ``Response`` object; ``text=None`` gives the empty output of ``response.created``."""
        rid = rid or self._next_id("resp_fake")
        output = [] if text is None else [_response_message(rid, text, "completed")]
        if b.tool_calls and text is not None:  # the answer is function calls instead of a message
            output = [_function_call(rid, i, name, args) for i, (name, args) in enumerate(b.tool_calls)]
        out: dict[str, Any] = {
            "id": rid, "object": "response", "created_at": int(time.time()), "status": status,
            "model": req.get("model") or "fake-model", "output": output, "error": None,
            "incomplete_details": None, "instructions": req.get("instructions"), "metadata": {},
            "parallel_tool_calls": True, "temperature": req.get("temperature"), "top_p": req.get("top_p"),
            "tool_choice": "auto", "tools": [], "max_output_tokens": req.get("max_output_tokens"),
            "previous_response_id": req.get("previous_response_id"), "text": {"format": {"type": "text"}},
            "truncation": "disabled", "usage": None,
        }
        if b.usage and text is not None:
            p = _prompt_tokens(req)
            c = max(1, len(text) // 4)
            out["usage"] = {"input_tokens": p, "output_tokens": c, "total_tokens": p + c,
                            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                            "output_tokens_details": {"reasoning_tokens": 0}}
        return out

    def _compacted(self, req: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/responses/compact``: the user's messages as given, then one opaque compaction item."""
        rid = self._next_id("cmp_fake")
        items = req.get("input")
        text = items if isinstance(items, str) else None
        users = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}] \
            if text is not None else [i for i in items or [] if isinstance(i, dict) and i.get("role") == "user"]
        p = _prompt_tokens(req)
        return {"id": rid, "object": "response.compaction", "created_at": int(time.time()),
                "output": [*users, {"type": "compaction", "id": "cmp_item_" + rid, "encrypted_content": "gAAAA-fake"}],
                "usage": {"input_tokens": p, "output_tokens": 8, "total_tokens": p + 8,
                          "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}}}

    async def _responses_stream(self, conn: _Conn, req: dict[str, Any], text: str, b: Behaviour) -> None:
        """The Responses API's SSE events for one text message, in the order OpenAI sends them."""
        seq = 0
        rid = self._next_id("resp_fake")
        mid = "msg_" + rid[len("resp_"):]

        def event(kind: str, **fields: Any) -> bytes:
            nonlocal seq
            seq += 1
            return (b"event: " + kind.encode() + b"\ndata: "
                    + orjson.dumps({"type": kind, "sequence_number": seq - 1, **fields}) + b"\n\n")

        loc = {"item_id": mid, "output_index": 0, "content_index": 0}
        conn.start_stream()
        conn.send_chunk(event("response.created", response=self._response(req, None, b, "in_progress", rid)))
        conn.send_chunk(event("response.in_progress", response=self._response(req, None, b, "in_progress", rid)))
        if b.tool_calls:
            # As OpenAI streams them: the item with empty arguments, the arguments in fragments, the item done.
            for i, (name, args) in enumerate(b.tool_calls):
                item = _function_call(rid, i, name, args)
                conn.send_chunk(event("response.output_item.added", output_index=i,
                                      item={**item, "arguments": "", "status": "in_progress"}))
                for k in range(0, len(args), 7):
                    conn.send_chunk(event("response.function_call_arguments.delta", item_id=item["id"],
                                          output_index=i, delta=args[k:k + 7]))
                conn.send_chunk(event("response.function_call_arguments.done", item_id=item["id"],
                                      output_index=i, arguments=args))
                conn.send_chunk(event("response.output_item.done", output_index=i, item=item))
            conn.send_chunk(event("response.completed", response=self._response(req, text, b, "completed", rid)))
            conn.end_stream()
            return
        conn.send_chunk(event("response.output_item.added", output_index=0,
                              item={**_response_message(rid, "", "in_progress"), "content": []}))
        conn.send_chunk(event("response.content_part.added", **loc, part=_output_text("")))
        for word in _words(text):
            if b.chunk_delay_s:
                await asyncio.sleep(b.chunk_delay_s)
            if conn.closed:
                return
            conn.send_chunk(event("response.output_text.delta", **loc, delta=word, logprobs=[]))
        conn.send_chunk(event("response.output_text.done", **loc, text=text, logprobs=[]))
        conn.send_chunk(event("response.content_part.done", **loc, part=_output_text(text)))
        conn.send_chunk(event("response.output_item.done", output_index=0,
                              item=_response_message(rid, text, "completed")))
        conn.send_chunk(event("response.completed", response=self._response(req, text, b, "completed", rid)))
        conn.end_stream()


def _prompt_tokens(req: dict[str, Any]) -> int:
    """A Responses request's prompt size in (rough) tokens: its instructions and input as JSON, over 4."""
    return max(1, len(orjson.dumps([req.get("instructions"), req.get("input")])) // 4)


def _responses_reply_text(b: Behaviour, req: dict[str, Any]) -> str:
    """``reply``, or with ``echo`` the text of the last user input (a string ``input`` as is)."""
    if not b.echo:
        return b.reply
    items = req.get("input")
    if isinstance(items, str):
        return items
    for item in reversed(items if isinstance(items, list) else []):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
    return b.reply


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _function_call(rid: str, i: int, name: str, args: str) -> dict[str, Any]:
    return {"type": "function_call", "id": f"fc_{rid[len('resp_'):]}_{i}", "call_id": f"call_{i}", "name": name,
            "arguments": args, "status": "completed"}


def _response_message(rid: str, text: str, status: str) -> dict[str, Any]:
    return {"type": "message", "id": "msg_" + rid[len("resp_"):], "role": "assistant", "status": status,
            "content": [_output_text(text)]}


_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 429: b"Too Many Requests",
            500: b"Internal Server Error", 502: b"Bad Gateway", 503: b"Service Unavailable"}


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: parses requests, hands each to the upstream in order."""

    def __init__(self, up: FakeUpstream) -> None:
        self.up = up
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.queue: asyncio.Queue[tuple[str, str, bytes, bool]] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # create_server gives a (uvloop) Transport
        self.up._conns.add(self)
        self.worker = asyncio.get_running_loop().create_task(self._work())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.up._conns.discard(self)
        if self.worker is not None:
            self.worker.cancel()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].decode("latin-1").split("\r\n")
            method, path, _ = ([*head[0].split(" ", 2), "", ""])[:3]
            length, close = 0, False
            for line in head[1:]:
                name, _, value = line.partition(":")
                lname = name.strip().lower()
                if lname == "content-length":
                    length = int(value.strip() or 0)
                elif lname == "connection" and value.strip().lower() == "close":
                    close = True
            total = head_end + 4 + length
            if len(self.buf) < total:
                return
            body = self.buf[head_end + 4:total]
            self.buf = self.buf[total:]
            self.queue.put_nowait((method, path, body, close))

    async def _work(self) -> None:
        while not self.closed:
            method, path, body, close = await self.queue.get()
            self.keep_alive = not close
            await self.up.handle(self, method, path, body)
            if close and self.transport is not None:
                self.transport.close()

    # --- writing ---------------------------------------------------------------------------------
    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.closed = True

    def respond(self, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        if self.transport is None or self.closed:
            return
        head = [b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b"Status")),
                b"content-type: application/json", b"content-length: %d" % len(body)]
        head += [k + b": " + v for k, v in extra or []]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)

    def start_stream(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                 b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")

    def send_chunk(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(b"0\r\n\r\n")


def main(argv: list[str] | None = None) -> None:
    """Run the fake upstream in the foreground (``--delay`` adds latency to every answer)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9100)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--chunk-delay", type=float, default=0.0)
    args = ap.parse_args(argv)
    up = FakeUpstream(args.host, args.port)
    up.set(delay_s=args.delay, chunk_delay_s=args.chunk_delay)

    async def run() -> None:
        server = await up.serve()
        print(f"fake upstream on {up.url}", flush=True)
        await server.serve_forever()

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
