"""Full verification of a stored log: every leaf, every stored node, every checkpoint.

Checks, in one streaming pass:
- indexes are contiguous from 0 (a deleted row is named);
- each body hashes to its stored leaf hash, carries its own index, and agrees with the indexed columns
  (kind, ts, subject_ref, id) — so an edit to any column of any row is named by index;
- a pruned body (NULL) is covered by a retention receipt in the log whose cut-off is after the record;
- every stored interior node equals the recomputed one;
- every checkpoint is signed by a trusted key and its root equals the recomputed root at its size
  (so all checkpoints are mutually consistent);
- no record lies beyond the latest checkpoint (an appended, unsigned row is named);
- optionally, the log is consistent with an external checkpoint (``--against``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from soc2ai.errors import VerificationError
from soc2ai.ledger.merkle import frontier_append, frontier_root, leaf_hash
from soc2ai.ledger.note import Checkpoint, Verifier, open_checkpoint
from soc2ai.ledger.store import TILE_HEIGHT, Store


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``verify`` checked."""

    size: int
    checkpoints: int
    pruned: int
    root: bytes
    latest: Checkpoint | None
    elapsed_s: float
    against: int | None = None
    kinds: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        import base64

        return {"ok": True, "size": self.size, "checkpoints": self.checkpoints, "pruned": self.pruned,
                "root": base64.b64encode(self.root).decode(), "elapsed_s": round(self.elapsed_s, 3),
                "against": self.against, "kinds": self.kinds,
                "checkpoint": self.latest.note if self.latest else None}


def _retention_cutoffs(store: Store) -> dict[str, int]:
    """kind -> latest cut-off a retention receipt in the log declares for it ('*' = all kinds)."""
    out: dict[str, int] = {}
    for row in store.iter_leaves(kind="retention"):
        if row.body is None:
            continue
        body = orjson.loads(row.body)
        if body.get("action") != "prune":
            continue
        scope = body.get("scope") or "*"
        for kind in str(scope).split(","):
            out[kind] = max(out.get(kind, 0), int(body.get("cutoff_ts", 0)))
    return out


def verify_store(store: Store, verifiers: list[Verifier], *, against: Checkpoint | None = None,
                 progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Verify everything; raise VerificationError naming the first bad index."""
    t0 = time.perf_counter()
    cps: list[tuple[int, Checkpoint]] = []
    prev = -1
    for size, note in store.checkpoints():
        try:
            cp = open_checkpoint(note, verifiers)
        except VerificationError as exc:
            raise VerificationError(f"checkpoint at size {size}: {exc}", index=max(prev, 0)) from exc
        if cp.size != size:
            raise VerificationError(f"checkpoint row {size} holds a note for size {cp.size}", index=max(prev, 0))
        cps.append((size, cp))
        prev = size
    targets: dict[int, bytes] = {size: cp.root for size, cp in cps}
    if against is not None:
        if against.size in targets and targets[against.size] != against.root:
            raise VerificationError(f"stored checkpoint at size {against.size} differs from the external one",
                                    index=against.size - 1 if against.size else 0)
        targets.setdefault(against.size, against.root)
    stored_nodes = store.all_nodes()
    cutoffs = _retention_cutoffs(store)
    any_cutoff = cutoffs.get("*", 0)

    frontier: list[bytes] = []
    n = 0
    pruned = 0
    kinds: dict[str, int] = {}
    seen_nodes = 0

    def emit(level: int, index: int, h: bytes) -> None:
        nonlocal seen_nodes
        if level % TILE_HEIGHT:
            return
        stored = stored_nodes.get((level, index))
        if stored is not None and stored != h:
            raise VerificationError(f"stored tree node (level {level}) does not match the leaves",
                                    index=index << level)
        seen_nodes += stored is not None

    range_start = 0
    loads = orjson.loads
    for row in store.iter_leaves():
        i = row.idx
        if i != n:
            raise VerificationError("record missing (indexes are not contiguous)", index=n)
        body = row.body
        if body is None:
            pruned += 1
            if row.ts >= max(any_cutoff, cutoffs.get(row.kind, 0)):
                raise VerificationError("record body missing and no retention receipt covers it", index=i)
            lh = row.leaf_hash
        else:
            lh = leaf_hash(body)
            if lh != row.leaf_hash:
                raise VerificationError("record body does not match its leaf hash (record edited)", index=i)
            try:
                rec = loads(body)
            except orjson.JSONDecodeError as exc:
                raise VerificationError("record body is not JSON", index=i) from exc
            if rec.get("idx") != i:
                raise VerificationError(f"record carries index {rec.get('idx')} (rows moved or swapped)", index=i)
            ref = rec.get("subject_ref")
            if (rec.get("kind") != row.kind or rec.get("ts") != row.ts or rec.get("id") != row.rid
                    or (bytes.fromhex(ref) if ref else None) != row.subject_ref):
                raise VerificationError("indexed columns disagree with the signed record", index=i)
        kinds[row.kind] = kinds.get(row.kind, 0) + 1
        frontier_append(frontier, i, lh, emit)
        n += 1
        root = targets.get(n)
        if root is not None:
            if frontier_root(frontier) != root:
                raise VerificationError(
                    f"tree root at size {n} does not match its signed checkpoint; records in "
                    f"[{range_start}, {n}) were altered", index=range_start)
            range_start = n
        if progress is not None and not n % 65536:
            progress(n)
    latest = cps[-1][1] if cps else None
    if latest is None and n:
        raise VerificationError("records present but no checkpoint signs them", index=0)
    if latest is not None and n > latest.size:
        raise VerificationError("record not covered by any signed checkpoint (appended after sealing)",
                                index=latest.size)
    if latest is not None and n < latest.size:
        raise VerificationError("log is shorter than its latest checkpoint (records deleted)", index=n)
    if against is not None and against.size > n:
        raise VerificationError(f"log has {n} records, fewer than the external checkpoint's {against.size} "
                                "(truncated or rolled back)", index=n)
    if seen_nodes != len(stored_nodes):
        raise VerificationError("stored tree nodes beyond the leaves", index=n)
    head = store.head()
    if head.size != n or (latest is not None and head.checkpoint_note != latest.note):
        raise VerificationError("stored tree head does not match the log", index=min(head.size, n))
    if progress is not None:
        progress(n)
    return VerifyReport(n, len(cps), pruned, frontier_root(frontier), latest, time.perf_counter() - t0,
                        against.size if against else None, kinds)
