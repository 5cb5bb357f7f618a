"""Register files: YAML parsed with node marks, validated with pydantic, errors naming file/line/field."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Strict, ValidationError, ValidationInfo

from soc2ai.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class RegisterModel(BaseModel):
    """Base of every register entry: unknown fields and wrong types are errors (no silent coercion)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _not_future(value: date, info: ValidationInfo) -> date:
    today = (info.context or {}).get("today")
    if isinstance(today, date):
        day = value.date() if isinstance(value, datetime) else value
        limit = today.date() if isinstance(today, datetime) else today
        if day > limit:
            raise ValueError(f"date {value} is in the future (today is {limit})")
    return value


# Dates: YAML gives date objects for unquoted dates; quoted ISO strings are accepted too.
Day = Annotated[date, Strict(False)]
PastDay = Annotated[date, Strict(False), AfterValidator(_not_future)]
Moment = Annotated[datetime, Strict(False)]


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


def parse_yaml(text: str, file: str) -> tuple[Any, yaml.Node | None]:
    """Parse one YAML document; return (data, root node). Syntax errors name the line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
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
    prefix: tuple[int | str, ...] = (),
) -> M:
    """Validate ``data`` into ``model``; the first error becomes a ConfigError with file, line, field."""
    try:
        return model.model_validate(data, context={"today": today})
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # A misspelt key also shows up as a missing field: name the misspelling first.
        err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        # Drop pydantic's internal loc parts (e.g. function-after[...] wrappers) that are not YAML keys.
        loc = prefix + tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "required field is missing"
        more = (
            f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        )
        raise ConfigError(msg + more, file=file, line=line_of(node, loc), field=field_name(loc)) from exc
