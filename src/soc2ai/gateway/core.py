"""The gateway's request pipeline state: keys, roles, limits, abuse, screening, templates, records.

:class:`Gateway` holds everything one app instance shares (one ``httpx.AsyncClient``, the key store, the
rate limiter, breakers, metrics). The endpoint handlers in :mod:`.handlers` call into it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

import httpx
import orjson

from soc2ai.errors import AuthError, ConfigError, PolicyViolation, UsageError
from soc2ai.gateway.cache import CompletionCache, build_cache
from soc2ai.gateway.errors import ApiError, bad_request
from soc2ai.gateway.keys import ApiKey, KeyStore
from soc2ai.gateway.metrics import Metrics
from soc2ai.gateway.otel import Tracing
from soc2ai.gateway.ratelimit import build_limiter
from soc2ai.gateway.ratelimit.interface import RateLimiter
from soc2ai.gateway.ratelimit.memory import MemoryLimiter
from soc2ai.gateway.routing import Router
from soc2ai.gateway.screening import (
    SPLIT_FINDING,
    Pipeline,
    blocked_message,
    decisions_json,
    instructions_pipeline,
    left_to_redact,
    screen_media,
)
from soc2ai.gateway.settings import CLASSIFICATIONS
from soc2ai.gateway.transport import LeanTransport
from soc2ai.ledger.records import AccessRecord, AlertRecord, ConfigChangeRecord
from soc2ai.scan.interface import Action, Stage
from soc2ai.scan.pipeline import strongest

if TYPE_CHECKING:
    from soc2ai.config import Config
    from soc2ai.ledger import AuditLog

CLASSIFICATION_HEADER = "x-soc2ai-classification"
logger = logging.getLogger("soc2ai.gateway")


def now_us() -> int:
    """Wall-clock microseconds (the default clock)."""
    return time.time_ns() // 1000


@dataclass
class Call:
    """Everything known about one request, filled in as it moves through the pipeline."""

    endpoint: str
    t0_ns: int
    key: ApiKey
    alias: str = ""
    classification: str = ""
    flagged: bool = False
    scans: list[dict[str, Any]] = field(default_factory=list)
    fallback_path: list[str] = field(default_factory=list)
    template: str | None = None
    template_hash: str | None = None
    prompt: Any = None
    wall_ns: int = field(default_factory=time.time_ns)


def json_still_valid(before: str, after: str) -> bool:
    """False when ``before`` was valid JSON and ``after`` is not (a redaction broke the structure)."""
    try:
        orjson.loads(before)
    except orjson.JSONDecodeError:
        return True
    try:
        orjson.loads(after)
    except orjson.JSONDecodeError:
        return False
    return True


def estimate_tokens(text: str) -> int:
    """About four characters per token (tiktoken needs a download; this is marked as an estimate)."""
    return len(text) // 4 + 1


def _map_texts(content: Any, fn: Callable[[str], str]) -> Any:
    """``content`` with ``fn`` applied to every string it shows the model as text: a string; in a list of
    parts, text parts, refusal and thinking parts, and the nested text of Anthropic ``tool_result`` blocks and text ``document`` blocks
    (tool output and attached documents are where indirect prompt injection arrives), and the string values
    in the ``input`` of history ``tool_use`` blocks (the model is shown them again). Images, files and
    PDFs carry no text here. One walk for reading (:func:`message_text`) and redacting
    (:func:`redact_content`), so what is screened is what is redacted. Parts ``fn`` changes are new
    objects; the rest are passed as they are, and nothing is modified in place."""
    if isinstance(content, str):
        return fn(content)
    if not isinstance(content, list):
        return content
    out = []
    for p in content:
        if isinstance(p, dict):
            if isinstance(text := p.get("text"), str) and (new := fn(text)) is not text:
                p = {**p, "text": new}
            kind = p.get("type")
            # A refusal part's text, and a thinking part's (Anthropic: a string; Mistral: a list of text
            # parts): shown to the model again when given back as history, and sent to clients as answers.
            for key in ("refusal", "thinking") if kind in ("refusal", "thinking") else ():
                if isinstance(inner := p.get(key), str | list) and (mapped := _map_texts(inner, fn)) is not inner:
                    p = {**p, key: mapped}
            if kind == "tool_result" and isinstance(inner := p.get("content"), str | list):
                if (mapped := _map_texts(inner, fn)) is not inner:
                    p = {**p, "content": mapped}
            elif kind == "tool_use" and isinstance(args := p.get("input"), dict):
                if (mapped := _map_json_strings(args, fn)) is not args:
                    p = {**p, "input": mapped}
            elif kind == "document" and isinstance(src := p.get("source"), dict):
                key = "data" if src.get("type") == "text" else "content" if src.get("type") == "content" else ""
                inner = src.get(key)
                if isinstance(inner, str) or (key == "content" and isinstance(inner, list)):
                    if (mapped := _map_texts(inner, fn)) is not inner:
                        p = {**p, "source": {**src, key: mapped}}
        out.append(p)
    return out


def _map_json_strings(value: Any, fn: Callable[[str], str], keep: frozenset[str] = frozenset()) -> Any:
    """``value`` (parsed JSON) with ``fn`` applied to every string in it, except under a key in ``keep``
    whose value is not an object; changed containers are new."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        out = {k: v if k in keep and not isinstance(v, dict) else _map_json_strings(v, fn, keep)
               for k, v in value.items()}
        return value if all(out[k] is v for k, v in value.items()) else out
    if isinstance(value, list):
        items = [_map_json_strings(v, fn, keep) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


# Content parts the scanners cannot read (they read text), by finding type: the ``media`` policy
# category decides whether a request carrying them is refused (the default) or forwarded and flagged.
_MEDIA_PARTS = {
    "image_url": "MEDIA_IMAGE", "image": "MEDIA_IMAGE", "input_image": "MEDIA_IMAGE",
    "input_audio": "MEDIA_AUDIO", "audio": "MEDIA_AUDIO",
    "file": "MEDIA_FILE", "input_file": "MEDIA_FILE",
    "video_url": "MEDIA_VIDEO", "video": "MEDIA_VIDEO", "input_video": "MEDIA_VIDEO",
}


def _content_media(content: Any, found: set[str]) -> None:
    for p in content if isinstance(content, list) else ():
        if not isinstance(p, dict):
            continue
        kind = p.get("type")
        if isinstance(kind, str) and kind in _MEDIA_PARTS:
            found.add(_MEDIA_PARTS[kind])
        elif kind == "document":  # text sources are screened (_map_texts); base64 / URL / file ones are not
            src = p.get("source")
            if not (isinstance(src, dict) and src.get("type") in ("text", "content")):
                found.add("MEDIA_FILE")
            elif src.get("type") == "content":
                _content_media(src.get("content"), found)
        elif kind == "tool_result":
            _content_media(p.get("content"), found)


def media_kinds(messages: list[Any]) -> list[str]:
    """The finding types (``MEDIA_IMAGE``, ``MEDIA_AUDIO``, ``MEDIA_FILE``, ``MEDIA_VIDEO``) of the parts
    in ``messages`` that screening cannot read: images, audio, files, PDFs and video, in message
    ``content`` (OpenAI and Anthropic formats, Responses input items) and tool results (``output`` of a
    Responses ``function_call_output``, Anthropic ``tool_result`` content). Sorted; empty for text only."""
    found: set[str] = set()
    for m in messages:
        if isinstance(m, dict):
            _content_media(m.get("content"), found)
            if m.get("type") == "function_call_output":
                _content_media(m.get("output"), found)
    return sorted(found)


def _collect(walk: Callable[[Any, Callable[[str], str]], Any], value: Any) -> str:
    """The strings ``walk`` (:func:`_map_texts`, :func:`_map_json_strings`) visits in ``value``, joined."""
    texts: list[str] = []

    def keep(text: str) -> str:
        texts.append(text)
        return text

    walk(value, keep)
    return "\n".join(texts)


def template_inputs(variables: Any) -> str:
    """The string values of a template's ``variables``: the caller's text inside a rendered template,
    which can become a system message. Screened with the full pipeline, not as the deployer's own."""
    return _collect(_map_json_strings, variables)


# Request fields besides the messages that reach the provider as text: tool and function definitions
# (OpenAI chat and Responses, Anthropic), structured-output schemas (chat ``response_format``, Responses
# ``text.format``, Anthropic ``output_format``) and predicted output (``prediction``).
DEFINITION_FIELDS = ("tools", "functions", "response_format", "text", "output_format", "prediction")
# JSON-schema and tool keys whose values are structure (names, types, references, patterns) rather than
# prose: not screened, since a redaction there would break the schema or the tool binding. A dict under
# such a key is a schema property of that name ("properties": {"name": {...}}) and is screened.
_STRUCTURAL_KEYS = frozenset({"type", "name", "$ref", "$schema", "$id", "$anchor", "format", "required",
                              "pattern", "strict", "cache_control", "additionalProperties", "verbosity"})


def _map_definition_strings(value: Any, fn: Callable[[str], str]) -> Any:
    return _map_json_strings(value, fn, _STRUCTURAL_KEYS)


def definitions_text(request: dict[str, Any]) -> str:
    """The prose a request sends besides its messages (:data:`DEFINITION_FIELDS`): tool descriptions,
    parameter and schema descriptions, titles, enums, defaults and examples, predicted output. The
    deployer's own text (screened like a system prompt), which can still carry PII or a secret out."""
    return "\n".join(_collect(_map_definition_strings, request[k]) for k in DEFINITION_FIELDS if k in request)


def redact_definitions(request: dict[str, Any], redact: Callable[[str], str]) -> dict[str, Any]:
    """``request`` with every text :func:`definitions_text` reads redacted (new objects where it changed)."""
    return {k: _map_definition_strings(v, redact) if k in DEFINITION_FIELDS else v for k, v in request.items()}


def message_text(content: Any) -> str:
    """The text of one message's content (see :func:`_map_texts` for what counts)."""
    return content if isinstance(content, str) else _collect(_map_texts, content)


def redact_content(content: Any, redact: Callable[[str], str]) -> Any:
    """One message's content with every text :func:`message_text` reads redacted (new objects where it
    changed; images and other parts as they were); anything else as it is."""
    return _map_texts(content, redact)


def canonical_arguments(args: Any) -> str | None:
    """Tool-call arguments as the text screening must read, or None when they are that text already: a JSON
    object or array (not the spec's string, but some servers and clients send it) as its JSON text, and a
    JSON string with ``\\u`` escapes decoded (the same JSON value), so an escaped value cannot hide from
    the scanners. A string that is not JSON (a streamed fragment) is read as it is."""
    if isinstance(args, dict | list):
        return orjson.dumps(args).decode()
    if isinstance(args, str) and "\\u" in args:
        try:
            return orjson.dumps(orjson.loads(args)).decode()
        except orjson.JSONDecodeError:
            return None
    return None


def arguments_as_text(fn: Any) -> TypeGuard[dict[str, Any]]:
    """Whether ``fn`` is a function object whose ``arguments`` is a string, after putting its
    :func:`canonical_arguments` in place: screened, redacted and passed on as that text, never skipped."""
    if not isinstance(fn, dict):
        return False
    if (text := canonical_arguments(fn.get("arguments"))) is not None:
        fn["arguments"] = text
    return isinstance(fn.get("arguments"), str)


def tool_call_functions(tool_calls: Any) -> list[dict[str, Any]]:
    """The ``function`` objects of a message's ``tool_calls``, with string ``arguments``
    (:func:`arguments_as_text`)."""
    out = []
    for tc in tool_calls if isinstance(tool_calls, list) else ():
        fn = tc.get("function") if isinstance(tc, dict) else None
        if arguments_as_text(fn):
            out.append(fn)
    return out


def history_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The function objects of the calls an assistant turn made: its ``tool_calls`` and the legacy
    ``function_call`` (the functions API), each with string ``arguments``."""
    fns = tool_call_functions(message.get("tool_calls"))
    legacy = message.get("function_call")
    if arguments_as_text(legacy):
        fns.append(legacy)
    return fns


def messages_text(messages: list[dict[str, Any]]) -> str:
    """Everything a request sends the model as text: message contents and, for assistant turns in the
    history, the arguments of the calls they made (:func:`history_calls`: data the model is shown again)."""
    parts = []
    for m in messages:
        parts.append(message_text(m.get("content")))
        parts.extend(fn["arguments"] for fn in history_calls(m))
    return "\n".join(parts)


INSTRUCTION_ROLES = frozenset({"system", "developer"})


def split_instructions(messages: list[Any]) -> tuple[list[Any], list[Any]]:
    """(the deployer's instructions: system and developer messages, everything else)."""
    own: list[Any] = []
    rest: list[Any] = []
    for m in messages:  # one pass: this runs on every request
        (own if isinstance(m, dict) and m.get("role") in INSTRUCTION_ROLES else rest).append(m)
    return own, rest


def redact_messages(messages: list[Any], redact: Callable[[str], str]) -> list[Any]:
    """Messages with everything :func:`messages_text` reads redacted, as new objects: contents (see
    :func:`_map_texts`) and the JSON arguments of history tool calls (and legacy function calls). Raises :class:`PolicyViolation` when
    a redaction would leave arguments unparseable (fail closed). Items that are not dicts pass as they are."""
    out = []
    for m in messages:
        if isinstance(m, dict):
            if isinstance(m.get("content"), str | list):
                m = {**m, "content": redact_content(m["content"], redact)}
            if tool_call_functions(m.get("tool_calls")):
                m = {**m, "tool_calls": [_redact_call(tc, redact) for tc in m["tool_calls"]]}
            legacy = m.get("function_call")
            if arguments_as_text(legacy):
                m = {**m, "function_call": _redact_call({"function": legacy}, redact)["function"]}
        out.append(m)
    return out


def _redact_call(tc: Any, redact: Callable[[str], str]) -> Any:
    """A history tool call with its JSON arguments redacted; refused if they would no longer parse."""
    fns = tool_call_functions([tc])
    if not fns:
        return tc
    args = fns[0]["arguments"]
    red = redact(args)
    if red != args and not json_still_valid(args, red):
        raise PolicyViolation("tool call arguments cannot be redacted without breaking them")
    return {**tc, "function": {**fns[0], "arguments": red}}


class Abuse:
    """Counts rate-limit hits and blocks per key in a sliding window; says when to suspend."""

    def __init__(self, window_us: int, max_limited: int, max_blocked: int) -> None:
        self.window_us = window_us
        self.max = {"rate_limited": max_limited, "blocked": max_blocked}
        self.events: dict[tuple[str, str], deque[int]] = {}

    def note(self, key_id: str, kind: str, now: int) -> bool:
        """Record an event; True when the key crossed its threshold (and the counter is reset)."""
        q = self.events.setdefault((key_id, kind), deque())
        q.append(now)
        while q and now - q[0] > self.window_us:
            q.popleft()
        if len(q) >= self.max[kind]:
            q.clear()
            return True
        return False


class Gateway:
    """Shared state of one gateway app."""

    def __init__(self, config: Config, *, log: AuditLog | None, transport: httpx.AsyncBaseTransport | None,
                 clock: Callable[[], int] | None, pipeline: Pipeline | None, keys: KeyStore | None,
                 tracer_provider: Any = None) -> None:
        self.config = config
        self.settings = s = config.gateway
        self.log = log
        self.clock = clock or now_us
        # One shared connection pool for every upstream call (the lean transport unless a test gives one).
        self.transport: httpx.AsyncBaseTransport = transport or LeanTransport()
        self.keys = keys or KeyStore(config.path(s.keys_db), log=log, clock=self.clock)
        self.router = Router(s, self.clock)
        self.pipeline = pipeline
        self.instructions_pipeline = instructions_pipeline(pipeline)
        self.metrics = Metrics()
        self.tracing = Tracing(s.otel, tracer_provider)
        self.abuse = Abuse(int(s.abuse.window_s * 1e6), s.abuse.max_rate_limited, s.abuse.max_blocked)
        self.limiter: RateLimiter = build_limiter(s.rate_limit)
        self.cache: CompletionCache | None = build_cache(s.cache.backend, path=config.path(s.cache.path),
                                                         redis_url=s.cache.redis_url)
        self.timeouts = {name: httpx.Timeout(p.timeout_s, connect=p.connect_timeout_s).as_dict()
                         for name, p in s.providers.items()}
        self.client: httpx.AsyncClient | None = None
        self._prompts: Any = None
        self._models: Any = None
        self._models_loaded = False
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle -------------------------------------------------------------------------------
    async def startup(self) -> None:
        """Record the configuration going live (CC8.1), open the shared client (readiness probes)."""
        self.client = httpx.AsyncClient(transport=self.transport, trust_env=False)
        if self.log is not None:
            self._record_config_live(self.log)

    def _record_config_live(self, log: AuditLog) -> None:
        """A config_change record for the gateway config, plus one per register/prompt changed since last start."""
        import hashlib

        import orjson

        from soc2ai.governance import record_register_changes

        digest = hashlib.sha256(orjson.dumps(self.config.gateway.model_dump(mode="json"),
                                             option=orjson.OPT_SORT_KEYS)).hexdigest()
        log.append(ConfigChangeRecord(
            target="gateway", action="start", actor="gateway", content_hash=f"sha256:{digest}",
            summary=f"providers={','.join(sorted(self.config.gateway.providers))} "
                    f"models={','.join(sorted(self.config.gateway.models))}"))
        try:
            record_register_changes(log, self.config, actor="gateway")
        except (ConfigError, OSError) as exc:  # a broken register must not stop inference; checks report it
            logger.warning("register changes not recorded: %s", exc)

    async def shutdown(self) -> None:
        """Finish background work; close the upstream client, limiter and cache."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.client is not None:
            await self.client.aclose()
        await self.limiter.close()
        if self.cache is not None:
            await self.cache.close()

    # --- auth ------------------------------------------------------------------------------------
    def deny(self, endpoint: str, status: int, reason: str, key: ApiKey | None, model: str | None = None,
             action: str = "request") -> None:
        """Record a denied request (access record) and count it."""
        self.metrics.auth_denied[(("endpoint", endpoint), ("status", str(status)))] += 1
        if self.log is not None:
            self.log.append(AccessRecord(action=action, decision="deny", reason=reason, endpoint=endpoint,
                                         status=status, key_id=key.id if key else None,
                                         role=key.role if key else None, model=model,
                                         user_id=key.user_id if key else None))

    def authenticate(self, headers: Any, endpoint: str, roles: tuple[str, ...]) -> ApiKey:
        """The caller's key if its role is one of ``roles``; 401/403 (recorded) otherwise."""
        auth = headers.get("authorization")
        presented = auth[7:].strip() if auth and auth[:7].lower() == "bearer " else headers.get("x-api-key")
        try:
            key = self.keys.authenticate(presented)
        except AuthError as exc:
            self.deny(endpoint, exc.status, str(exc), exc.key)  # the key when the secret matched
            raise ApiError(exc.status, str(exc), code="invalid_api_key" if exc.status == 401 else
                           "key_suspended") from exc
        if key.role not in roles:
            reason = f"role {key.role!r} may not call {endpoint}"
            self.deny(endpoint, 403, reason, key)
            raise ApiError(403, reason, code="permission_denied")
        return key

    def allowed_aliases(self, key: ApiKey) -> list[str]:
        """Model aliases this key may call (role list ∩ key list)."""
        role_models = self.settings.roles.get(key.role, [])
        return sorted(alias for alias in self.router.chains
                      if ("*" in role_models or alias in role_models) and (not key.models or alias in key.models))

    def authorize_model(self, call: Call, alias: Any, headers: Any) -> None:
        """Known alias, allowed for this key and role, allowed for the data classification."""
        if not isinstance(alias, str) or not alias:
            raise bad_request("'model' is required and must be a string", param="model")
        call.alias = alias
        key = call.key
        if self.router.chain(alias) is None:
            raise ApiError(404, f"The model {alias!r} does not exist or is not served by this gateway",
                           param="model", code="model_not_found")
        role_models = self.settings.roles.get(key.role, [])
        if not ("*" in role_models or alias in role_models) or (key.models and alias not in key.models):
            reason = f"key {key.id} (role {key.role}) may not use model {alias!r}"
            self.deny(call.endpoint, 403, reason, key, alias)
            raise ApiError(403, reason, param="model", code="model_not_allowed")
        cls = headers.get(CLASSIFICATION_HEADER) or key.classification or self.settings.default_classification
        if cls not in CLASSIFICATIONS:
            raise bad_request(f"{CLASSIFICATION_HEADER} must be one of {', '.join(CLASSIFICATIONS)}",
                              param=CLASSIFICATION_HEADER)
        # A key's own class is a floor: a client cannot declare its data less sensitive than that.
        if key.classification and CLASSIFICATIONS.index(key.classification) > CLASSIFICATIONS.index(cls):
            cls = key.classification
        call.classification = cls
        registry = self.model_registry()
        if registry is not None and not registry.allows(alias, cls):
            reason = f"model {alias!r} is not approved for {cls} data in the model register"
            self.deny(call.endpoint, 403, reason, key, alias, action="classification")
            raise ApiError(403, reason, param="model", code="classification_not_allowed")

    def model_registry(self) -> Any:
        """``registers/models.yaml`` when present (loaded once); None when there is none."""
        if not self._models_loaded:
            self._models_loaded = True
            try:
                from soc2ai.governance.models import ModelRegistry
            except ImportError:  # pragma: no cover - governance ships with soc2ai
                return None
            path = self.config.path(self.config.governance.registers_dir) / "models.yaml"
            if path.is_file():
                self._models = ModelRegistry.load(path)
        return self._models

    # --- rate limits and abuse -------------------------------------------------------------------
    async def rate_limit(self, call: Call, tokens: int) -> None:
        """Count the request; 429 with Retry-After when over a limit (recorded; may suspend the key)."""
        now = self.clock()
        tpm = self.settings.rate_limit.tokens_per_minute
        if tokens > tpm:
            # Larger than the whole minute's budget: no wait makes it fit, so no Retry-After (a client would
            # wait and fail again), and no count towards suspension (it is not a burst of requests).
            reason = f"request too large: about {tokens} tokens, more than the limit of {tpm} tokens per minute"
            self.deny(call.endpoint, 429, reason, call.key, call.alias or None, action="rate_limit")
            raise ApiError(429, f"{reason}; it cannot succeed as it is: shorten it, or raise "
                                "[gateway.rate_limit] tokens_per_minute", code="request_exceeds_rate_limit")
        try:
            decision = await self.limiter.check(call.key.id, tokens, now)
        except Exception as exc:
            # Fail closed: without a working limiter (Redis down) requests are refused, not unlimited.
            logger.error("rate limiter failed: %s: %s", type(exc).__name__, exc)
            raise ApiError(503, "rate limiter unavailable", code="rate_limiter_unavailable") from exc
        if decision.allowed:
            return
        self.metrics.rate_limited += 1
        reason = f"{decision.limit} per minute limit reached"
        self.deny(call.endpoint, 429, reason, call.key, call.alias or None, action="rate_limit")
        self.note_abuse(call.key, "rate_limited", now)
        raise ApiError(429, f"Rate limit reached: {reason}; retry after {decision.retry_after_s}s",
                       code="rate_limit_exceeded", headers={"retry-after": str(decision.retry_after_s)})

    def count_tokens(self, key_id: str, tokens: int) -> None:
        """Add output tokens to the key's budget without delaying the response."""
        if isinstance(self.limiter, MemoryLimiter):
            self.limiter.add_now(key_id, tokens, self.clock())
            return
        self.spawn(self.limiter.add_tokens(key_id, tokens, self.clock()))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` after the current request step, keeping a reference until it is done."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def note_abuse(self, key: ApiKey, kind: str, now: int) -> None:
        """Count an abuse signal; suspend the key (recorded and alerted) when it crosses the threshold."""
        if not self.abuse.note(key.id, kind, now):
            return
        a = self.settings.abuse
        until = now + int(a.suspend_s * 1e6)
        reason = f"abuse detection: too many {kind.replace('_', ' ')} requests within {a.window_s:g}s"
        self.keys.suspend(key.id, until, reason=reason)
        self.metrics.suspensions += 1
        if self.log is not None:
            self.log.append(AlertRecord(rule="gateway.abuse_suspension", severity="high",
                                        message=f"API key {key.id} suspended for {a.suspend_s:g}s: {reason}",
                                        response="key suspended automatically", user_id=key.user_id,
                                        attrs={"key_id": key.id, "until_us": until}))

    # --- screening -------------------------------------------------------------------------------
    def screen_prompt(self, call: Call, messages: list[Any], text: str, untrusted: str = "") -> Action:
        """Pre-screen a request (``text``: its :func:`messages_text`): the deployer's instructions
        (system / developer messages) with :attr:`instructions_pipeline`, the rest and ``untrusted`` (a
        template's variables, :func:`template_inputs`) with the full pipeline. The strongest action;
        raises PolicyViolation on a block (recorded by the caller)."""
        own, rest = split_instructions(messages)
        full = messages_text(rest) if own else text
        results = [self.screen(call, f"{full}\n{untrusted}" if untrusted else full, Stage.PRE)]
        if own:
            results.append(self.screen(call, messages_text(own), Stage.PRE, pipeline=self.instructions_pipeline))
        if self.pipeline is not None and (kinds := media_kinds(messages)):
            results.append(self.screen_media(call, kinds))
        return strongest([r.action for r in results if r is not None])

    def screen_media(self, call: Call, kinds: list[str]) -> Any:
        """The ``media`` policy on parts the scanners cannot read; raises PolicyViolation on a block
        (not counted as abuse: a client sending images is not probing the scanners)."""
        assert self.pipeline is not None  # noqa: S101 - only called with screening on
        return self._decided(call, screen_media(self.pipeline, kinds), Stage.PRE, abuse=False)

    def screen(self, call: Call, text: str, stage: Stage, *, pipeline: Pipeline | None = None) -> Any:
        """Run the pipeline; record decisions; raise PolicyViolation on a pre-stage block."""
        pipeline = pipeline or self.pipeline
        if pipeline is None or not text:
            return None
        return self._decided(call, pipeline.run(text, stage=stage, redact_key=None), stage)

    def _decided(self, call: Call, result: Any, stage: Stage, *, abuse: bool = True) -> Any:
        """Record a screening decision in the call (and metrics); a pre-stage block raises."""
        if result.action is not Action.ALLOW:
            call.flagged = True
            call.scans.extend(decisions_json(stage, result))
        if result.action is Action.BLOCK:
            self.metrics.blocks[(("stage", str(stage)),)] += 1
            if stage is Stage.PRE:
                if abuse:
                    self.note_abuse(call.key, "blocked", self.clock())
                raise PolicyViolation(blocked_message(result))
        return result

    def screen_definitions(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        """Pre-screen the request's tool definitions, output schemas and predicted output
        (:func:`definitions_text`) as the deployer's own text (:attr:`instructions_pipeline`): ``body``
        as it is, or a copy with them redacted; raises PolicyViolation on a block (recorded by the
        caller) or a finding that spans two strings (fail closed)."""
        pipeline = self.instructions_pipeline
        if pipeline is None or not any(k in body for k in DEFINITION_FIELDS):
            return body
        result = self.screen(call, definitions_text(body), Stage.PRE, pipeline=pipeline)
        if result is None or result.action is not Action.REDACT:
            return body
        out = redact_definitions(body, lambda t: pipeline.run(t, stage=Stage.PRE).text)
        if left_to_redact(pipeline, definitions_text(out)):
            raise PolicyViolation(SPLIT_FINDING)
        return out

    def redact_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Messages with every text part run through the pre-stage redaction (:func:`redact_messages`)."""
        assert self.pipeline is not None  # noqa: S101 - only called after a redact decision
        pipeline = self.pipeline
        out = redact_messages(messages, lambda t: pipeline.run(t, stage=Stage.PRE).text)
        if left_to_redact(pipeline, messages_text(out)):
            raise PolicyViolation(SPLIT_FINDING)  # fail closed
        return out

    def redact_output(self, content: Any) -> Any:
        """Output text (a string or a list of text parts) with the post-stage redaction applied."""
        assert self.pipeline is not None  # noqa: S101 - only called after a redact decision
        pipeline = self.pipeline
        return redact_content(content, lambda t: pipeline.run(t, stage=Stage.POST).text)

    def screen_tool_calls(self, call: Call, tool_calls: Any) -> Action:
        """Post-generation screening of the tool calls a model made (their arguments can carry data out).

        Redaction is applied in place; a call whose arguments would no longer parse after redaction is
        treated as blocked (fail closed). Returns the strongest action taken.
        """
        worst = Action.ALLOW
        for fn in tool_call_functions(tool_calls):
            res = self.screen(call, fn["arguments"], Stage.POST)
            if res is None or res.action in (Action.ALLOW, Action.FLAG):
                continue
            if res.action is Action.BLOCK or not json_still_valid(fn["arguments"], res.text):
                return Action.BLOCK
            fn["arguments"] = res.text
            worst = Action.REDACT
        return worst

    # --- templates -------------------------------------------------------------------------------
    def render_template(self, call: Call, name: Any, variables: Any) -> str:
        """Render ``template`` from the prompt registry; record its ref and content hash."""
        if not isinstance(name, str) or not name:
            raise bad_request("'template' must be a non-empty string like 'name' or 'name@v2'", param="template")
        if variables is None:
            variables = {}
        if not isinstance(variables, dict):
            raise bad_request("'variables' must be an object", param="variables")
        if self._prompts is None:
            from soc2ai.governance.prompts import PromptRegistry

            try:
                self._prompts = PromptRegistry.load(self.config.path(self.config.governance.prompts_dir))
            except ConfigError as exc:
                raise ApiError(404, f"prompt registry unavailable: {exc.reason}", param="template",
                               code="template_not_found") from exc
        try:
            rendered = self._prompts.render(name, variables)
        except ConfigError as exc:  # a template that does not render with these variables
            raise bad_request(exc.reason, param="template", code="template_error") from exc
        except UsageError as exc:  # a malformed reference ("name@latest")
            raise bad_request(str(exc), param="template", code="template_error") from exc
        call.template, call.template_hash = rendered.ref, rendered.content_hash
        text: str = rendered.text
        return text

    # --- audit -----------------------------------------------------------------------------------
    def record(self, call: Call, *, status: int, response: Any = None, provider: str | None = None,
               model_served: str | None = None, usage: dict[str, Any] | None = None, output_text: str = "",
               params: dict[str, Any] | None = None, response_id: str | None = None,
               system_fingerprint: str | None = None, finish_reason: str | None = None,
               error: str | None = None, prompt_text: str = "") -> None:
        """Exactly one inference record per call (never blocks, never raises), plus metrics."""
        latency_us = (time.perf_counter_ns() - call.t0_ns) // 1000
        self.metrics.observe(call.endpoint, status, latency_us / 1e6)
        estimated = not usage
        in_tok = int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0) if usage \
            else estimate_tokens(prompt_text)
        out_tok = int(usage.get("completion_tokens") or usage.get("output_tokens") or 0) if usage \
            else (estimate_tokens(output_text) if output_text else 0)
        if self.tracing.enabled:
            p = params or {}
            pconf = self.settings.providers.get(provider or "")
            attrs: dict[str, Any] = {
                "gen_ai.request.model": call.alias, "gen_ai.response.model": model_served,
                "provider_kind": pconf.kind if pconf else None, "gen_ai.response.id": response_id,
                "gen_ai.usage.input_tokens": in_tok, "gen_ai.usage.output_tokens": out_tok,
                "gen_ai.response.finish_reasons": [finish_reason] if finish_reason else None,
                "gen_ai.request.temperature": p.get("temperature"), "gen_ai.request.top_p": p.get("top_p"),
                "gen_ai.request.max_tokens": p.get("max_tokens"), "http.response.status_code": status,
                "soc2ai.fallback_path": call.fallback_path or None, "soc2ai.flagged": call.flagged,
            }
            if self.tracing.capture_content:
                attrs["gen_ai.input.messages"] = prompt_text
                attrs["gen_ai.output.messages"] = output_text
            self.tracing.span("embeddings" if call.endpoint == "embeddings" else "chat", call.wall_ns, attrs,
                              error=str(status) if status >= 400 else None)
        if self.log is None:
            return
        extra: dict[str, Any] = {
            "model_served": model_served, "provider": provider, "response_id": response_id,
            "system_fingerprint": system_fingerprint, "finish_reason": finish_reason, "error": error,
            "template": call.template, "template_hash": call.template_hash,
            "classification": call.classification or None, "scans": call.scans or None,
            "params": params or None, "fallback_path": call.fallback_path or None}
        # Absent rather than null: fewer values for the ledger to canonicalize on the hot path.
        self.log.log_inference(
            user_id=call.key.user_id, model_id=call.alias, prompt=call.prompt, response=response,
            latency_us=latency_us, input_tokens=in_tok, output_tokens=out_tok, flagged=call.flagged,
            tokens_estimated=estimated, endpoint=call.endpoint, key_id=call.key.id, status=status,
            **{k: v for k, v in extra.items() if v is not None})
