"""Classification at ingestion: label an item by its source, raise the label by its content.

``ingest(item, source=..., subject_ids=...)`` returns a :class:`LabelledItem` with the label, the
ingestion time, the retention period and a lineage id. The source gives the starting label (from the
data-source register, overridden by ``[data.classification.sources]``); scanner findings raise it (PII ->
confidential, financial/health/legal identifiers -> restricted). A label is never lowered: a caller asking
for a lower label than the rules give gets the higher one and a reason saying so.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from soc2ai.data.connectors.interface import INGESTED_FIELD, LABEL_FIELD, LINEAGE_FIELD
from soc2ai.data.settings import LABELS, DataSettings
from soc2ai.errors import PolicyViolation

if TYPE_CHECKING:
    from soc2ai.config import Config
    from soc2ai.data.lineage import LineageStore

EXPIRES_FIELD = "soc2ai_expires_at"
CATEGORIES_FIELD = "soc2ai_categories"
RANK: dict[str, int] = {label: n for n, label in enumerate(LABELS)}
ContentClassifier = Callable[[str], set[str]]


def higher(a: str, b: str) -> str:
    """The more sensitive of two labels."""
    return a if RANK[a] >= RANK[b] else b


@dataclass(frozen=True, slots=True)
class LabelledItem:
    """An item as ingested: its label and everything retention, lineage and DSAR need."""

    item: Any
    source: str
    label: str
    categories: frozenset[str]
    ingested_at: int          # epoch seconds, UTC
    retention_days: int
    lineage_id: str
    subject_ids: tuple[str, ...]
    flags: tuple[str, ...]    # e.g. "unregistered_source"
    reasons: tuple[str, ...]  # why the label is what it is

    @property
    def expires_at(self) -> int:
        """Epoch seconds after which retention deletes the item."""
        return self.ingested_at + self.retention_days * 86_400

    def metadata(self, subject_field: str = "subject_id") -> dict[str, Any]:
        """Scalar fields to store next to the item (vector metadata, dataset columns, cache values)."""
        meta: dict[str, Any] = {
            LABEL_FIELD: self.label,
            INGESTED_FIELD: self.ingested_at,
            EXPIRES_FIELD: self.expires_at,
            LINEAGE_FIELD: self.lineage_id,
            CATEGORIES_FIELD: ",".join(sorted(self.categories)),
        }
        if self.subject_ids:
            meta[subject_field] = self.subject_ids[0]
        return meta


def _subject_ids(values: Iterable[Any]) -> tuple[str, ...]:
    """Subject ids as strings: stores compare them as text (a DSAR subject is always a string), so an
    integer id stored as a number could never be found again."""
    if isinstance(values, str | bytes):
        raise PolicyViolation("subject_ids must be a list of ids, not a single string")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, str | int):
            raise PolicyViolation(f"subject id {v!r} must be a string or an integer, not {type(v).__name__}")
        text = str(v)
        if text:
            out.append(text)
    return tuple(out)


def item_text(item: Any) -> str:
    """The text a scanner should see: strings as is, mappings/lists flattened (keys and values)."""
    if isinstance(item, str):
        return item
    if isinstance(item, bytes):
        return item.decode("utf-8", "replace")
    if isinstance(item, Mapping):
        return "\n".join(f"{k}: {item_text(v)}" for k, v in item.items())
    if isinstance(item, list | tuple):
        return "\n".join(item_text(v) for v in item)
    return "" if item is None else str(item)


def scanner_classifier(config: Config) -> ContentClassifier:
    """Content categories via the scanners: the PRE-stage pipeline's findings -> ``classify_findings``."""
    from soc2ai.scan import Stage, build_pipeline, classify_findings

    pipeline = build_pipeline(config.scan)

    def classify(text: str) -> set[str]:
        return set(classify_findings(pipeline.run(text, Stage.PRE).findings))

    return classify


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What the data-source register says about one source."""

    label: str
    retention_days: int | None = None


def registered_sources(config: Config) -> dict[str, SourceInfo] | None:
    """Source id -> label and retention from the governance register; None when there is no register file.

    The register is owned by :mod:`soc2ai.governance` (``registers/data_sources.yaml``); a register that
    exists but does not validate raises its ConfigError (file, line, field).
    """
    from soc2ai.governance import SourceRegister

    path = config.path(config.governance.registers_dir) / "data_sources.yaml"
    if not path.is_file():
        return None
    register = SourceRegister.load(path)
    return {s.id: SourceInfo(str(s.classification), s.retention_days) for s in register.list()}


class Classifier:
    """Labels items by source and content; build once, call :meth:`ingest` per item."""

    def __init__(self, settings: DataSettings, *, sources: Mapping[str, str | SourceInfo] | None,
                 content: ContentClassifier | None, lineage: LineageStore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._s = settings
        reg = {k: v if isinstance(v, SourceInfo) else SourceInfo(v) for k, v in (sources or {}).items()}
        # Config entries win over the register for the label; the register's retention period stays.
        self._sources = {k: v.label for k, v in reg.items()} | dict(settings.classification.sources)
        self._source_days = {k: v.retention_days for k, v in reg.items() if v.retention_days}
        self._content = content
        self._lineage = lineage
        self._clock = clock

    @classmethod
    def from_config(cls, config: Config, *, lineage: LineageStore | None = None,
                    content: ContentClassifier | None = None,
                    clock: Callable[[], float] = time.time) -> Classifier:
        """Sources from the register, content categories from the configured scanners."""
        return cls(config.data, sources=registered_sources(config),
                   content=content if content is not None else scanner_classifier(config),
                   lineage=lineage, clock=clock)

    def retention_days(self, label: str, categories: Iterable[str], source: str | None = None) -> int:
        """Days an item is kept: the content category's period (financial/health) if any, else the label's,
        shortened to the source's registered period when that is shorter (what its terms allow)."""
        cat_days = [self._s.retention.category_days[c] for c in categories if c in self._s.retention.category_days]
        if cat_days:
            return max(cat_days)
        days = self._s.retention.label_days[label]
        limit = self._source_days.get(source or "")
        return min(days, limit) if limit else days

    def ingest(self, item: Any, *, source: str, subject_ids: Iterable[str | int] = (), label: str | None = None,
               kind: str = "document", parents: Iterable[str] = (), store: str = "", collection: str = "",
               locator: str = "") -> LabelledItem:
        """Label ``item`` (see the module doc); record it in lineage when a store is attached."""
        cls_s = self._s.classification
        flags: list[str] = []
        reasons: list[str] = []
        if source in self._sources:
            current = self._sources[source]
            reasons.append(f"source {source}: {current}")
        else:
            if cls_s.unregistered_source == "reject":
                raise PolicyViolation(f"source {source!r} is not in the data-source register")
            flags.append("unregistered_source")
            current = cls_s.default_label
            reasons.append(f"source {source} unregistered: default {current}")
        categories: set[str] = set()
        if self._content is not None:
            categories = self._content(item_text(item))
            for cat in sorted(categories):
                raised = cls_s.content.get(cat)
                if raised and RANK[raised] > RANK[current]:
                    reasons.append(f"content {cat}: raised {current} -> {raised}")
                    current = raised
        else:
            flags.append("content_not_scanned")
        if label is not None:
            if label not in RANK:
                raise PolicyViolation(f"unknown label {label!r}; expected one of {', '.join(LABELS)}")
            if RANK[label] < RANK[current]:
                reasons.append(f"requested {label} is lower than the rules give; kept {current}")
            elif RANK[label] > RANK[current]:
                reasons.append(f"requested {label}")
                current = label
        subjects = _subject_ids(subject_ids)
        now = int(self._clock())
        days = self.retention_days(current, categories, source)
        lineage_id = uuid.uuid4().hex
        if self._lineage is not None:
            self._lineage.record(kind, id=lineage_id, parents=parents, store=store, collection=collection,
                                 locator=locator, label=current, subjects=subjects,
                                 attrs={"source": source, "categories": sorted(categories), "flags": flags})
        return LabelledItem(item=item, source=source, label=current, categories=frozenset(categories),
                            ingested_at=now, retention_days=days, lineage_id=lineage_id, subject_ids=subjects,
                            flags=tuple(flags), reasons=tuple(reasons))


def ingest(item: Any, *, source: str, subject_ids: Iterable[str | int] = (), config: Config | None = None,
           label: str | None = None, lineage: LineageStore | None = None,
           content: ContentClassifier | None = None) -> LabelledItem:
    """One-shot :meth:`Classifier.ingest` with the loaded config (build a Classifier for many items)."""
    if config is None:
        from soc2ai.config import load_config

        config = load_config()
    return Classifier.from_config(config, lineage=lineage, content=content).ingest(
        item, source=source, subject_ids=subject_ids, label=label)
