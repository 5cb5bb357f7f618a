"""The gateway's OpenAPI 3.0 document (served at ``/openapi.json``; fuzzed with schemathesis in tests)."""

from __future__ import annotations

from typing import Any

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["message", "type"],
    "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                   "param": {"type": "string", "nullable": True}, "code": {"type": "string", "nullable": True}}}}}
_ANTHROPIC_ERROR = {"type": "object", "required": ["type", "error"], "properties": {
    "type": {"type": "string"}, "error": {"type": "object", "properties": {
        "type": {"type": "string"}, "message": {"type": "string"}}}}}

_MESSAGE = {"type": "object", "required": ["role"], "properties": {
    "role": {"type": "string", "enum": ["system", "user", "assistant", "tool", "developer"]},
    "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object", "properties": {
        "type": {"type": "string"}, "text": {"type": "string"}}}}], "nullable": True}}}

_CHAT = {"type": "object", "required": ["model"], "properties": {
    "model": {"type": "string"},
    "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
    "template": {"type": "string", "description": "Prompt template name or name@vN (instead of messages)"},
    "variables": {"type": "object", "additionalProperties": True},
    "stream": {"type": "boolean"},
    "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "max_tokens": {"type": "integer", "minimum": 1},
    "n": {"type": "integer", "minimum": 1},
    "seed": {"type": "integer"},
    "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}}}

_JSON_SCHEMA_FORMAT = {"type": "object", "required": ["type", "schema"], "properties": {
    "type": {"type": "string", "enum": ["json_schema"]}, "schema": {"type": "object"}}}
_ANTHROPIC = {"type": "object", "required": ["model", "messages", "max_tokens"], "properties": {
    "model": {"type": "string"},
    "max_tokens": {"type": "integer", "minimum": 1},
    "system": {"type": "string"},
    "messages": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["role", "content"],
                                                           "properties": {
        "role": {"type": "string", "enum": ["user", "assistant"]},
        "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": {
            "type": "object", "required": ["type", "text"],
            "properties": {"type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}}}}]}}}},
    "temperature": {"type": "number"}, "top_p": {"type": "number"}, "top_k": {"type": "integer", "minimum": 0},
    "stop_sequences": {"type": "array", "items": {"type": "string"}},
    "stream": {"type": "boolean"},
    "output_config": {"type": "object", "description": "Only format (structured outputs); other keys are refused",
                      "properties": {"format": _JSON_SCHEMA_FORMAT}},
    "output_format": {**_JSON_SCHEMA_FORMAT, "description": "Older beta spelling of output_config.format"},
    "metadata": {"type": "object", "description": "Accepted and not forwarded"}}}

_EMBED = {"type": "object", "required": ["model", "input"], "properties": {
    "model": {"type": "string"},
    "input": {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": {"type": "string"}}]}}}


def _errors(schema: dict[str, Any]) -> dict[str, Any]:
    content = {"application/json": {"schema": schema}}
    return {str(code): {"description": desc, "content": content} for code, desc in (
        (400, "Invalid request or blocked by content policy"), (401, "Missing, unknown, revoked or expired key"),
        (403, "Role, model or data classification not allowed"), (404, "Unknown model or template"),
        (413, "Body too large"), (429, "Rate limit; see Retry-After"), (502, "Every upstream failed"),
        (503, "No upstream available"))}


def _post(summary: str, schema: dict[str, Any], error: dict[str, Any]) -> dict[str, Any]:
    return {"post": {"summary": summary, "security": [{"bearer": []}],
                     "parameters": [{"name": "X-Soc2ai-Classification", "in": "header", "required": False,
                                     "schema": {"type": "string",
                                                "enum": ["public", "internal", "confidential", "restricted"]}}],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
                     "responses": {"200": {"description": "OK (JSON, or text/event-stream when streaming)",
                                           "content": {"application/json": {"schema": {"type": "object"}}}},
                                   **_errors(error)}}}


def _get(summary: str, secured: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": "OK"}}}
    if secured:
        op["security"] = [{"bearer": []}]
        op["responses"].update({k: v for k, v in _errors(_ERROR).items() if k in ("401", "403")})
    return {"get": op}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "soc2ai gateway", "version": "1", "description":
                 "OpenAI-compatible LLM gateway with auth, rate limits, screening and a signed audit ledger."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/v1/chat/completions": _post("Chat completion (OpenAI format)", _CHAT, _ERROR),
            "/v1/messages": _post("Message (Anthropic format)", _ANTHROPIC, _ANTHROPIC_ERROR),
            "/v1/embeddings": _post("Embeddings", _EMBED, _ERROR),
            "/v1/models": _get("Model aliases this key may use"),
            "/admin/stats": _get("Gateway and ledger statistics (admin, auditor)"),
            "/admin/checkpoint": _get("The latest signed ledger checkpoint (admin, auditor)"),
            "/admin/proof/{index}": {"get": {**_get("Inclusion proof of a ledger record (admin, auditor)")["get"],
                                             "parameters": [{"name": "index", "in": "path", "required": True,
                                                             "schema": {"type": "integer", "minimum": 0}}]}},
            "/healthz": _get("Liveness", secured=False),
            "/readyz": {"get": {"summary": "Readiness: ledger store and upstream reachability",
                                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
            "/metrics": _get("Prometheus metrics", secured=False),
        },
    }
