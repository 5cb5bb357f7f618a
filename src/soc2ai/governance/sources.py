"""The data-source register: where training and RAG data comes from, and on what terms (C1.1, CC9.2).

``registers/data_sources.yaml``::

    sources:
      - id: support-tickets
        name: Zendesk support tickets
        origin: internal            # internal | customer | vendor | purchased | scraped | public
        owner: support-lead@example.com
        classification: confidential
        pii_expected: true
        used_for: [rag]
        retention_days: 365
        dpa: {signed: 2025-06-01, reference: legal/zendesk-dpa.pdf}
        licence: null
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from soc2ai.errors import ConfigError
from soc2ai.governance._yaml import RegisterModel, read_yaml, unique, validate
from soc2ai.governance.checks import FAIL, OK, WARN, CheckResult
from soc2ai.governance.models import Classification
from soc2ai.governance.vendors import Dpa

# Origins where someone else's terms govern the data: a DPA or a licence must be on file.
EXTERNAL_ORIGINS = frozenset({"customer", "vendor", "purchased", "scraped", "public"})


class DataSource(RegisterModel):
    """One source of training or retrieval data."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
    name: str = Field(min_length=1)
    origin: Literal["internal", "customer", "vendor", "purchased", "scraped", "public"]
    owner: str = Field(min_length=1)
    classification: Classification
    pii_expected: bool
    used_for: list[Literal["training", "fine-tuning", "rag", "evaluation"]] = Field(min_length=1)
    retention_days: int | None = Field(default=None, gt=0)
    dpa: Dpa | None = None
    licence: str | None = None
    description: str = ""


class SourcesFile(RegisterModel):
    """The whole ``data_sources.yaml``."""

    sources: list[DataSource]

    @field_validator("sources")
    @classmethod
    def _unique(cls, value: list[DataSource]) -> list[DataSource]:
        unique(value, "id", "source id")
        return value


class SourceRegister:
    """Loaded register; ingestion asks it whether a source is registered."""

    def __init__(self, path: Path, sources: list[DataSource]) -> None:
        self.path = path
        self._sources = {s.id: s for s in sources}

    @classmethod
    def load(cls, path: Path, *, today: date | None = None) -> SourceRegister:
        """Read and validate; missing or empty -> ConfigError."""
        if not path.is_file():
            raise ConfigError("data-source register not found (run `soc2ai init`)", file=str(path))
        data, node = read_yaml(path)
        if data is None:
            raise ConfigError("data-source register is empty", file=str(path), line=1, field="sources")
        return cls(path, validate(SourcesFile, data, node, str(path), today=today).sources)

    def list(self) -> list[DataSource]:
        """Sources in file order."""
        return list(self._sources.values())

    def get(self, source_id: str) -> DataSource | None:
        """The source with this id, or None."""
        return self._sources.get(source_id)

    def __contains__(self, source_id: object) -> bool:
        return source_id in self._sources


def check_sources(config: Any, *, today: date | None = None) -> list[CheckResult]:
    """The ``sources check`` lines: register present and non-empty; external data has a DPA or licence."""
    from soc2ai.governance._paths import paths

    p = paths(config)
    try:
        register = SourceRegister.load(p.sources, today=today)
    except ConfigError as exc:
        return [
            CheckResult("sources.register", "C1.1", FAIL, str(exc), "fix the register, or run `soc2ai init`")
        ]
    if not register.list():
        return [
            CheckResult(
                "sources.register",
                "C1.1",
                FAIL,
                f"{p.sources}: no data sources registered",
                "register every source of training and RAG data",
            )
        ]
    results = [CheckResult("sources.register", "C1.1", OK, f"{len(register.list())} data sources registered")]
    for s in register.list():
        if s.origin in EXTERNAL_ORIGINS and s.dpa is None and not s.licence:
            results.append(
                CheckResult(
                    "sources.terms",
                    "CC9.2",
                    WARN,
                    f"{s.id}: {s.origin} data without a DPA or licence",
                    "record the DPA (customer/vendor data) or the licence (purchased/public)",
                )
            )
        if s.pii_expected and s.retention_days is None:
            results.append(
                CheckResult(
                    "sources.retention",
                    "C1.2",
                    WARN,
                    f"{s.id}: personal data with no retention period",
                    "set `retention_days`",
                )
            )
    return results
