"""What an instrumented client does around each call: templates, screening, one audit record.

Provider-neutral; :mod:`._openai` and :mod:`._anthropic` adapt the SDK objects to it. The same record
fields as the gateway, except ``key_id`` and ``fallback_path`` (there is no gateway key or chain).
"""

from __future__ import annotations

import copy
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from soc2ai.errors import PolicyViolation
from soc2ai.gateway.core import (
    DEFINITION_FIELDS,
    canonical_arguments,
    definitions_text,
    estimate_tokens,
    json_still_valid,
    media_kinds,
    message_text,
    messages_text,
    redact_content,
    redact_definitions,
    redact_messages,
    split_instructions,
    template_inputs,
)
from soc2ai.gateway.screening import (
    SPLIT_FINDING,
    Pipeline,
    blocked_message,
    decisions_json,
    instructions_pipeline,
    left_to_redact,
    screen_media,
)
from soc2ai.scan.interface import Action, Stage

if TYPE_CHECKING:
    from soc2ai.ledger import AuditLog

logger = logging.getLogger("soc2ai.instrument")

_PARAMS = ("temperature", "top_p", "seed", "max_tokens", "max_completion_tokens", "max_output_tokens", "n",
           "presence_penalty", "frequency_penalty", "stop", "stop_sequences", "stream", "top_k")

UserId = str | Callable[[], str | None] | None


class PromptShape(Protocol):
    """Where a request keeps its prompt: what is recorded, the texts screened, how a redaction is applied."""

    def apply_template(self, kwargs: dict[str, Any], text: str) -> None:
        """Put a rendered prompt template into the request."""
        ...

    def prompt(self, kwargs: dict[str, Any]) -> Any:
        """The prompt as recorded (hashed) in the ledger."""
        ...

    def texts(self, kwargs: dict[str, Any]) -> tuple[list[str], list[str]]:
        """Every text of the request that is screened before it is sent: (the deployer's instructions,
        i.e. system / developer prompts, the rest)."""
        ...

    def redact(self, kwargs: dict[str, Any], redact: Callable[[str], str]) -> None:
        """Replace the screened texts by ``redact(text)``, without changing the caller's objects."""
        ...

    def media(self, kwargs: dict[str, Any]) -> list[str]:
        """The finding types of the request's parts the scanners cannot read (:func:`media_kinds`)."""
        ...


def _as_sent(value: Any) -> Any:
    """An SDK object as the dict the SDK itself sends for it (both SDKs dump request models with
    ``exclude_unset=True, mode="json"``); anything else as it is."""
    dump = getattr(value, "model_dump", None)
    return dump(exclude_unset=True, mode="json") if callable(dump) else value


def arguments_text(obj: Any) -> str | None:
    """A tool call's ``arguments`` on an SDK object, as text. Arguments a provider sent as a JSON object or
    array (not the spec's string; the SDKs keep it, since they build responses without validating) are
    replaced on the object by their JSON text, so they are screened and redacted like a string."""
    args = getattr(obj, "arguments", None)
    if (text := canonical_arguments(args)) is not None:  # and ``\\u``-escaped values decoded
        obj.arguments = args = text
    return args if isinstance(args, str) else None


def _is_model(value: Any) -> bool:
    """An SDK (pydantic) model instance, not a model class."""
    return hasattr(value, "model_dump") and not isinstance(value, type)


def _is_iterable(value: Any) -> bool:
    """An Iterable the SDKs send as a JSON list (tuple, generator, ...), not a string, dict or model."""
    return isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping | list) \
        and not hasattr(value, "model_dump")


def _listed(message: Any) -> Any:
    """``message`` with Iterable ``content`` / ``tool_calls`` (typed ``Iterable[...]`` by both SDKs, sent as
    lists) read into lists, as a new dict: screening reads lists only, and a generator reads once."""
    if not isinstance(message, dict):
        return message
    fixed = {k: list(message[k]) for k in ("content", "tool_calls") if _is_iterable(message.get(k))}
    return {**message, **fixed} if fixed else message


def listed_messages(messages: Any) -> Any:
    """``messages`` as a list with :func:`_listed` messages (the caller's objects unchanged); the list
    itself when nothing needed it."""
    if messages is None or isinstance(messages, str | Mapping):
        return messages
    items = list(messages)
    out = [_listed(m) for m in items]
    same = isinstance(messages, list) and all(a is b for a, b in zip(out, items, strict=True))
    return messages if same else out


def plain_messages(messages: Iterable[Any]) -> list[Any]:
    """Messages with SDK objects turned into the dicts that are sent. Callers hand back the previous
    answer as an object (``messages.append(completion.choices[0].message)``, Anthropic
    ``{"role": "assistant", "content": message.content}``, ``"tool_calls": message.tool_calls``): screening
    reads dicts, so an object left as it is would go out unscreened (fail open)."""
    out = []
    for m in messages:
        m = _listed(_as_sent(m))
        for key in ("content", "tool_calls"):
            if isinstance(m, dict) and isinstance(items := m.get(key), list):
                plain = [_as_sent(p) for p in items]
                if any(a is not b for a, b in zip(plain, items, strict=True)):
                    m = {**m, key: plain}
        if isinstance(m, dict) and m.get("function_call") is not None:
            if (legacy := _as_sent(m["function_call"])) is not m["function_call"]:
                m = {**m, "function_call": legacy}
        out.append(_own_object_arguments(m))
    return out


def _rewritten_arguments(fn: Any) -> bool:
    """Whether screening will put ``fn``'s :func:`~soc2ai.gateway.core.canonical_arguments` in place."""
    return isinstance(fn, dict) and canonical_arguments(fn.get("arguments")) is not None


def _own_object_arguments(m: Any) -> Any:
    """``m`` with each call function whose ``arguments`` screening will rewrite copied
    (:func:`soc2ai.gateway.core.arguments_as_text` rewrites in place): the caller's messages must not
    change."""
    if not isinstance(m, dict):
        return m
    calls = m.get("tool_calls")
    if isinstance(calls, list):
        owned = [{**tc, "function": {**tc["function"]}}
                 if isinstance(tc, dict) and _rewritten_arguments(tc.get("function")) else tc for tc in calls]
        if any(a is not b for a, b in zip(owned, calls, strict=True)):
            m = {**m, "tool_calls": owned}
    if _rewritten_arguments(m.get("function_call")):
        m = {**m, "function_call": {**m["function_call"]}}
    return m


def _system_blocks(value: Any) -> Any:
    """Anthropic ``system``: a string, or its text blocks (an Iterable, maybe of SDK objects) as dicts."""
    return value if isinstance(value, str) or value is None else [_as_sent(b) for b in value]


class ChatPrompt:
    """``messages`` (chat completions), and the system prompt in ``kwargs[system_key]`` (Anthropic)."""

    def __init__(self, system_key: str | None) -> None:
        self.system_key = system_key

    def apply_template(self, kwargs: dict[str, Any], text: str) -> None:
        """As the system prompt when there are messages, else as the user message."""
        messages = list(kwargs.get("messages") or [])
        if self.system_key and messages:
            kwargs[self.system_key] = text
        elif messages:
            messages = [{"role": "system", "content": text}, *messages]
        else:
            messages = [{"role": "user", "content": text}]
        kwargs["messages"] = messages

    def prompt(self, kwargs: dict[str, Any]) -> Any:
        """The messages (with the system prompt, when there is one). Called first: Iterables in the
        request are read into lists here, once, so what is screened is what is sent."""
        if kwargs.get("messages") is not None:
            kwargs["messages"] = listed_messages(kwargs["messages"])
        if self.system_key and _is_iterable(kwargs.get(self.system_key)):
            kwargs[self.system_key] = list(kwargs[self.system_key])
        messages = list(kwargs.get("messages") or [])
        key = self.system_key
        return {"system": kwargs[key], "messages": messages} if key and kwargs.get(key) else messages

    def texts(self, kwargs: dict[str, Any]) -> tuple[list[str], list[str]]:
        """What the model is shown as text, as the gateway reads it (:func:`messages_text`: contents and
        history tool calls' arguments): (the system prompt and system / developer messages, the rest)."""
        messages = [m for m in plain_messages(kwargs.get("messages") or []) if isinstance(m, dict)]
        own_msgs, rest = split_instructions(messages)
        own = [messages_text(own_msgs)] if own_msgs else []
        if self.system_key and isinstance(kwargs.get(self.system_key), str | list):
            own.insert(0, message_text(_system_blocks(kwargs[self.system_key])))
        return own, [messages_text(rest)] if rest else []

    def media(self, kwargs: dict[str, Any]) -> list[str]:
        """Images, audio, files and video in the messages (:func:`media_kinds`)."""
        return media_kinds(plain_messages(kwargs.get("messages") or []))

    def redact(self, kwargs: dict[str, Any], redact: Callable[[str], str]) -> None:
        """Every text :meth:`texts` scanned (:func:`redact_messages`; the system prompt as a string or
        text blocks); new objects, the caller's messages stay as they were."""
        kwargs["messages"] = redact_messages(plain_messages(kwargs.get("messages") or []), redact)
        if self.system_key and isinstance(kwargs.get(self.system_key), str | list):
            kwargs[self.system_key] = redact_content(_system_blocks(kwargs[self.system_key]), redact)


def _like(before: Any, items: Any) -> Any:
    """``items`` (a new dict or list) as the type ``before`` has, with ``before``'s attributes: a shallow
    copy of ``before`` (no ``__init__``, which may take other arguments) refilled with ``items``."""
    if type(before) in (dict, list):
        return items
    try:
        new = copy.copy(before)
        if new is before:  # a ``__copy__`` that returns the object itself: refilling it would change the caller's
            return items
        new.clear()
        if isinstance(new, dict):
            new.update(items)
        else:
            new.extend(items)
    except Exception:  # a subclass that cannot be copied or refilled (``__new__`` arguments, frozen): plain,
        return items  # as the SDK sends it
    return new


def keep_kinds(before: Any, after: Any) -> Any:
    """``after``, which :func:`redact_definitions` made of ``before`` (new plain dicts and lists where a text
    changed, the same objects elsewhere), with each new container given the type and attributes of the
    one it replaces. The SDKs keep state on dict subclasses in ``tools``: openai's
    ``pydantic_function_tool()`` (a ``PydanticFunctionTool`` under ``"function"``) and
    ``pydantic_responses_function_tool()`` (a ``ResponsesPydanticFunctionTool``) hold the model ``parse()``
    reads a call's arguments into, and ``responses.parse`` refuses a chat-shaped function tool without it;
    anthropic tags helper-made dicts for its ``x-stainless-helper`` header. Plain dicts lost all that."""
    if after is before:
        return after
    if isinstance(before, dict) and isinstance(after, dict):
        return _like(before, {k: keep_kinds(before[k], v) if k in before else v for k, v in after.items()})
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return _like(before, [keep_kinds(b, a) for b, a in zip(before, after, strict=True)])
    return after


def given(value: Any) -> bool:
    """Passed by the caller: not None, and not one of the SDKs' ``omit`` / ``NOT_GIVEN`` sentinels."""
    return value is not None and type(value).__name__ not in ("Omit", "NotGiven")


def pydantic_schema(type_: Any) -> dict[str, Any]:
    """Pydantic's JSON schema of a model class (or any type a ``TypeAdapter`` takes): the fallback where an
    SDK lacks the helper it builds its request schema with. Same descriptions, titles, enums, defaults and
    examples, which is what screening reads."""
    import pydantic

    return dict(pydantic.TypeAdapter(type_).json_schema())


# What an SDK builds from Python types in the request (``parse(response_format=Model)``): argument name →
# the request fields it becomes, as dicts :func:`definitions_text` reads.
SchemaBuilder = Callable[[dict[str, Any]], dict[str, dict[str, Any]]]


def _schema_refusal(result: Any, derived: Mapping[str, Any], kwargs: dict[str, Any]) -> str:
    """Why a call whose class-built schema holds a finding is refused (finding types, never the text)."""
    found = [f for f in result.findings if getattr(f, "action", None) in (Action.REDACT, Action.BLOCK)]
    types = sorted({str(getattr(f, "entity_type", "?")) for f in found or result.findings}) or ["?"]
    args = ", ".join(f"{k}={getattr(kwargs[k], '__name__', None) or type(kwargs[k]).__name__}" for k in derived)
    return (f"request blocked by content policy: {', '.join(types)} in the JSON schema the SDK builds from {args} "
            "(descriptions, titles, enums, defaults, examples). A class cannot be redacted in place: remove that "
            "text from the class, or pass the schema as a dict (redacted like other schemas).")


def refuse_unrecorded(resource: Any, method: str, path: str, instead: str) -> None:
    """Replace ``resource.<method>``, a way to reach the model that the wrappers neither screen nor record
    (a WebSocket session, a legacy endpoint), with one that raises :class:`PolicyViolation` naming
    ``instead``: an instrumented client has no silent bypass. Whoever accepts an unrecorded path uses a
    separate client that is not instrumented for it."""
    original = getattr(resource, method, None)
    if original is None or getattr(original, "__soc2ai__", False):
        return

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise PolicyViolation(f"{path}() is not instrumented: its calls would be neither screened nor recorded. "
                              f"Use {instead}, or a separate client that is not instrumented (unrecorded).")

    refused.__soc2ai__ = True  # type: ignore[attr-defined]
    setattr(resource, method, refused)


# Request fields that carry text to the model: given in ``extra_body`` (merged over the typed arguments
# into the JSON body) they would be sent unscreened. Anthropic's ``output_config`` holds the output schema.
_CONTENT_FIELDS = frozenset({"messages", "system", "input", "instructions", "prompt", "output_config",
                             *DEFINITION_FIELDS})
# Both SDKs' private header that makes a method return the bare HTTP response (its body unscreened).
_OVERRIDE_CAST_TO = "____stainless_override_cast_to"


# Set while an instrumented method (or a stream helper it wraps) runs: the requests it sends are screened
# and recorded by it. guard_requests refuses the other requests that could carry content out.
INSTRUMENTED: ContextVar[bool] = ContextVar("soc2ai_instrumented", default=False)
# Methods that send nothing to a model (reads, deletions): not guarded.
_READ_METHODS = frozenset({"get", "head", "options", "delete"})


def _api_path(url: Any) -> str:
    """``/v1/images/generations?x=1`` (anthropic) or ``/images/generations`` (openai) → ``images/generations``."""
    path = str(url).split("?", 1)[0].strip("/")
    return path.removeprefix("v1/") if path != "v1" else ""


def guard_requests(client: Any, allow: tuple[str, ...]) -> None:
    """Make ``client`` refuse (:class:`PolicyViolation`) any request that could send content to the
    provider (POST, PUT, PATCH) unless an instrumented method sends it, or its path is in ``allow``
    (``"files"`` allows ``files`` and ``files/...``). Images, audio, moderations, batches, uploads,
    assistants, fine-tuning, raw ``client.post(...)``, and resources a newer SDK adds are otherwise
    neither screened nor recorded: fail closed, and let the deployer say which such calls may go out
    unrecorded. Both SDKs send every request through ``client.request`` (bound late, so this instance
    attribute is what resources call)."""
    original = getattr(client, "request", None)
    if original is None or getattr(original, "__soc2ai__", False):
        return
    allowed = tuple(_api_path(a) for a in allow)

    def check(options: Any) -> None:
        if INSTRUMENTED.get() or str(getattr(options, "method", "")).lower() in _READ_METHODS:
            return
        path = _api_path(getattr(options, "url", ""))
        if any(path == a or path.startswith(a + "/") for a in allowed):
            return
        first = path.split("/", 1)[0]
        raise PolicyViolation(f"{str(getattr(options, 'method', '')).upper()} /{path} is not instrumented: the call "
                              f"would be neither screened nor recorded. Pass allow_unrecorded=[{first!r}] to "
                              "instrument() to let such calls through unrecorded, or use a separate client.")

    request: Any
    if inspect.iscoroutinefunction(original):
        async def request(cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
            check(options)
            return await original(cast_to, options, *args, **kwargs)
    else:
        def request(cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
            check(options)
            return original(cast_to, options, *args, **kwargs)

    request.__soc2ai__ = True
    client.request = request


def keep_on_copies(client: Any, apply: Callable[[Any], None]) -> None:
    """Make ``client.copy()`` and ``client.with_options()`` (the same method in both SDKs; the usual way
    to set a timeout or retries for one call) return clients instrumented by ``apply`` with the same
    recorder. They build a new client with fresh resources, so without this
    ``client.with_options(timeout=5).chat.completions.create(...)`` was neither screened nor recorded."""
    original = getattr(client, "copy", None)
    if original is None or getattr(original, "__soc2ai__", False):
        return

    def copy(*args: Any, **kwargs: Any) -> Any:
        new = original(*args, **kwargs)
        apply(new)
        keep_on_copies(new, apply)
        return new

    copy.__soc2ai__ = True  # type: ignore[attr-defined]
    client.copy = copy
    client.with_options = copy


def show_text(parts: list[Any], shown: str) -> None:
    """Put screened text into an answer split over several text parts: all of it in the first, the
    others emptied. A structured-output object the SDK's ``parse()`` built from a part (openai
    Responses ``parsed``, anthropic ``parsed_output``) came from the unscreened text: it is withheld."""
    for i, part in enumerate(parts):
        part.text = shown if i == 0 else ""
        for name in ("parsed", "parsed_output"):
            if getattr(part, name, None) is not None:
                setattr(part, name, None)


def counted(resp: Any, state: CallState, rec: Recorder) -> Any:
    """A token count (Anthropic ``messages.count_tokens``, OpenAI ``responses.input_tokens.count``): the
    screened prompt went to the provider and nothing was generated; recorded with the count."""
    rec.finish(state, status=200, input_tokens=getattr(resp, "input_tokens", None), output_tokens=0)
    return resp


@dataclass
class CallState:
    """One instrumented call in progress."""

    endpoint: str
    model: str
    prompt: Any
    prompt_text: str
    params: dict[str, Any]
    t0_ns: int = field(default_factory=time.perf_counter_ns)
    flagged: bool = False
    scans: list[dict[str, Any]] = field(default_factory=list)
    template: str | None = None
    template_hash: str | None = None
    recorded: bool = False
    user_id: str | None = None


class Recorder:
    """Holds the log, pipeline, prompt registry and user of one instrumented client."""

    def __init__(self, *, log: AuditLog, user_id: UserId, pipeline: Pipeline | None, prompts: Any,
                 classification: str | None, provider: str) -> None:
        self.log = log
        self.user_id = user_id
        self.pipeline = pipeline
        self.instructions_pipeline = instructions_pipeline(pipeline)
        self.prompts = prompts
        self.classification = classification
        self.provider = provider

    def _user(self) -> str | None:
        return self.user_id() if callable(self.user_id) else self.user_id

    # --- before the call -------------------------------------------------------------------------
    def begin(self, endpoint: str, kwargs: dict[str, Any], *, system_key: str | None = None,
              shape: PromptShape | None = None, schemas: SchemaBuilder | None = None) -> CallState:
        """Render a template (``template=``/``variables=`` kwargs), pre-scan, maybe redact ``kwargs``.

        ``shape`` reads and rewrites a request that is not chat ``messages`` (the Responses API's
        ``input``/``instructions``). ``schemas`` builds the output schemas the SDK will make of Python types
        in the request (``parse(response_format=Model)``), screened like dict schemas; since a class cannot
        be redacted, a finding there refuses the call. Raises :class:`PolicyViolation` (after recording)
        when the prompt is blocked.
        """
        template = kwargs.pop("template", None)
        variables = kwargs.pop("variables", None)
        state = CallState(endpoint, str(kwargs.get("model", "")), None, "", {})
        # Read now: a stream is recorded when it ends, maybe where the caller's context (the request's
        # user in a context variable, a thread-local) is another one.
        state.user_id = self._user()
        extra, headers = kwargs.get("extra_body"), kwargs.get("extra_headers")
        why = None
        if isinstance(extra, Mapping) and (carried := sorted(_CONTENT_FIELDS.intersection(extra))):
            why = f"extra_body cannot carry {', '.join(carried)}: it would be sent unscreened; pass them as arguments"
        elif isinstance(headers, Mapping) and any(str(k).lower() == _OVERRIDE_CAST_TO for k in headers):
            why = f"extra_headers cannot set {_OVERRIDE_CAST_TO}: the response would not be screened"
        if why is not None:
            self.finish(state, status=400, error=why)
            raise PolicyViolation(why)
        rendered = None
        if template is not None:
            if self.prompts is None:
                raise PolicyViolation("template= needs instrument(..., prompts=PromptRegistry)")
            rendered = self.prompts.render(template, variables or {})
            state.template, state.template_hash = rendered.ref, rendered.content_hash
        if shape is None:
            shape = ChatPrompt(system_key)
        if rendered is not None:
            shape.apply_template(kwargs, rendered.text)
        state.prompt = shape.prompt(kwargs)
        for key in DEFINITION_FIELDS:  # ``tools=(...)`` or a generator: screening reads lists (and reads once)
            if _is_iterable(kwargs.get(key)):
                kwargs[key] = list(kwargs[key])
            value = kwargs.get(key)
            # SDK objects (``response_format=ResponseFormatJSONObject(...)``, a tool model) go out as their dump:
            # screened as that dict, and not taken for a class to build a schema from.
            if _is_model(value):
                kwargs[key] = _as_sent(value)
            elif isinstance(value, list) and any(_is_model(v) for v in value):
                kwargs[key] = [_as_sent(v) for v in value]
        unreadable = getattr(shape, "unreadable", None)
        if self.pipeline is not None and callable(unreadable) and (why := unreadable(kwargs)):
            self.finish(state, status=400, error=why)  # what cannot be screened is not sent (fail closed)
            raise PolicyViolation(why)
        own, rest = shape.texts(kwargs)
        state.prompt_text = "\n".join(own + rest)
        if rendered is not None and variables:
            # The caller's variables may land in a system prompt: they get the full pipeline.
            rest = [*rest, template_inputs(variables)]
        state.params = {k: kwargs[k] for k in _PARAMS if k in kwargs}
        derived: dict[str, dict[str, Any]] = {}
        if schemas is not None and self.instructions_pipeline is not None:
            try:
                derived = schemas(kwargs)
            except Exception as exc:  # the SDK's own helper fails the same way: the call would not be sent
                self.finish(state, status=error_status(exc), error=type(exc).__name__)
                raise
        # The deployer's instructions go through the instructions pipeline (no injection screening by
        # default, see soc2ai.scan.pipeline.Pipeline.for_instructions), the rest through the full one.
        # Tool definitions, output schemas and predicted output are the deployer's too.
        results = [r for r in (self._scan(state, "\n".join(rest), Stage.PRE),
                               self._scan(state, "\n".join(own), Stage.PRE, self.instructions_pipeline),
                               self._scan(state, definitions_text(kwargs), Stage.PRE, self.instructions_pipeline))
                   if r is not None]
        built = {field: value for fields in derived.values() for field, value in fields.items()}
        fixed = self._scan(state, definitions_text(built), Stage.PRE, self.instructions_pipeline) if built else None
        if self.pipeline is not None and (kinds := shape.media(kwargs)):
            results.append(media := screen_media(self.pipeline, kinds))
            self._note(state, Stage.PRE, media)
        blocked = [r for r in results if r.action is Action.BLOCK]
        if blocked:
            msg = blocked_message(blocked[0])
            self.finish(state, status=400, error=msg)
            raise PolicyViolation(msg)
        if fixed is not None and fixed.action in (Action.REDACT, Action.BLOCK):
            # The SDK builds the schema after this wrapper ran: what it holds cannot be redacted (fail closed).
            msg = _schema_refusal(fixed, derived, kwargs)
            self.finish(state, status=400, error=msg)
            raise PolicyViolation(msg)
        if any(r.action is Action.REDACT for r in results) and self.pipeline is not None:
            pipe = self.pipeline
            try:
                def redact(text: str) -> str:
                    return str(pipe.run(text, stage=Stage.PRE).text)

                shape.redact(kwargs, redact)
                kwargs.update(keep_kinds(kwargs, redact_definitions(kwargs, redact)))
                own_after, rest_after = shape.texts(kwargs)
                if left_to_redact(pipe, "\n".join(own_after + rest_after)) or \
                        left_to_redact(pipe, definitions_text(kwargs)):
                    raise PolicyViolation(SPLIT_FINDING)
            except PolicyViolation as exc:  # what a redaction would break or miss: refused, and recorded
                self.finish(state, status=400, error=str(exc))
                raise
        return state

    def _scan(self, state: CallState, text: str, stage: Stage, pipeline: Pipeline | None = None) -> Any:
        pipeline = pipeline or self.pipeline
        if pipeline is None or not text:
            return None
        result = pipeline.run(text, stage=stage, redact_key=None)
        self._note(state, stage, result)
        return result

    @staticmethod
    def _note(state: CallState, stage: Stage, result: Any) -> None:
        """A decision other than allow flags the call and goes into its record."""
        if result.action is not Action.ALLOW:
            state.flagged = True
            state.scans.extend(decisions_json(stage, result))

    # --- after the call --------------------------------------------------------------------------
    def post_scan(self, state: CallState, text: str) -> tuple[Action, str]:
        """Post-generation screening of the output: (action, text to show)."""
        result = self._scan(state, text, Stage.POST)
        if result is None:
            return Action.ALLOW, text
        if result.action is Action.BLOCK:
            return Action.BLOCK, ""
        if result.action is Action.REDACT:
            return Action.REDACT, str(result.text)
        return result.action, text

    def post_scan_arguments(self, state: CallState, args: str) -> tuple[Action, str]:
        """Post-generation screening of one tool call's JSON arguments: (action, arguments to show).
        A redaction that would leave them unparseable is a block (fail closed)."""
        action, shown = self.post_scan(state, args)
        if action is Action.REDACT and not json_still_valid(args, shown):
            return Action.BLOCK, ""
        return action, shown

    def screen_call_arguments(self, state: CallState, calls: Iterable[tuple[str, Callable[[str], None]]]) -> bool:
        """Post-screen tool calls' JSON arguments, each given with a setter that puts redacted arguments back
        in place (they can carry data out as well as text can). True as soon as one is blocked: the caller
        then withholds the answer's tool calls."""
        for args, put in calls:
            action, shown = self.post_scan_arguments(state, args)
            if action is Action.BLOCK:
                return True
            if action is Action.REDACT:
                put(shown)
        return False

    def discard(self, state: CallState) -> None:
        """This call leaves no record (nothing reached the caller: a poll of a response still in progress)."""
        state.recorded = True

    def finish(self, state: CallState, *, status: int, output: str | list[str] | None = None,
               model_served: str | None = None,
               input_tokens: int | None = None, output_tokens: int | None = None, response_id: str | None = None,
               system_fingerprint: str | None = None, finish_reason: str | None = None,
               error: str | None = None) -> None:
        """The one audit record of this call (idempotent; never raises). ``output``: the answer's text, or
        the list of the choices' texts in index order when there are several (``n > 1``)."""
        if state.recorded:
            return
        state.recorded = True
        try:
            estimated = input_tokens is None or (output is not None and output_tokens is None)
            self.log.log_inference(
                user_id=state.user_id, model_id=state.model, prompt=state.prompt, response=output,
                latency_us=(time.perf_counter_ns() - state.t0_ns) // 1000,
                input_tokens=input_tokens if input_tokens is not None else estimate_tokens(state.prompt_text),
                output_tokens=output_tokens if output_tokens is not None else
                (estimate_tokens(output if isinstance(output, str) else "\n".join(output)) if output else 0),
                flagged=state.flagged, tokens_estimated=estimated, model_served=model_served,
                provider=self.provider, endpoint=state.endpoint, params=state.params, scans=state.scans,
                status=status, template=state.template, template_hash=state.template_hash,
                classification=self.classification, response_id=response_id,
                system_fingerprint=system_fingerprint, finish_reason=finish_reason, error=error)
        except Exception:  # the audit path must never break the caller's call
            logger.exception("soc2ai: could not record the call")


def error_status(exc: BaseException) -> int:
    """HTTP-ish status of an SDK exception (599 when there was no response; 499 when the caller went away:
    a cancelled task, an interrupt)."""
    status = getattr(exc, "status_code", None)
    if not isinstance(exc, Exception):
        return 499
    return status if isinstance(status, int) else 599
