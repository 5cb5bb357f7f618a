"""Fixtures: one compliant template project per module, a local webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _readiness_project import NOW, build_template

from soc2ai.testing.receivers import HttpReceiver


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compliant project, built once per module."""
    root = tmp_path_factory.mktemp("tpl") / "demo"
    build_template(root, NOW)
    return root


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    """A local HTTP server standing in for the on-call webhook."""
    rx = HttpReceiver()
    yield rx
    rx.close()
