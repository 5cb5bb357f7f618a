"""Fixtures for the SDK instrumentation suites."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from soc2ai.ledger import AuditLog
from soc2ai.testing.gateway import Harness
from soc2ai.testing.upstream import FakeUpstream


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeUpstream, AuditLog, Harness]]:
    """A fake OpenAI upstream, a real ledger, and a harness (for an Anthropic-format endpoint)."""
    with FakeUpstream(name="up") as up, FakeUpstream(name="backup") as backup:
        h = Harness(tmp_path, up, backup)
        log = h.log(h.config())
        yield up, log, h
        for lg in h.logs:
            lg.close()


@pytest.fixture
def anthropic_endpoint() -> Callable[[Harness], tuple[Any, str]]:
    """``make(harness) -> (app, secret)``: a gateway whose /v1/messages serves as an Anthropic-format
    upstream for the anthropic SDK."""
    def make(h: Harness) -> tuple[Any, str]:
        app, _log, keys = h.app(h.config())
        secret, _ = keys.create(role="inference", user_id="gw")
        return app, secret

    return make
