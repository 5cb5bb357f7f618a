"""Fixtures for governance tests: a compliant example project and the sample git repository."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from soc2ai.config import Config, load_config
from soc2ai.governance.examples import write_examples
from soc2ai.governance.testing import SampleRepo, build_sample_repo

TODAY = date(2026, 6, 1)


@pytest.fixture
def project(tmp_path: Path) -> Config:
    """A project scaffolded by write_examples (as `soc2ai init` does), with a soc2ai.toml."""
    write_examples(tmp_path, today=TODAY)
    (tmp_path / "soc2ai.toml").write_text('[project]\nname = "t"\n', encoding="utf-8")
    return load_config(tmp_path / "soc2ai.toml")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleRepo:
    """The sample repository (built once per module: tests only read it)."""
    return build_sample_repo(tmp_path_factory.mktemp("sample"))
