"""The Starlette app factory: ``create_app(config)`` — nothing happens at import time.

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/embeddings``, ``GET /v1/models``, ``POST /v1/messages``
(Anthropic format), ``GET /admin/stats``, ``/admin/checkpoint``, ``/admin/proof/{index}`` (admin, auditor), ``/healthz``, ``/readyz``, ``/metrics``,
``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from soc2ai.errors import Soc2AIError
from soc2ai.gateway.core import Gateway
from soc2ai.gateway.errors import ApiError
from soc2ai.gateway.handlers import JSON, ChatHandler, EmbeddingsHandler, error_response
from soc2ai.gateway.metrics import ledger_gauges
from soc2ai.gateway.openapi import openapi_document
from soc2ai.ledger.records import AccessRecord

if TYPE_CHECKING:
    from soc2ai.config import Config
    from soc2ai.gateway.keys import KeyStore
    from soc2ai.gateway.screening import Pipeline
    from soc2ai.ledger import AuditLog

_DEFAULT = object()


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON)


def create_app(config: Config, *, log: AuditLog | None = None, transport: httpx.AsyncBaseTransport | None = None,
               clock: Callable[[], int] | None = None, pipeline: Pipeline | object | None = _DEFAULT,
               keys: KeyStore | None = None, tracer_provider: Any = None) -> Starlette:
    """Build the gateway app for ``config``.

    ``log`` is the audit log (opened from the config on startup when omitted, and closed on shutdown);
    ``transport`` replaces the upstream HTTP transport (tests); ``clock`` returns microseconds;
    ``pipeline`` is the screening pipeline (default: ``soc2ai.scan`` from ``[scan]``, None disables);
    ``tracer_provider`` enables OpenTelemetry spans with that provider.
    """
    from soc2ai.gateway.screening import build_default_pipeline

    pipe: Pipeline | None = build_default_pipeline(config) if pipeline is _DEFAULT else pipeline  # type: ignore[assignment]
    owns_log = log is None
    gw = Gateway(config, log=log, transport=transport, clock=clock, pipeline=pipe, keys=keys,
                 tracer_provider=tracer_provider)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if gw.log is None:
            from soc2ai.ledger import AuditLog

            gw.log = AuditLog.open(config)
            gw.keys.log = gw.log
        await gw.startup()
        try:
            yield
        finally:
            await gw.shutdown()
            if owns_log and gw.log is not None:
                gw.log.close()

    async def models(request: Request) -> Response:
        try:
            key = gw.authenticate(request.headers, "models", ("inference", "admin"))
        except ApiError as exc:
            return error_response(exc, "openai")
        return _json({"object": "list", "data": [
            {"id": alias, "object": "model", "created": 0, "owned_by": "soc2ai"}
            for alias in gw.allowed_aliases(key)]})

    async def admin_stats(request: Request) -> Response:
        try:
            key = gw.authenticate(request.headers, "admin.stats", ("admin", "auditor"))
        except ApiError as exc:
            return error_response(exc, "openai")
        if gw.log is not None:
            gw.log.append(AccessRecord(action="admin.stats", decision="allow", key_id=key.id, role=key.role,
                                       endpoint="admin.stats", status=200, user_id=key.user_id))
        ledger = await asyncio.to_thread(gw.log.stats) if gw.log is not None else {}
        m = gw.metrics
        return _json({"requests": {f"{dict(k)['endpoint']} {dict(k)['status']}": v for k, v in m.requests.items()},
                      "rate_limited": m.rate_limited, "suspensions": m.suspensions,
                      "fallbacks": sum(m.fallbacks.values()), "blocked": sum(m.blocks.values()),
                      "breakers": {p: b.state for p, b in gw.router.breakers.items()},
                      "ledger": {k: v for k, v in ledger.items() if k != "last_caller_error"}})

    async def ledger_read(request: Request, action: str) -> tuple[Any, Response | None]:
        """Authenticate an admin/auditor read of the ledger and leave an access record."""
        try:
            key = gw.authenticate(request.headers, action, ("admin", "auditor"))
        except ApiError as exc:
            return None, error_response(exc, "openai")
        if gw.log is not None:
            gw.log.append(AccessRecord(action=action, decision="allow", key_id=key.id, role=key.role,
                                       endpoint=action, status=200, user_id=key.user_id))
        return key, None

    async def checkpoint(request: Request) -> Response:
        _, denied = await ledger_read(request, "admin.checkpoint")
        if denied is not None:
            return denied
        assert gw.log is not None  # noqa: S101 - lifespan opened it
        try:
            cp = await asyncio.to_thread(gw.log.checkpoint)
        except Soc2AIError as exc:
            return error_response(ApiError(404, str(exc), code="no_checkpoint"), "openai")
        return _json({"origin": cp.origin, "size": cp.size, "root": base64.b64encode(cp.root).decode(),
                      "note": cp.note})

    async def proof(request: Request) -> Response:
        _, denied = await ledger_read(request, "admin.proof")
        if denied is not None:
            return denied
        assert gw.log is not None  # noqa: S101 - lifespan opened it
        raw = request.path_params.get("index", "")
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):  # "²".isdigit() is true; int64 at most
            return error_response(ApiError(400, "index must be a non-negative integer", param="index"), "openai")
        try:
            bundle = await asyncio.to_thread(lambda: gw.log.prove(int(raw)).to_json())  # type: ignore[union-attr]
        except Soc2AIError as exc:
            return error_response(ApiError(404, str(exc), code="no_such_record"), "openai")
        return _json(bundle)

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks: dict[str, Any] = {}
        ok = True
        if gw.log is not None:
            stats = await asyncio.to_thread(gw.log.stats)
            checks["ledger"] = "degraded" if stats.get("degraded") else "ok"
            ok = ok and not stats.get("degraded")
        assert gw.client is not None  # noqa: S101 - lifespan ran

        async def probe(name: str, url: str) -> tuple[str, bool]:
            try:
                await gw.client.get(url, timeout=2.0)  # type: ignore[union-attr]
                return name, True
            except httpx.HTTPError:
                return name, False

        results = dict(await asyncio.gather(*(probe(n, p.base_url) for n, p in gw.settings.providers.items())))
        checks["providers"] = {n: "reachable" if up else "unreachable" for n, up in results.items()}
        for alias, chain in gw.router.chains.items():
            if not any(results.get(t.provider) for t in chain):
                ok = False
                checks.setdefault("aliases_without_provider", []).append(alias)
        return _json({"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503)

    async def metrics(request: Request) -> Response:
        gauges = ledger_gauges(await asyncio.to_thread(gw.log.stats)) if gw.log is not None else {}
        for name, b in gw.router.breakers.items():
            gauges[f'soc2ai_gateway_breaker_open{{provider="{name}"}}'] = (
                "1 while the provider's circuit breaker is open.", float(b.state != "closed"))
        return Response(gw.metrics.render(gauges), media_type="text/plain; version=0.0.4; charset=utf-8")

    doc = orjson.dumps(openapi_document())

    async def openapi(request: Request) -> Response:
        return Response(doc, media_type=JSON)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = {404: "unknown endpoint", 405: "method not allowed"}.get(status, "request failed")
        shape = "anthropic" if request.url.path.startswith("/v1/messages") else "openai"
        return error_response(ApiError(status, f"{message}: {request.method} {request.url.path}"), shape)

    routes = [
        Route("/v1/chat/completions", ChatHandler(gw, "openai").handle, methods=["POST"]),
        Route("/v1/messages", ChatHandler(gw, "anthropic").handle, methods=["POST"]),
        Route("/v1/embeddings", EmbeddingsHandler(gw).handle, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/admin/stats", admin_stats, methods=["GET"]),
        Route("/admin/checkpoint", checkpoint, methods=["GET"]),
        Route("/admin/proof/{index}", proof, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error,
                                                                          Exception: http_error})
    app.state.gateway = gw
    app.state.started = time.time()
    return app
