"""SDK instrumentation without a gateway: ``instrument(client, log=..., user_id=...)``.

Supports ``openai.OpenAI``, ``openai.AsyncOpenAI``, ``anthropic.Anthropic`` and ``anthropic.AsyncAnthropic``:
``chat.completions.create`` / ``responses.create`` / ``messages.create`` and the SDKs' helpers that post
their own requests (``parse``, ``stream``, ``responses.retrieve``, ``messages.count_tokens``), with
``stream=True``, ``with_raw_response`` and ``with_streaming_response``, and OpenAI ``embeddings.create``,
get the same screening, template resolution and one audit record per call as the gateway. Ways to the
model that cannot be screened or recorded (``responses.connect``, ``realtime.connect``, the legacy
``completions.create``, and any other request that could send content, unless ``allow_unrecorded`` names
it) raise :class:`soc2ai.errors.PolicyViolation`. The client is changed in place and
returned; callers use it exactly as before, and clients derived from it with ``copy()`` /
``with_options()`` are instrumented the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from soc2ai.gateway.screening import Pipeline
    from soc2ai.instrument.core import UserId
    from soc2ai.ledger import AuditLog

__all__ = ["instrument"]

C = TypeVar("C")


def instrument(client: C, *, log: AuditLog, user_id: UserId = None, pipeline: Pipeline | None = None,
               prompts: Any = None, classification: str | None = None,
               allow_unrecorded: Iterable[str] = ()) -> C:
    """Wrap ``client`` so every model call is screened by ``pipeline`` and recorded in ``log``.

    ``user_id`` is a string or a zero-argument callable (e.g. reading the current request's user);
    ``prompts`` a :class:`soc2ai.governance.prompts.PromptRegistry` for ``template=``/``variables=`` kwargs;
    a blocked prompt raises :class:`soc2ai.errors.PolicyViolation` before anything is sent.
    Any other request that could send content (images, audio, moderations, files, batches, raw
    ``client.post``) raises it too, unless its API path starts with one of ``allow_unrecorded``
    (e.g. ``["files", "batches"]``): those calls then go out unscreened and unrecorded.
    """
    if isinstance(allow_unrecorded, str):
        raise TypeError("allow_unrecorded is a list of API paths, e.g. ['files'], not a string")
    allow = tuple(allow_unrecorded)
    from soc2ai.errors import ConfigError
    from soc2ai.instrument.core import Recorder, guard_requests, keep_on_copies

    module = type(client).__module__.split(".", 1)[0]
    wrap: Any
    if module == "openai" and hasattr(client, "chat"):
        from soc2ai.instrument._openai import instrument_openai as wrap

        provider = "azure" if "Azure" in type(client).__name__ else "openai"
    elif module == "anthropic" and hasattr(client, "messages"):
        from soc2ai.instrument._anthropic import instrument_anthropic as wrap

        provider = "anthropic"
    else:
        raise ConfigError(f"cannot instrument {type(client).__module__}.{type(client).__name__}: supported are "
                          "openai.OpenAI, openai.AsyncOpenAI, anthropic.Anthropic, anthropic.AsyncAnthropic")
    rec = Recorder(log=log, user_id=user_id, pipeline=pipeline, prompts=prompts, classification=classification,
                   provider=provider)

    def apply(c: Any) -> None:
        wrap(c, rec)
        guard_requests(c, allow)

    apply(client)
    keep_on_copies(client, apply)
    return client
