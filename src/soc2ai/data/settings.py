"""``[data]`` section of soc2ai.toml: classification rules, retention per label, connectors, lineage store.

Example::

    [data.classification]
    default_label = "internal"
    unregistered_source = "flag"          # or "reject"
    [data.classification.sources]
    crm = "confidential"

    [data.retention]
    ledger_days = 90                      # inference logs: at least 90 days
    [data.retention.label_days]
    restricted = 365

    [[data.connectors]]
    name = "vectors"
    type = "chroma"
    path = "data/chroma"
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from soc2ai._validation import LocatedError

Label = Literal["public", "internal", "confidential", "restricted"]
LABELS: tuple[Label, ...] = ("public", "internal", "confidential", "restricted")
ConnectorType = Literal["postgres", "chroma", "qdrant", "lancedb", "redis", "dataset", "files", "sqlite_cache"]
# The shortest time inference log bodies may be kept (CC7.2 investigations look back this far): the
# config, `soc2ai log prune --days` and the readiness check all hold to it.
INFERENCE_FLOOR_DAYS = 90


class ClassificationSettings(BaseModel):
    """How ``soc2ai.data.ingest`` labels an item: by source, then raised by content."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Label of a registered source that names none; also the floor of every item.
    default_label: Label = "internal"
    # An item from a source missing from the data-source register: "flag" labels it and flags it
    # (the flag is returned and counted by `data check`); "reject" raises.
    unregistered_source: Literal["flag", "reject"] = "flag"
    # Source name -> label, applied on top of the governance register (config wins when both name it).
    sources: dict[str, Label] = Field(default_factory=dict)
    # Content category (from the scanners' classify_findings) -> the label it raises the item to.
    content: dict[str, Label] = Field(default_factory=lambda: {  # type: ignore[arg-type]
        "pii": "confidential",
        "secret": "restricted",
        "financial": "restricted",
        "health": "restricted",
        "legal": "restricted",
    })


class RetentionSettings(BaseModel):
    """How long data is kept, per label; the ledger's inference bodies have their own floor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label_days: dict[str, int] = Field(default_factory=lambda: {
        "public": 1095,
        "internal": 730,
        "confidential": 365,
        "restricted": 365,
    })
    # Categories with a legal retention period of their own (financial/health records: 12 months here);
    # an item carrying one of them keeps exactly this many days, whatever its label says.
    category_days: dict[str, int] = Field(default_factory=lambda: {"financial": 365, "health": 365})
    # Inference log bodies in the ledger are pruned after this many days (hashes and proofs stay).
    ledger_days: int = Field(default=365, ge=INFERENCE_FLOOR_DAYS)
    # Items without a label are never deleted by retention (we cannot know their policy); `data check`
    # reports them so someone labels them.

    @field_validator("label_days", "category_days")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for key, days in value.items():
            if days < 1:
                raise LocatedError("retention must be at least 1 day", (key,))
        return value

    @model_validator(mode="after")
    def _every_label(self) -> RetentionSettings:
        # LocatedError: name data.retention.label_days(.<label>), not the whole [data.retention].
        for key in self.label_days:
            if key not in LABELS:
                raise LocatedError(f"unknown label {key!r}; labels are {', '.join(LABELS)}", ("label_days", key))
        missing = [lbl for lbl in LABELS if lbl not in self.label_days]
        if missing:
            raise LocatedError(f"must name every label; missing {', '.join(missing)}", ("label_days",))
        return self


class ConnectorSettings(BaseModel):
    """One store holding personal data. Which fields apply depends on ``type``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    type: ConnectorType
    path: str | None = None          # chroma, qdrant, lancedb (directory); dataset (file or dir); files
    url: str | None = None           # postgres, redis
    table: str = "soc2ai_embeddings"  # postgres table
    collections: list[str] = Field(default_factory=list)  # chroma/qdrant/lancedb: empty = all
    prefix: str = "soc2ai:cache:"    # redis cache keys
    subject_field: str = "subject_id"
    text_field: str = "document"
    # Metadata fields also compared (exactly) with the subject's identifiers in the discovery scan.
    identifier_fields: list[str] = Field(default_factory=lambda: ["email", "phone", "user_id", "user"])
    discovery: bool = True           # scan text and metadata for identifiers, not only the subject field

    @model_validator(mode="after")
    def _needs(self) -> ConnectorSettings:
        # LocatedError: the error names the field (data.connectors.<n>.url), not only the connector.
        if self.type in ("postgres", "redis") and not self.url:
            raise LocatedError(f"connector {self.name!r} of type {self.type} needs url", ("url",))
        if self.type in ("chroma", "qdrant", "lancedb", "dataset", "files", "sqlite_cache") and not self.path:
            raise LocatedError(f"connector {self.name!r} of type {self.type} needs path", ("path",))
        if self.url and not self.url.startswith(("postgresql://", "postgres://", "redis://", "rediss://",
                                                 "unix://")):
            raise LocatedError(f"connector {self.name!r}: unsupported url scheme", ("url",))
        return self


class DataSettings(BaseModel):
    """Settings for soc2ai.data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    classification: ClassificationSettings = ClassificationSettings()
    retention: RetentionSettings = RetentionSettings()
    connectors: list[ConnectorSettings] = Field(default_factory=list)
    # The ledger is always searched and forgotten in a DSAR unless this is false.
    include_ledger: bool = True
    # The gateway's completion cache ([gateway.cache], sqlite or redis) joins every DSAR and retention
    # run as connector "gateway-cache" unless this is false.
    include_gateway_cache: bool = True
    # "" = next to the ledger: sqlite:///<ledger dir>/lineage.db, or the ledger's PostgreSQL database.
    lineage_store: str = ""
    # Journals of running deletions and export bundles (relative to soc2ai.toml).
    state_dir: str = ".soc2ai/data"

    @field_validator("lineage_store")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("lineage_store must be sqlite:///PATH or postgresql://...")
        return value

    @field_validator("connectors")
    @classmethod
    def _unique_names(cls, value: list[ConnectorSettings]) -> list[ConnectorSettings]:
        # LocatedError: name data.connectors.<n>.name of the offending entry, not all of [data].
        seen: set[str] = set()
        for n, connector in enumerate(value):
            if connector.name == "ledger":
                raise LocatedError("connector name 'ledger' is reserved for the ledger", (n, "name"))
            if connector.name in seen:
                raise LocatedError(f"duplicate connector name {connector.name!r} (names must be unique)",
                                   (n, "name"))
            seen.add(connector.name)
        return value
