"""Register files: YAML parsed with node marks, validated with pydantic, errors naming file/line/field."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Strict,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

# Re-exported (yaml-free, so soc2ai.toml's settings models use them too): registers import them from here.
from soc2ai._validation import LocatedError as LocatedError
from soc2ai._validation import error_location, error_message, first_error
from soc2ai._validation import unique as unique
from soc2ai.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class RegisterModel(BaseModel):
    """Base of every register entry: unknown fields and wrong types are errors (no silent coercion)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _not_future(value: date, info: ValidationInfo) -> date:
    today = (info.context or {}).get("today")
    if isinstance(today, date):
        # An aware moment's calendar day is taken in UTC, like ``today``: 01:00+09:00 on the 5th is
        # still the 4th in UTC and is not "in the future" on the 4th.
        moment = value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo else value
        day = moment.date() if isinstance(moment, datetime) else moment
        limit = today.date() if isinstance(today, datetime) else today
        if day > limit:
            if (info.context or {}).get("as_of"):
                # A check as of an earlier day (``--today``) reads the register as it stands now.
                raise PydanticCustomError(
                    _AFTER_CHECKED_DAY,
                    "date {value} is after {limit}, the day checked: the register is read as it stands now",
                    {"value": str(value), "limit": str(limit)})
            raise ValueError(f"date {value} is in the future (today is {limit})")
    return value


_AFTER_CHECKED_DAY = "date_after_checked_day"


class RegisterNewerError(ConfigError):
    """A register records a date after the day a check is run as of: the register is not wrong, it is
    newer than that day."""


def register_remedy(exc: ConfigError) -> str:
    """What to do about a register that failed to load, for a check line."""
    if isinstance(exc, RegisterNewerError):
        return "check the register as it stood that day (`git show REV:PATH`), or check as of today"
    return "fix the register, or run `soc2ai init`"


def _no_number(value: Any) -> Any:
    # Lax date parsing takes numbers as Unix timestamps: `report_date: 0` would be 1970-01-01.
    if isinstance(value, int | float):
        raise ValueError("expected an ISO date (YYYY-MM-DD) or date-time, not a number")
    return value


NotNumber = BeforeValidator(_no_number)
# Dates: YAML gives date objects for unquoted dates; quoted ISO strings are accepted too (numbers are not).
Day = Annotated[date, Strict(False), NotNumber]
PastDay = Annotated[date, Strict(False), NotNumber, AfterValidator(_not_future)]
Moment = Annotated[datetime, Strict(False), NotNumber]


def _check_duplicates(node: yaml.Node, file: str) -> None:
    """PyYAML keeps the last of duplicate keys silently; in a register that hides an edit."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        raise ConfigError(
                            f"duplicate key {key.value!r}",
                            file=file,
                            line=key.start_mark.line + 1,
                            field=key.value,
                        )
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


class _BadScalar(yaml.YAMLError):
    """A scalar PyYAML resolved but could not build (``2025-02-29``), with the node where it is."""

    def __init__(self, node: yaml.Node, cause: Exception) -> None:
        super().__init__(str(cause))
        self.node = node
        self.cause = cause


class _Loader(yaml.SafeLoader):
    """SafeLoader whose value errors (impossible dates, bad ``!!int``) keep the offending node."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:  # PyYAML raises these bare, with no mark
            raise _BadScalar(node, exc) from exc


def _path_to(root: yaml.Node, target: yaml.Node) -> tuple[int | str, ...]:
    """The key/index path from ``root`` to ``target`` (empty when not found)."""
    stack: list[tuple[yaml.Node, tuple[int | str, ...]]] = [(root, ())]
    while stack:
        current, loc = stack.pop()
        if current is target:
            return loc
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                sub = (*loc, str(key.value)) if isinstance(key, yaml.ScalarNode) else loc
                if key is target:
                    return sub
                stack.append((value, sub))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, (*loc, i)) for i, item in enumerate(current.value))
    return ()


def parse_yaml(text: str, file: str) -> tuple[Any, yaml.Node | None]:
    """Parse one YAML document; return (data, root node). Syntax and value errors name the line."""
    loader = _Loader(text)
    node: yaml.Node | None = None
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _BadScalar as exc:
        value = exc.node.value if isinstance(exc.node, yaml.ScalarNode) else ""
        loc = _path_to(node, exc.node) if node is not None else ()
        raise ConfigError(
            f"invalid value {value!r}: {exc.cause}",
            file=file,
            line=exc.node.start_mark.line + 1,
            field=field_name(loc) or None,
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"invalid YAML: {problem}", file=file, line=mark.line + 1 if mark is not None else None
        ) from exc
    finally:
        loader.dispose()
    if node is not None:
        _check_duplicates(node, file)
    return data, node


def read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Read and parse a register file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=str(path)) from exc
    return parse_yaml(text, str(path))


def line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Line (1-based) of the deepest node along ``loc`` that exists in the YAML tree."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    current: yaml.Node = node
    for part in loc:
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    # Point at the key for scalar values and at the value for nested blocks.
                    line = key.start_mark.line + 1
                    current = value
                    break
            else:
                return line
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) and part < len(current.value):
            current = current.value[part]
            line = current.start_mark.line + 1
        else:
            return line
    return line


def field_name(loc: tuple[int | str, ...]) -> str:
    """``("vendors", 2, "dpa")`` -> ``vendors[2].dpa``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate(
    model: type[M],
    data: Any,
    node: yaml.Node | None,
    file: str,
    *,
    today: date | None = None,
    as_of: bool = False,
    prefix: tuple[int | str, ...] = (),
) -> M:
    """Validate ``data`` into ``model``; the first error becomes a ConfigError with file, line, field.

    ``today`` is the latest date a past date (``PastDay``) may have; it defaults to the current date, so
    every reader of a register (``list`` commands, the gateway) rejects a date in the future. ``as_of``:
    ``today`` is a day a check is run as of (``--today``), so a later date makes the register newer than
    that day (:class:`RegisterNewerError`) rather than wrong.
    """
    try:
        return model.model_validate(data, context={"today": today or date.today(), "as_of": as_of})
    except ValidationError as exc:
        err, others = first_error(exc)
        # Drop pydantic's internal loc parts (e.g. function-after[...] wrappers) that are not YAML keys.
        loc = prefix + tuple(p for p in error_location(err) if not (isinstance(p, str) and "[" in p))
        msg = error_message(err)
        field = field_name(loc) or None
        if err["type"] in ("model_type", "model_attributes_type", "dict_type"):
            # Not "Input should be a valid dictionary or instance of VendorsFile": name what is expected.
            got = "nothing" if err["input"] is None else type(err["input"]).__name__
            msg = f"expected a mapping (key: value), got {'a ' if got != 'nothing' else ''}{got}"
            if not loc and len(model.model_fields) == 1:
                field = next(iter(model.model_fields))  # a register file's one top-level key
                msg = f"expected a mapping with a `{field}:` key, got {'a ' if got != 'nothing' else ''}{got}"
        more = f" (and {others} more error{'s' if others > 1 else ''})" if others else ""
        cls = RegisterNewerError if err["type"] == _AFTER_CHECKED_DAY else ConfigError
        raise cls(msg + more, file=file, line=line_of(node, loc), field=field) from exc
