"""Stream proxies: hand every chunk to the caller unchanged, assemble the output, record once at the end.

Streamed output is pass-through: the post-scan runs on the assembled text when the stream ends and can
flag and record, but cannot take back chunks the caller already has (docs/gateway.md, "Streaming").
Raw responses (``with_raw_response`` / ``with_streaming_response``) are proxied so that ``parse()`` is screened.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from soc2ai.instrument.core import INSTRUMENTED, CallState, Recorder, error_status
from soc2ai.scan.interface import Action


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


# Streams and raw responses not recorded yet. Those still referenced when the interpreter exits (a script's
# globals) are finalized only after the ledger's own atexit drain has closed the log: their record would be
# lost. They are recorded by an atexit hook registered after the ledger's, so it runs before it.
_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()
_HOOKED: list[bool] = []


def _track(obj: Any) -> None:
    if not _HOOKED:
        _HOOKED.append(True)
        atexit.register(_record_left_at_exit)
    _LIVE.add(obj)


def _record_left_at_exit() -> None:
    for obj in list(_LIVE):
        obj._dropped()


class _Base:
    def __init__(self, stream: Any, state: CallState, rec: Recorder, acc: Accumulator) -> None:
        self._stream = stream
        self._state = state
        self._rec = rec
        self._acc = acc
        _track(self)

    def _end(self, status: int, error: str | None) -> None:
        if self._state.recorded:
            return
        outputs = self._outputs()
        # Several choices are recorded as the list of their texts in index order, as the gateway does.
        text: str | list[str] = [out for out, _ in outputs] if len(outputs) > 1 else self._acc.text()
        try:
            action = Action.ALLOW
            for out, calls in outputs:  # every choice of an ``n > 1`` stream
                taken = [self._rec.post_scan(self._state, out)[0],
                         *(self._rec.post_scan_arguments(self._state, args)[0] for args in calls)]
                for got in taken:
                    if got in (Action.REDACT, Action.BLOCK) and action not in (Action.REDACT, Action.BLOCK):
                        action = got
        except Exception as exc:  # the output was delivered: record it even if screening it failed
            self._rec.finish(self._state, status=500, output=text, error=f"post-scan failed: {type(exc).__name__}",
                             **self._acc.fields())
            raise
        if action.value in ("redact", "block") and error is None:
            error = f"post-scan {action.value} on streamed output (already delivered)"
        self._rec.finish(self._state, status=status, output=text, error=error, **self._acc.fields())

    def _outputs(self) -> list[tuple[str, list[str]]]:
        """(text, tool calls' arguments) of each choice the stream assembled."""
        outputs = getattr(self._acc, "outputs", None)
        if callable(outputs):
            return list(outputs())
        tool_arguments = getattr(self._acc, "tool_arguments", None)
        return [(self._acc.text(), list(tool_arguments()) if tool_arguments is not None else [])]

    def __del__(self) -> None:
        self._dropped()

    def _dropped(self) -> None:
        # A stream dropped before its end without close() (a ``break`` out of the loop) is still recorded.
        state = self.__dict__.get("_state")
        if state is not None and not state.recorded:
            try:
                self._end(499, "stream abandoned by the caller before the end")
            except Exception:  # noqa: S110 - recorded as 500 by _end; nothing to raise to in a finalizer
                pass

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
        except BaseException as exc:  # cancellation and interrupts too: the call was made
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
        except BaseException as exc:  # cancellation and interrupts too: the call was made
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
    a non-streamed response. ``with_raw_response`` / ``with_streaming_response`` call the method too: their
    raw response is returned as a :class:`RawResponse` / :class:`AsyncRawResponse`.
    """
    original = getattr(resource, method)
    if getattr(original, "__soc2ai__", False):
        return

    def done(resp: Any, state: CallState, kwargs: dict[str, Any], proxy: type[Any]) -> Any:
        def screen(out: Any) -> Any:
            if kwargs.get("stream"):
                return proxy(out, state, rec, accumulator())
            try:
                return complete(out, state, rec)
            except Exception as exc:  # the provider answered: the call is recorded even if screening failed
                rec.finish(state, status=500, error=f"post-scan failed: {type(exc).__name__}")
                raise

        mode = _raw_mode(kwargs)
        if mode is None:
            return screen(resp)
        raw = (AsyncRawResponse if inspect.iscoroutinefunction(resp.parse) else RawResponse)(resp, state, rec, screen)
        # with_raw_response ("true" in openai, "raw" in anthropic) has read the whole body: screen and record
        # now, as create() does, so the call is recorded even if the caller never parses it.
        raw.eager = mode != "stream" and not kwargs.get("stream")
        if raw.eager and isinstance(raw, RawResponse):
            raw.prefetch()
        return raw

    def failed(state: CallState, exc: BaseException) -> None:
        rec.finish(state, status=error_status(exc), error=type(exc).__name__)

    wrapper: Any
    # The SDK decorates create() with sync wrappers returning coroutines: ask the resource class instead.
    if _is_async(resource, original):
        @functools.wraps(original)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            state = rec.begin(endpoint, kwargs, **begin)
            token = INSTRUMENTED.set(True)
            try:
                resp = await original(*args, **kwargs)
            except BaseException as exc:  # a cancelled call was sent all the same
                failed(state, exc)
                raise
            finally:
                INSTRUMENTED.reset(token)
            out = done(resp, state, kwargs, AsyncStreamProxy)
            if isinstance(out, AsyncRawResponse) and out.eager:
                await out.prefetch()
            return out
    else:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            state = rec.begin(endpoint, kwargs, **begin)
            token = INSTRUMENTED.set(True)
            try:
                resp = original(*args, **kwargs)
            except BaseException as exc:
                failed(state, exc)
                raise
            finally:
                INSTRUMENTED.reset(token)
            return done(resp, state, kwargs, StreamProxy)

    wrapper.__soc2ai__ = True
    setattr(resource, method, wrapper)
    forget_raw_views(resource)


# Both SDKs (Stainless-generated) mark with_raw_response calls ("true"/"raw") and with_streaming_response
# calls ("stream", body left unread) with this header.
_RAW_HEADER = "X-Stainless-Raw-Response"


def _raw_mode(kwargs: dict[str, Any]) -> str | None:
    """The raw-response mode asked for, read as the SDK reads it (HTTP headers: any case; any non-empty
    value returns a raw response), so a hand-written header cannot return an unscreened raw response."""
    headers = kwargs.get("extra_headers")
    for key, mode in headers.items() if isinstance(headers, Mapping) else ():
        if isinstance(key, str) and key.lower() == _RAW_HEADER.lower() and isinstance(mode, str) and mode:
            return mode
    return None


def forget_raw_views(*objs: Any) -> None:
    """Drop cached ``with_raw_response`` / ``with_streaming_response`` views: the SDK builds them around
    the methods present at first access, so one built before instrumenting would bypass the wrappers.
    Rebuilt on next access, they call the wrapped methods."""
    for obj in objs:
        for name in ("with_raw_response", "with_streaming_response"):
            vars(obj).pop(name, None)


class _RawBase:
    """A raw SDK response (``with_raw_response`` / ``with_streaming_response``) whose default ``parse()``
    is screened: post-scanned and recorded like ``create``'s result, or a recording stream proxy.
    ``headers``, ``http_response``, ``status_code``, ... are the SDK object's; reading the body any other
    way (``text``, ``content``, ``json()``, ``iter_*``, ``parse(to=...)``) is not screened."""

    eager = False

    def __init__(self, raw: Any, state: CallState, rec: Recorder, screen: Callable[[Any], Any]) -> None:
        self._raw, self._state, self._rec, self._screen = raw, state, rec, screen
        self._parsed: Any = None
        _track(self)

    def _unparsed(self, exc: Exception | None = None) -> None:
        """Record (once) a call whose output was not screened."""
        if isinstance(self._parsed, _Base):  # a parsed stream left before its end
            self._parsed._end(499, "stream closed by the caller before the end")
            return
        if exc is None and not getattr(getattr(self._raw, "http_response", None), "is_stream_consumed", True):
            self._rec.finish(self._state, status=499, error="raw response closed by the caller before it was read")
            return
        why = f"could not parse the response ({type(exc).__name__})" if exc else "read without parse()"
        self._rec.finish(self._state, status=getattr(self._raw, "status_code", 200),
                         error=f"raw response {why}: output not screened")

    def __del__(self) -> None:
        self._dropped()

    def _dropped(self) -> None:
        # Dropped without parse() or close(): a with_streaming_response whose ``with`` block never exited
        # (``__enter__()`` called by hand), a with_raw_response(stream=True) read through http_response.
        # Recorded here, at the latest; a parsed stream records itself (the caller may still hold it).
        state = self.__dict__.get("_state")
        if state is None or state.recorded or self.__dict__.get("_parsed") is not None:
            return
        try:
            http = getattr(self.__dict__["_raw"], "http_response", None)
            if not getattr(http, "is_stream_consumed", True):
                self._rec.finish(state, status=499, error="raw response dropped by the caller without parse() "
                                                          "or close(), its body unread: output not screened")
            else:
                self._unparsed()
        except Exception:  # noqa: S110 - finish() logs its own failures; nothing to raise to in a finalizer
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def __repr__(self) -> str:
        return repr(self._raw)


class RawResponse(_RawBase):
    """Sync ``parse()``: openai's ``LegacyAPIResponse`` (sync and async clients), sync ``APIResponse``."""

    def parse(self, *, to: Any = None) -> Any:
        """The screened result (cached, as the SDK does); ``to=`` is passed through unscreened."""
        if to is not None:
            return self._raw.parse(to=to)
        if self._parsed is None:
            self._parsed = self._screen(self._raw.parse())
        return self._parsed

    def prefetch(self) -> None:
        """Screen and record now; a body that does not parse is recorded as not screened."""
        try:
            self.parse()
        except Exception as exc:
            self._unparsed(exc)

    def close(self) -> None:
        """Record the call if nothing else did, then close the SDK response."""
        self._unparsed()
        self._raw.close()


class AsyncRawResponse(_RawBase):
    """``AsyncAPIResponse``: ``parse()`` and ``close()`` are coroutines."""

    async def parse(self, *, to: Any = None) -> Any:
        """The screened result (cached, as the SDK does); ``to=`` is passed through unscreened."""
        if to is not None:
            return await self._raw.parse(to=to)
        if self._parsed is None:
            self._parsed = self._screen(await self._raw.parse())
        return self._parsed

    async def prefetch(self) -> None:
        """Screen and record now; a body that does not parse is recorded as not screened."""
        try:
            await self.parse()
        except Exception as exc:
            self._unparsed(exc)

    async def close(self) -> None:
        """Record the call if nothing else did, then close the SDK response."""
        self._unparsed()
        await self._raw.close()


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
        token = INSTRUMENTED.set(True)  # the helper sends its request here
        try:
            return self._observe(self._manager.__enter__())
        except BaseException as exc:
            self._rec.finish(self._state, status=error_status(exc), error=type(exc).__name__)
            raise
        finally:
            INSTRUMENTED.reset(token)

    def __exit__(self, *exc: Any) -> Any:
        return self._manager.__exit__(*exc)

    async def __aenter__(self) -> Any:
        token = INSTRUMENTED.set(True)
        try:
            return self._observe(await self._manager.__aenter__())
        except BaseException as exc:
            self._rec.finish(self._state, status=error_status(exc), error=type(exc).__name__)
            raise
        finally:
            INSTRUMENTED.reset(token)

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._manager.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)
