"""The ledger store interface: what the sealer, verifier and readers need from SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from soc2ai.ledger.note import Checkpoint


@dataclass(frozen=True, slots=True)
class Head:
    """Current tree head as stored: size, frontier (perfect-subtree roots, largest first), last checkpoint."""

    size: int
    frontier: list[bytes]
    checkpoint_note: str | None


@dataclass(frozen=True, slots=True)
class LeafRow:
    """One stored leaf. ``body`` is the canonical JSON, or None once pruned by retention."""

    idx: int
    leaf_hash: bytes
    body: bytes | None
    kind: str
    ts: int
    subject_ref: bytes | None
    rid: str


@dataclass(slots=True)
class SealBatch:
    """Everything one sealing transaction writes."""

    leaves: list[LeafRow]
    nodes: list[tuple[int, int, bytes]]
    checkpoint: Checkpoint
    frontier: list[bytes]
    subjects: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)  # (ref, lookup, wrapped key)
    payloads: list[tuple[str, bytes]] = field(default_factory=list)           # (rid, sealed payload)
    spans: list[tuple[int, bytes, int, int]] = field(default_factory=list)   # (first idx, ref, last idx, n)
    replayed: int = 0


# Stored interior nodes: perfect subtrees whose level is a multiple of this (tile height, as in C2SP
# tlog-tiles). Lower levels are recomputed from at most 2**TILE_HEIGHT stored hashes.
TILE_HEIGHT = 8


class Store(Protocol):
    """A ledger store. All methods may raise StoreError."""

    url: str
    log_id: str

    def seal(self, prepare: Callable[[Head], SealBatch]) -> SealBatch:
        """Lock the log, read its head, call ``prepare(head)`` and write its result in one transaction."""
        ...

    def head(self) -> Head: ...
    def leaf_hashes(self, start: int, end: int) -> list[bytes]: ...
    def nodes(self, level: int, start: int, end: int) -> list[bytes]: ...
    def all_nodes(self) -> dict[tuple[int, int], bytes]: ...
    def node_map(self, level: int, start: int, end: int) -> dict[int, bytes]: ...
    def count_nodes(self) -> int: ...
    def raw_leaves(self, start: int, end: int, batch: int = 20_000,
                   kind: str | None = None) -> Iterator[list[tuple[Any, ...]]]: ...
    def iter_leaves(self, start: int = 0, end: int | None = None, kind: str | None = None,
                    batch: int = 20_000) -> Iterator[LeafRow]: ...
    def retention_rows(self, end: int) -> list[tuple[int, Any, Any]]:
        """(idx, leaf_hash, body) of every retention receipt with 0 <= idx < end, in index order, unconverted."""
        ...
    def stray_indexes(self, size: int) -> tuple[int | None, int | None]:
        """The lowest negative index and the lowest index >= ``size`` holding a leaf row (None: none)."""
        ...
    def verify_rows(self, start: int, end: int) -> Iterator[tuple[Any, ...]]:
        """(idx, leaf_hash, body, kind, ts, subject_ref as lowercase hex or None, rid) in index order."""
        ...
    def checkpoints(self) -> list[tuple[int, str]]: ...
    def checkpoint_before(self, ts_us: int) -> tuple[int, str] | None:
        """(size, note) of the largest checkpoint whose last record is timestamped before ``ts_us``."""
        ...
    def checkpoint_after(self, ts_us: int) -> tuple[int, str] | None:
        """(size, note) of the smallest checkpoint whose last record is timestamped after ``ts_us``."""
        ...
    def existing_ids(self, rids: Sequence[str]) -> set[str]: ...
    def sealed_ids(self, rids: Sequence[str]) -> dict[str, tuple[int, bytes]]:
        """id -> (idx, leaf_hash) of those ids already in the log."""
        ...
    def find_rid(self, rid: str) -> int | None: ...
    def subject_keys(self, lookup: bytes) -> list[tuple[bytes, bytes]]: ...
    def subject_key_by_ref(self, ref: bytes) -> bytes | None: ...
    def payload(self, rid: str) -> bytes | None: ...
    def delete_subject(self, lookup: bytes) -> list[bytes]: ...
    def prune(self, before_ts: int, kinds: Sequence[str] | None) -> int: ...
    def count_by_kind(self) -> dict[str, int]: ...
    def count_subject_records(self, refs: Sequence[bytes]) -> int: ...
    def pruned_count(self) -> int: ...
    def max_pruned_idx(self) -> int: ...
    def compact(self) -> list[str]:
        """Make deletions physical; return where deleted bytes may still remain (empty: nowhere known)."""
        ...
    def close(self) -> None: ...
