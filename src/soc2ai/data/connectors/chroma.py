"""Chroma (embedded, persistent): collections of embeddings with documents and metadata.

Opened with telemetry off and no embedding function (we never embed: callers supply embeddings, and
Chroma's default embedder would download a model). Find = metadata subject field and identifier fields
(exact), lineage ids, and a case-insensitive ``$regex`` over documents for each identifier (confirmed as
whole tokens).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from soc2ai.data.connectors._match import first_hit
from soc2ai.data.connectors.interface import LABEL_FIELD, Census, Expiry, Location, Subject, verify_by_find
from soc2ai.data.settings import LABELS, ConnectorSettings
from soc2ai.errors import ConnectorError

EXPIRES_FIELD = "soc2ai_expires_at"
_REGEX_META = set("\\.+*?()|[]{}^$#&-~")


def regex_literal(value: str) -> str:
    """``value`` as a literal for Chroma's (Rust) regex syntax, which rejects escapes of non-meta characters."""
    return "".join("\\" + ch if ch in _REGEX_META else ch for ch in value)


def open_client(path: Path) -> Any:
    """A persistent Chroma client with telemetry disabled."""
    try:
        import chromadb
        from chromadb.config import Settings
    except ImportError as exc:  # pragma: no cover - extra installed in CI
        raise ConnectorError("the Chroma connector needs the 'vectors' extra") from exc
    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))


class ChromaConnector:
    """Every (or the listed) collection of one persistent Chroma directory."""

    type = "chroma"

    def __init__(self, settings: ConnectorSettings, *, root: Path, client: Any = None) -> None:
        self.name = settings.name
        self._s = settings
        path = (root / (settings.path or "")).resolve()
        if client is None and not path.is_dir():
            raise ConnectorError(f"{self.name}: Chroma directory {path} does not exist")
        try:
            self._client = client or open_client(path)
            self._batch = int(self._client.get_max_batch_size())
        except Exception as exc:
            raise ConnectorError(f"{self.name}: cannot open Chroma at {path} ({exc})") from exc
        self.notes: list[str] = []

    def _collections(self) -> list[Any]:
        names = self._s.collections or [c.name for c in self._client.list_collections()]
        out = []
        for name in names:
            try:
                out.append(self._client.get_collection(name, embedding_function=None))
            except Exception as exc:
                raise ConnectorError(f"{self.name}: collection {name!r}: {exc}") from exc
        return out

    def _where_exact(self, subject: Subject) -> dict[str, Any]:
        ids = [subject.id, *subject.refs]
        clauses: list[dict[str, Any]] = [{self._s.subject_field: {"$in": ids}}]
        idents = [v for _, v in subject.identifiers]
        if self._s.discovery and idents:
            clauses += [{f: {"$in": idents}} for f in self._s.identifier_fields]
        return clauses[0] if len(clauses) == 1 else {"$or": clauses}

    def _containing(self, col: Any, needle: str) -> list[Any]:
        """Documents containing ``needle`` in any letter case (candidates, confirmed by the caller)."""
        try:
            return [col.get(where_document={"$regex": "(?i)" + regex_literal(needle)}, include=["documents"])]
        except Exception:  # Chroma before 1.0 has no $regex: its common case forms with $contains
            forms = sorted({needle, needle.lower(), needle.upper(), needle.title()})
            return [col.get(where_document={"$contains": f}, include=["documents"]) for f in forms]

    def find(self, subject: Subject) -> list[Location]:
        """Items by subject/identifier metadata, lineage ids, and identifiers in documents."""
        self.notes = []
        out: list[Location] = []
        for col in self._collections():
            found: dict[str, str] = {}
            for rid in col.get(where=self._where_exact(subject), include=[])["ids"]:
                found[rid] = "subject"
            known = sorted(subject.known_ids(self.name, col.name))
            for i in range(0, len(known), self._batch):
                for rid in col.get(ids=known[i:i + self._batch], include=[])["ids"]:
                    found.setdefault(rid, "lineage")
            if self._s.discovery:
                needles = subject.needles()
                for needle in needles:
                    for got in self._containing(col, needle):
                        for rid, doc in zip(got["ids"], got["documents"] or [], strict=False):
                            if rid not in found and first_hit(doc or "", [needle]):
                                found[rid] = "discovery"
            out += [Location(self.name, col.name, rid, how) for rid, how in sorted(found.items())]
        return out

    def export(self, locations: Sequence[Location]) -> Iterator[dict[str, Any]]:
        """Documents and metadata (embeddings left out: derived, not readable)."""
        by_col: dict[str, list[str]] = {}
        for loc in locations:
            by_col.setdefault(loc.collection, []).append(loc.item_id)
        for name, ids in by_col.items():
            col = self._client.get_collection(name, embedding_function=None)
            got = col.get(ids=ids, include=["documents", "metadatas"])
            for rid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                yield {"collection": name, "id": rid, "document": doc, "metadata": meta}

    def delete(self, subject: Subject, locations: Sequence[Location]) -> int:
        """Delete by id, per collection, in batches Chroma accepts."""
        by_col: dict[str, list[str]] = {}
        for loc in locations:
            by_col.setdefault(loc.collection, []).append(loc.item_id)
        n = 0
        for name, ids in by_col.items():
            col = self._client.get_collection(name, embedding_function=None)
            for i in range(0, len(ids), self._batch):
                chunk = ids[i:i + self._batch]
                present = col.get(ids=chunk, include=[])["ids"]
                if present:
                    col.delete(ids=present)
                    n += len(present)
        return n

    def verify_deleted(self, subject: Subject) -> None:
        """Raise if a fresh find still sees items of the subject."""
        verify_by_find(self, subject)

    def expire(self, expiry: Expiry, *, dry_run: bool) -> dict[str, int]:
        """Delete items whose ``soc2ai_expires_at`` metadata has passed."""
        counts: dict[str, int] = {}
        for col in self._collections():
            got = col.get(where={EXPIRES_FIELD: {"$lt": expiry.now_s}}, include=["metadatas"])
            for meta in got["metadatas"] or []:
                label = str((meta or {}).get(LABEL_FIELD) or "unlabelled")
                counts[label] = counts.get(label, 0) + 1
            if not dry_run:
                ids = got["ids"]
                for i in range(0, len(ids), self._batch):
                    col.delete(ids=ids[i:i + self._batch])
        return counts

    def census(self) -> list[Census]:
        """Items and unlabelled items per collection."""
        out = []
        for col in self._collections():
            total = col.count()
            labelled = len(col.get(where={LABEL_FIELD: {"$in": list(LABELS)}}, include=[])["ids"])
            out.append(Census(self.name, col.name, total, total - labelled))
        return out

    def close(self) -> None:
        """Chroma's embedded client has no close; drop the reference."""
        self._client = None
