"""The OpenAI-compatible gateway: ``create_app(config)`` builds the Starlette app (see docs/gateway.md).

Import from the submodules (``soc2ai.gateway.app``, ``.keys``, ``.routing``); this package imports nothing
heavy at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["create_app"]


def create_app(config: Any, **kwargs: Any) -> Starlette:
    """Build the gateway app (lazy wrapper around :func:`soc2ai.gateway.app.create_app`)."""
    from soc2ai.gateway.app import create_app as _create

    return _create(config, **kwargs)
