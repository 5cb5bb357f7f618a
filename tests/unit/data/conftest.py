"""Fixtures for the data-governance tests: a config rooted in tmp_path with real ledger keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from soc2ai.config import Config, parse_config
from soc2ai.ledger import AuditLog
from soc2ai.ledger.keys import generate_keys

BASE = """
[project]
name = "datatest"
[ledger]
store = "sqlite:///audit.db"
keys_dir = "keys"
spool_dir = "spool"
witness_dir = "witness"
batch_ms = 1
[data]
state_dir = "state"
"""


def build_config(root: Path, extra: str = "") -> Config:
    """A config under ``root`` whose ledger keys exist."""
    cfg = parse_config(BASE + extra, source=str(root / "soc2ai.toml"), root=root)
    keys = cfg.path(cfg.ledger.keys_dir)
    if not (keys / "signing.key").exists():
        generate_keys(keys, "datatest")
    return cfg


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[[str], Config]:
    """Build a config with extra TOML (connectors) under tmp_path."""
    return lambda extra="": build_config(tmp_path, extra)


@pytest.fixture
def ledger(make_config: Callable[[str], Config]) -> Iterator[AuditLog]:
    """A real, writable ledger in tmp_path."""
    log = AuditLog.open(make_config(""))
    yield log
    log.close()
