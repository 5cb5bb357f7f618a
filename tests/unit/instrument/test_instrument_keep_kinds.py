"""keep_kinds(): redacted tool definitions keep the SDK's dict subclasses, but never at the cost of the call
or of the caller's objects: a subclass that cannot be copied and refilled goes out as a plain dict."""

from __future__ import annotations

from typing import Any

from soc2ai.gateway.core import redact_definitions
from soc2ai.instrument.core import keep_kinds


def _redact(text: str) -> str:
    return text.replace("hunter2", "[REDACTED]")


class NeedsNewArgs(dict[str, Any]):
    """A dict subclass whose ``__new__`` takes arguments (copy.copy cannot rebuild it)."""

    def __new__(cls, items: dict[str, Any], tag: str) -> NeedsNewArgs:
        return super().__new__(cls)

    def __init__(self, items: dict[str, Any], tag: str) -> None:
        super().__init__(items)
        self.tag = tag


class SelfCopy(dict[str, Any]):
    """A dict subclass whose ``__copy__`` returns the object itself."""

    def __copy__(self) -> SelfCopy:
        return self


class Frozen(dict[str, Any]):
    """A read-only dict subclass."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("read-only")

    __setitem__ = clear = update = _refuse  # type: ignore[assignment]


class Slotted(dict[str, Any]):
    """A dict subclass with ``__slots__`` and a required ``__init__`` argument (copied and refilled)."""

    __slots__ = ("model",)

    def __init__(self, items: dict[str, Any], model: type) -> None:
        super().__init__(items)
        self.model = model


def _run(tool: Any) -> tuple[Any, Any]:
    before = {"tools": [{"type": "function", "function": tool}]}
    after = keep_kinds(before, redact_definitions(before, _redact))
    return after["tools"][0]["function"], before["tools"][0]["function"]


def test_uncopyable_dict_subclasses_go_out_as_plain_dicts() -> None:
    """A subclass whose __new__ takes arguments, or that refuses to be refilled, used to raise out of the
    wrapper (TypeError, unrecorded); one whose __copy__ returns itself had the caller's object redacted."""
    frozen = Frozen()
    dict.update(frozen, {"name": "f", "description": "password hunter2"})
    for tool in (NeedsNewArgs({"name": "f", "description": "password hunter2"}, "t"),
                 SelfCopy({"name": "f", "description": "password hunter2"}), frozen):
        sent, caller = _run(tool)
        assert sent == {"name": "f", "description": "password [REDACTED]"}
        assert type(sent) is dict
        assert dict(caller) == {"name": "f", "description": "password hunter2"}  # the caller's, unchanged


def test_copyable_dict_subclasses_keep_type_and_attributes() -> None:
    """__slots__ and required __init__ arguments are no obstacle: the copy keeps both."""
    sent, caller = _run(Slotted({"name": "f", "description": "password hunter2"}, int))
    assert type(sent) is Slotted and sent.model is int and sent is not caller
    assert dict(sent) == {"name": "f", "description": "password [REDACTED]"}
    assert caller["description"] == "password hunter2"
