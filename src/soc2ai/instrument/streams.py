"""Stream proxies: hand every chunk to the caller unchanged, assemble the output, record once at the end.

Streamed output is pass-through: the post-scan runs on the assembled text when the stream ends and can
flag and record, but cannot take back chunks the caller already has (docs/gateway.md, "Streaming").
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Protocol

from soc2ai.instrument.core import CallState, Recorder, error_status


class Accumulator(Protocol):
    """Collects what the record needs from the chunks of one provider's stream."""

    def add(self, item: Any) -> None:
        """Look at one chunk/event."""
        ...

    def text(self) -> str:
        """The output so far."""
        ...

    def fields(self) -> dict[str, Any]:
        """model_served, tokens, response_id, finish_reason, ... for :meth:`Recorder.finish`."""
        ...


class _Base:
    def __init__(self, stream: Any, state: CallState, rec: Recorder, acc: Accumulator) -> None:
        self._stream = stream
        self._state = state
        self._rec = rec
        self._acc = acc

    def _end(self, status: int, error: str | None) -> None:
        if self._state.recorded:
            return
        text = self._acc.text()
        action, _ = self._rec.post_scan(self._state, text)
        tool_arguments = getattr(self._acc, "tool_arguments", None)
        for args in tool_arguments() if tool_arguments is not None else []:
            tc_action, _ = self._rec.post_scan_arguments(self._state, args)
            if tc_action.value in ("redact", "block") and action.value not in ("redact", "block"):
                action = tc_action
        if action.value in ("redact", "block") and error is None:
            error = f"post-scan {action.value} on streamed output (already delivered)"
        self._rec.finish(self._state, status=status, output=text, error=error, **self._acc.fields())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class StreamProxy(_Base):
    """Wraps a sync SDK stream (iterator, context manager, ``close()``)."""

    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            item = next(self._it)
        except StopIteration:
            self._end(200, None)
            raise
        except Exception as exc:
            self._end(error_status(exc), f"stream failed: {type(exc).__name__}")
            raise
        self._acc.add(item)
        return item

    @property
    def _it(self) -> Any:
        it = self.__dict__.get("_iter")
        if it is None:
            it = self.__dict__["_iter"] = iter(self._stream)
        return it

    def close(self) -> None:
        """Close the underlying stream; a stream closed early is recorded as status 499."""
        self._end(499, "stream closed by the caller before the end")
        self._stream.close()

    def __enter__(self) -> StreamProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStreamProxy(_Base):
    """Wraps an async SDK stream."""

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        it = self.__dict__.get("_iter")
        if it is None:
            it = self.__dict__["_iter"] = self._stream.__aiter__()
        try:
            item = await it.__anext__()
        except StopAsyncIteration:
            self._end(200, None)
            raise
        except Exception as exc:
            self._end(error_status(exc), f"stream failed: {type(exc).__name__}")
            raise
        self._acc.add(item)
        return item

    async def close(self) -> None:
        """Close the underlying stream (recorded as 499 when not finished)."""
        self._end(499, "stream closed by the caller before the end")
        await self._stream.close()

    async def __aenter__(self) -> AsyncStreamProxy:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def patch_create(resource: Any, rec: Recorder, *, endpoint: str, accumulator: Callable[[], Any],
                 complete: Callable[[Any, CallState, Recorder], Any], method: str = "create", **begin: Any) -> None:
    """Replace ``resource.<method>`` (``create``, or ``parse``) with a recording, screening wrapper
    (idempotent), sync or async.

    ``accumulator()`` assembles a stream's chunks; ``complete(resp, state, rec)`` post-scans and records
    a non-streamed response.
    """
    original = getattr(resource, method)
    if getattr(original, "__soc2ai__", False):
        return

    def done(resp: Any, state: CallState, kwargs: dict[str, Any], proxy: type[Any]) -> Any:
        return proxy(resp, state, rec, accumulator()) if kwargs.get("stream") else complete(resp, state, rec)

    def failed(state: CallState, exc: Exception) -> None:
        rec.finish(state, status=error_status(exc), error=type(exc).__name__)

    wrapper: Any
    # The SDK decorates create() with sync wrappers returning coroutines: ask the resource class instead.
    if _is_async(resource, original):
        @functools.wraps(original)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            state = rec.begin(endpoint, kwargs, **begin)
            try:
                resp = await original(*args, **kwargs)
            except Exception as exc:
                failed(state, exc)
                raise
            return done(resp, state, kwargs, AsyncStreamProxy)
    else:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            state = rec.begin(endpoint, kwargs, **begin)
            try:
                resp = original(*args, **kwargs)
            except Exception as exc:
                failed(state, exc)
                raise
            return done(resp, state, kwargs, StreamProxy)

    wrapper.__soc2ai__ = True
    setattr(resource, method, wrapper)


def _is_async(resource: Any, original: Any) -> bool:
    return inspect.iscoroutinefunction(original) or type(resource).__name__.startswith("Async")


def patch_stream_helper(resource: Any, rec: Recorder, *, endpoint: str, accumulator: Callable[[], Any],
                        **begin: Any) -> None:
    """Wrap a ``.stream(...)`` helper that returns a stream *manager* (``with client.messages.stream(...)
    as s``) and sends its request itself, bypassing ``create``.

    The prompt is screened before the helper runs; on entering the manager, the helper's raw event
    stream is swapped for a recording proxy before anything is read, so the helper's own accumulation
    (``text_stream``, ``get_final_message()``) sees the same events and the call is recorded once.
    """
    original = getattr(resource, "stream", None)
    if original is None or getattr(original, "__soc2ai__", False):
        return
    is_async = _is_async(resource, original)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = rec.begin(endpoint, kwargs, **begin)
        return _ManagerProxy(original(*args, **kwargs), state, rec, accumulator(), is_async)

    wrapper.__soc2ai__ = True  # type: ignore[attr-defined]
    resource.stream = wrapper


class _ManagerProxy:
    """A stream manager whose stream reports to the recorder (sync ``with`` and ``async with``)."""

    def __init__(self, manager: Any, state: CallState, rec: Recorder, acc: Any, is_async: bool) -> None:
        self._manager, self._state, self._rec, self._acc, self._async = manager, state, rec, acc, is_async

    def _observe(self, stream: Any) -> Any:
        raw = getattr(stream, "_raw_stream", None)
        if raw is None:  # SDK internals changed: record the call, say the output was not observed
            self._rec.finish(self._state, status=200, error="stream helper output not observed (unknown SDK)")
            return stream
        stream._raw_stream = (AsyncStreamProxy if self._async else StreamProxy)(raw, self._state, self._rec,
                                                                               self._acc)
        return stream

    def __enter__(self) -> Any:
        try:
            return self._observe(self._manager.__enter__())
        except Exception as exc:
            self._rec.finish(self._state, status=error_status(exc), error=type(exc).__name__)
            raise

    def __exit__(self, *exc: Any) -> Any:
        return self._manager.__exit__(*exc)

    async def __aenter__(self) -> Any:
        try:
            return self._observe(await self._manager.__aenter__())
        except Exception as exc:
            self._rec.finish(self._state, status=error_status(exc), error=type(exc).__name__)
            raise

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._manager.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)
