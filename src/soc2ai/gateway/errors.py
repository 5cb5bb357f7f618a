"""Gateway errors and their wire shapes: OpenAI's ``{"error": {...}}`` and Anthropic's ``{"type": "error"}``.

Every failure a client can see goes through :class:`ApiError`, so no path returns a traceback.
"""

from __future__ import annotations

import orjson

_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                    500: "api_error", 502: "api_error", 503: "overloaded_error", 504: "api_error"}
_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
                 415: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error",
                 500: "api_error", 502: "api_error", 503: "api_error", 504: "api_error"}


class ApiError(Exception):
    """An error answer: HTTP status, message, OpenAI ``code``/``param``, extra headers (Retry-After)."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}

    def openai_body(self) -> bytes:
        """``{"error": {"message", "type", "param", "code"}}``."""
        return orjson.dumps({"error": {"message": self.message,
                                       "type": _OPENAI_TYPES.get(self.status, "api_error"),
                                       "param": self.param, "code": self.code}})

    def anthropic_body(self) -> bytes:
        """``{"type": "error", "error": {"type", "message"}}``."""
        return orjson.dumps({"type": "error", "error": {
            "type": _ANTHROPIC_TYPES.get(self.status, "api_error"), "message": self.message}})


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 invalid_request_error."""
    return ApiError(400, message, param=param, code=code)
