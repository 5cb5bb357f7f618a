"""Fixtures for gateway integration tests: two fake upstreams and a harness around a real SQLite ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from soc2ai.testing.gateway import Harness
from soc2ai.testing.upstream import FakeUpstream


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Harness]:
    """Two fake upstreams (``up`` and ``backup``) and a place for a ledger."""
    with FakeUpstream(name="up") as up, FakeUpstream(name="backup") as backup:
        h = Harness(tmp_path, up, backup)
        yield h
        for log in h.logs:
            log.close()
