"""Validation helpers shared by the soc2ai.toml settings models and the register files.

``LocatedError``: a validator's error that points below the value it validates; ``unique``. Kept free of
heavy imports: ``soc2ai.config`` loads this at every start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails


class LocatedError(ValueError):
    """A validator's error about one part of the value it checks (``loc`` relative to that value).

    pydantic reports a validator's error at the validated field itself; a duplicate entry found by a
    list validator would then point at ``vendors:`` instead of the second ``- name: OpenAI``. The register
    reader (``governance._yaml.validate``) and ``soc2ai.config.parse_config`` append ``loc`` to the location.
    """

    def __init__(self, message: str, loc: tuple[int | str, ...]) -> None:
        super().__init__(message)
        self.loc = loc


def unique(items: list[Any], key: str, what: str, norm: Callable[[str], str] = str) -> None:
    """Raise a LocatedError at the first entry whose ``key`` (after ``norm``) repeats an earlier one."""
    seen: set[str] = set()
    for i, item in enumerate(items):
        value = str(getattr(item, key))
        if norm(value) in seen:
            raise LocatedError(f"duplicate {what} {value!r}", (i, key))
        seen.add(norm(value))


# pydantic's words for the two commonest mistakes, in the words every soc2ai error uses.
_WORDS = {"extra_forbidden": "unknown field", "missing": "required field is missing"}


def first_error(exc: ValidationError) -> tuple[ErrorDetails, int]:
    """The error to report, and how many others there are. A misspelt key also shows up as a missing
    field: the misspelling is named first."""
    errors = exc.errors(include_url=False)
    return next((e for e in errors if e["type"] == "extra_forbidden"), errors[0]), len(errors) - 1


def error_location(err: ErrorDetails) -> tuple[int | str, ...]:
    """Where ``err`` is: pydantic's location, extended by a :class:`LocatedError`'s below it."""
    cause = (err.get("ctx") or {}).get("error")
    return tuple(err["loc"]) + (cause.loc if isinstance(cause, LocatedError) else ())


def error_message(err: ErrorDetails) -> str:
    """``err``'s message without pydantic's "Value error, " prefix, or the project's words for it."""
    return _WORDS.get(err["type"]) or str(err["msg"]).removeprefix("Value error, ")
