"""The connector protocol: every store that can hold a data subject's data looks the same to DSAR.

A connector answers four questions for a :class:`Subject`: where is their data (``find``), what is it
(``export``), make it go away (``delete``), and prove it is gone (``verify_deleted``, which raises).
Retention and ``data check`` use two more: ``expire`` and ``census``.

Locations carry how they were found: ``subject`` (the store's subject field), ``lineage`` (recorded at
ingestion), ``discovery`` (an identifier seen in text or metadata: copies nobody tracked).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from soc2ai.errors import VerificationError

LABEL_FIELD = "soc2ai_label"
INGESTED_FIELD = "soc2ai_ingested_at"   # integer seconds since the epoch, UTC
LINEAGE_FIELD = "soc2ai_lineage_id"


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a request is about: their id, extra identifiers, and their ledger subject refs."""

    id: str
    identifiers: tuple[tuple[str, str], ...] = ()
    refs: tuple[str, ...] = ()
    # Item ids recorded by lineage, per (connector, collection).
    known: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    def needles(self) -> list[str]:
        """Strings whose presence in text or metadata ties an item to this subject (longest first)."""
        values = {self.id, *(v for _, v in self.identifiers), *self.refs}
        return sorted((v for v in values if v), key=lambda v: (-len(v), v))

    def known_ids(self, connector: str, collection: str) -> frozenset[str]:
        """Lineage-recorded ids in one collection of one connector."""
        return self.known.get((connector, collection), frozenset())


@dataclass(frozen=True, slots=True)
class Location:
    """One item of the subject's data in one store."""

    connector: str
    collection: str
    item_id: str
    how: str            # "subject" | "lineage" | "discovery" | "ledger"
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        """JSON-friendly form."""
        return {"connector": self.connector, "collection": self.collection, "item_id": self.item_id,
                "how": self.how, "detail": self.detail}


@dataclass(slots=True)
class Census:
    """What ``data check`` reports for one collection."""

    connector: str
    collection: str
    total: int
    unlabelled: int
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Expiry:
    """Retention: items whose ``soc2ai_expires_at`` (epoch seconds, set at ingestion) is before ``now_s`` go."""

    now_s: int


@runtime_checkable
class Connector(Protocol):
    """A store that can hold personal data. Implementations raise ConnectorError when unreachable."""

    name: str
    type: str
    # Problems met by the last call that did not stop it (malformed rows: file and line).
    notes: list[str]

    def find(self, subject: Subject) -> list[Location]:
        """Every item of the subject: by subject field, lineage ids, and identifier discovery."""
        ...

    def export(self, locations: Sequence[Location]) -> Iterator[dict[str, Any]]:
        """The stored content of these items, one dict per item."""
        ...

    def delete(self, subject: Subject, locations: Sequence[Location]) -> int:
        """Delete these items (idempotent: already-gone items are not an error); return how many went."""
        ...

    def verify_deleted(self, subject: Subject) -> None:
        """Raise VerificationError if anything of the subject remains."""
        ...

    def expire(self, expiry: Expiry, *, dry_run: bool) -> dict[str, int]:
        """Delete (or count, on a dry run) labelled items past retention; return counts per label."""
        ...

    def census(self) -> list[Census]:
        """Totals and unlabelled counts per collection."""
        ...

    def close(self) -> None:
        """Release clients and files."""
        ...


def verify_by_find(connector: Connector, subject: Subject) -> None:
    """Default proof of deletion: a fresh find returns nothing."""
    left = connector.find(subject)
    if left:
        sample = ", ".join(f"{loc.collection}/{loc.item_id}" for loc in left[:5])
        raise VerificationError(f"{connector.name}: {len(left)} item(s) of the subject remain ({sample})")
