"""Full verification of a stored log: every leaf, every stored node, every checkpoint.

Checks:
- indexes are contiguous from 0 (a deleted row is named);
- each body hashes to its stored leaf hash, carries its own index, and agrees with the indexed columns
  (kind, ts, subject_ref, id) — so an edit to any column of any row is named by index;
- a pruned body (NULL) is covered by a retention receipt in the log whose cut-off is after the record;
- every stored interior node equals the recomputed one;
- every checkpoint is signed by a trusted key and its root equals the recomputed root at its size
  (so all checkpoints are mutually consistent);
- no record lies beyond the latest checkpoint (an appended, unsigned row is named);
- optionally, the log is consistent with an external checkpoint (``--against``).

Large logs are verified in aligned chunks of 2**CHUNK_LEVEL leaves by worker processes (one per core).
Each chunk reports its subtree root and, for every checkpoint inside it, the chunk-local frontier at that
size; the parent folds those with the frontier of the preceding chunks, so per-record work is parallel
and the parent only does a few hashes per chunk and per checkpoint.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import orjson

from soc2ai.errors import VerificationError
from soc2ai.ledger.merkle import LEAF_PREFIX, frontier_append, frontier_root, leaf_hash
from soc2ai.ledger.note import Checkpoint, Verifier, open_checkpoint
from soc2ai.ledger.store import TILE_HEIGHT, Head, Store, open_store
from soc2ai.ledger.store.sql import as_bytes

CHUNK_LEVEL = 15
CHUNK = 1 << CHUNK_LEVEL
PARALLEL_MIN = 2 * CHUNK  # below this, starting workers costs more than it saves


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
        return {"ok": True, "size": self.size, "checkpoints": self.checkpoints, "pruned": self.pruned,
                "root": base64.b64encode(self.root).decode(), "elapsed_s": round(self.elapsed_s, 3),
                "against": self.against, "kinds": self.kinds,
                "checkpoint": self.latest.note if self.latest else None}


@dataclass(slots=True)
class _ChunkResult:
    start: int
    count: int
    frontier: list[bytes]                       # chunk-local frontier after the last leaf read
    at_sizes: dict[int, list[bytes]]            # global size -> chunk-local frontier at that size
    pruned: int
    kinds: dict[str, int]
    nodes_seen: int
    error: tuple[int, str] | None


def _receipt_int(value: Any) -> int:
    """An integer field of a receipt (canonical JSON writes integers beyond 2**53 as decimal strings)."""
    if type(value) is int:
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise ValueError(f"not an integer: {value!r}")


def _retention_cutoffs(store: Store, end: int) -> dict[str, int]:
    """From the log's retention receipts: kind -> latest cut-off ('*' = all kinds), plus ``#max_idx`` (the
    highest index a prune covered), ``#count`` (bodies pruned in all) and ``#edited`` (the first receipt
    whose body does not match its leaf hash, -1 if none).

    Only receipts that can be verified are trusted: rows inside the log [0, end) whose body hashes to
    their leaf hash (which the chunk pass then ties to the signed roots). A row at a negative index or
    past the head, or an edited one, covers nothing, so it cannot excuse a missing body.
    """
    out: dict[str, int] = {"#max_idx": -1, "#count": 0, "#edited": -1}
    for idx, lh, raw in store.retention_rows(end):
        if raw is None:
            continue  # a receipt pruned by a later one; the later one covers it
        body_b = as_bytes(raw)
        if leaf_hash(body_b) != as_bytes(lh):
            if out["#edited"] < 0:
                out["#edited"] = idx  # the chunk pass names it (or a missing body before it)
            continue
        try:
            body = orjson.loads(body_b)
            if not isinstance(body, dict) or body.get("action") != "prune" or body.get("idx") != idx:
                continue
            cutoff = _receipt_int(body.get("cutoff_ts", 0))
            count = _receipt_int(body.get("count", 0))
            attrs = body.get("attrs") or {}
            max_idx = attrs.get("max_idx") if isinstance(attrs, dict) else None
            scope = str(body.get("scope") or "*")
        except (orjson.JSONDecodeError, ValueError):
            continue  # a signed but malformed receipt covers nothing; a body it was meant to cover is named
        for kind in scope.split(","):
            out[kind] = max(out.get(kind, 0), cutoff)
        out["#count"] += count
        # A receipt covers nothing logged after it.
        out["#max_idx"] = max(out["#max_idx"], min(max_idx, idx) if type(max_idx) is int else idx)
    return out


def _check_chunk(store: Store, start: int, end: int, sizes: list[int], cutoffs: dict[str, int]) -> _ChunkResult:
    """Verify leaves [start, end) of one aligned chunk (runs in a worker process or inline)."""
    frontier: list[bytes] = []
    at_sizes: dict[int, list[bytes]] = {}
    want = set(sizes)
    kinds: dict[str, int] = {}
    pruned = 0
    any_cut = cutoffs.get("*", 0)
    stored = store.node_map(TILE_HEIGHT, start >> TILE_HEIGHT, (end + (1 << TILE_HEIGHT) - 1) >> TILE_HEIGHT)
    nodes_seen = 0
    error: tuple[int, str] | None = None
    loads = orjson.loads
    sha = hashlib.sha256
    leaf_prefix = LEAF_PREFIX
    n = start
    for idx, lh_stored, body, kind, ts, ref_hex, rid in store.verify_rows(start, end):
        if idx != n:
            error = (n, "record missing (indexes are not contiguous)")
            break
        if type(lh_stored) is not bytes:  # a hand-edited row may hold TEXT or a number
            lh_stored = as_bytes(lh_stored)
        if body is None:
            pruned += 1
            if type(ts) is not int:  # nothing else checks the ts column of a pruned row
                error = (n, "record body missing and its ts column is not an integer (row edited)")
                break
            if ts >= max(any_cut, cutoffs.get(kind, 0)) or idx > cutoffs["#max_idx"]:
                edited = cutoffs.get("#edited", -1)
                error = (n, "record body missing and no retention receipt covers it"
                         + (f" (the retention receipt at index {edited} does not match its leaf hash)"
                            if edited >= 0 else ""))
                break
            h = lh_stored
        else:
            if type(body) is not bytes:
                body = as_bytes(body)
            hasher = leaf_prefix.copy()
            hasher.update(body)
            h = hasher.digest()
            # The common case inline (this loop is verify's hot path); _why_bad says what is wrong.
            try:
                get = loads(body).get
                ok = (h == lh_stored and get("idx") == idx and get("kind") == kind and get("ts") == ts
                      and get("id") == rid and get("subject_ref") == ref_hex)
            except (orjson.JSONDecodeError, AttributeError):
                ok = False
            if not ok:
                error = (n, _why_bad(h, lh_stored, body, idx))
                break
        kinds[kind] = kinds.get(kind, 0) + 1
        # Inlined frontier_append (this loop is verify's hot path); level-8 nodes are checked here,
        # deeper stored levels by the parent.
        s, level = n - start, 0
        while s & 1:
            h = sha(b"\x01" + frontier.pop() + h).digest()
            s >>= 1
            level += 1
            if level == TILE_HEIGHT:
                node = (start >> TILE_HEIGHT) + s
                have = stored.get(node)
                if have is not None:
                    nodes_seen += 1
                    if have != h:
                        error = (node << TILE_HEIGHT, "stored tree node (level 8) does not match the leaves")
        frontier.append(h)
        if error is not None:
            break
        n += 1
        if n in want:
            at_sizes[n] = list(frontier)
    return _ChunkResult(start, n - start, frontier, at_sizes, pruned, kinds, nodes_seen, error)


def _why_bad(h: bytes, stored: bytes, body: bytes, idx: int) -> str:
    """Why a body that failed the inline check is not the record stored at ``idx``."""
    if h != stored:
        return "record body does not match its leaf hash (record edited)"
    try:
        rec = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "record body is not JSON"
    if not isinstance(rec, dict):
        return "record body is not a JSON object"
    if rec.get("idx") != idx:
        return f"record carries index {rec.get('idx')} (rows moved or swapped)"
    return "indexed columns disagree with the signed record"


def _worker(url: str, start: int, end: int, sizes: list[int], cutoffs: dict[str, int]) -> _ChunkResult:
    store = open_store(url, create=False)
    try:
        return _check_chunk(store, start, end, sizes, cutoffs)
    finally:
        store.close()


def _first_missing_node(store: Store, n: int) -> int:
    """First leaf index whose covering stored node is missing (n when none is missing but counts differ)."""
    for level in range(TILE_HEIGHT, n.bit_length() + 1, TILE_HEIGHT):
        have = store.node_map(level, 0, n >> level)
        for i in range(n >> level):
            if i not in have:
                return i << level
    return n


def _fold(prefix: list[bytes], local: list[bytes]) -> bytes:
    return frontier_root([*prefix, *local])


def verify_store(store: Store, verifiers: list[Verifier], *, against: Checkpoint | None = None,
                 progress: Callable[[int], None] | None = None, workers: int | None = None) -> VerifyReport:
    """Verify everything; raise VerificationError naming the first bad index."""
    t0 = time.perf_counter()
    cps: list[tuple[int, Checkpoint]] = []
    prev = 0
    for size, note in store.checkpoints():
        try:
            cp = open_checkpoint(note, verifiers)
        except VerificationError as exc:
            raise VerificationError(f"checkpoint at size {size}: {exc}", index=prev) from exc
        if cp.size != size:
            raise VerificationError(f"checkpoint row {size} holds a note for size {cp.size}", index=prev)
        cps.append((size, cp))
        prev = size
    targets: dict[int, bytes] = {size: cp.root for size, cp in cps}
    if against is not None:
        if against.size in targets and targets[against.size] != against.root:
            raise VerificationError(f"stored checkpoint at size {against.size} differs from the external one",
                                    index=max(against.size - 1, 0))
        targets.setdefault(against.size, against.root)
    head_error = ""
    try:
        head: Head | None = store.head()
    except (TypeError, ValueError) as exc:  # a hand-edited head row (e.g. TEXT size): named after the leaves
        head, head_error = None, f"stored tree head is malformed ({type(exc).__name__}: {exc})"
    total = max(head.size if head is not None else 0, cps[-1][0] if cps else 0)
    cutoffs = _retention_cutoffs(store, total)
    # Read a little past the head too, so rows appended behind the sealer's back are found.
    limit = total + CHUNK
    ranges = [(a, min(a + CHUNK, limit)) for a in range(0, limit, CHUNK)]
    sizes_by_chunk = {a: sorted(s for s in targets if a < s <= b) for a, b in ranges}

    def results() -> Any:
        nproc = workers if workers is not None else (os.cpu_count() or 1)
        if total < PARALLEL_MIN or nproc < 2 or not hasattr(store, "url"):
            for a, b in ranges:
                yield _check_chunk(store, a, b, sizes_by_chunk[a], cutoffs)
            return
        # fork is ~100x cheaper to start, but only safe while this process has no other thread (a live
        # sealer could hold a lock the child would inherit); otherwise spawn.
        ctx = get_context("fork" if threading.active_count() == 1 else "spawn")
        with ProcessPoolExecutor(nproc, mp_context=ctx) as pool:
            futs = [pool.submit(_worker, store.url, a, b, sizes_by_chunk[a], cutoffs) for a, b in ranges]
            for f in futs:
                yield f.result()

    prefix: list[bytes] = []  # frontier of whole chunks, as level-CHUNK_LEVEL hashes
    n = pruned = nodes_seen = 0
    kinds: dict[str, int] = {}
    last_good = 0
    upper = store.all_nodes() if total else {}
    upper = {k: v for k, v in upper.items() if k[0] > TILE_HEIGHT}

    def emit(level: int, index: int, h: bytes) -> None:
        nonlocal nodes_seen
        lv = level + CHUNK_LEVEL
        if lv % TILE_HEIGHT:
            return
        s = upper.get((lv, index))
        if s is not None:
            nodes_seen += 1
            if s != h:
                raise VerificationError(f"stored tree node (level {lv}) does not match the leaves",
                                        index=index << lv)

    for res in results():
        for size in sorted(res.at_sizes):
            root = _fold(prefix, res.at_sizes[size])
            if root != targets[size]:
                raise VerificationError(f"tree root at size {size} does not match its signed checkpoint; "
                                        f"records in [{last_good}, {size}) were altered", index=last_good)
            last_good = size
        if res.error is not None:
            raise VerificationError(res.error[1], index=res.error[0])
        n += res.count
        pruned += res.pruned
        nodes_seen += res.nodes_seen
        for k, v in res.kinds.items():
            kinds[k] = kinds.get(k, 0) + v
        if res.count == CHUNK:
            chunk_root = res.frontier[0]
            lvl16 = upper.get((CHUNK_LEVEL, res.start >> CHUNK_LEVEL))
            if lvl16 is not None:
                nodes_seen += 1
                if lvl16 != chunk_root:
                    raise VerificationError(f"stored tree node (level {CHUNK_LEVEL}) does not match the leaves",
                                            index=res.start)
            frontier_append(prefix, res.start >> CHUNK_LEVEL, chunk_root, emit)
        elif res.count < CHUNK:
            final_local = res.frontier
            if progress is not None:
                progress(n)
            break
        if progress is not None:
            progress(n)
    else:
        final_local = []
    latest = cps[-1][1] if cps else None
    if latest is None and n:
        raise VerificationError("records present but no checkpoint signs them", index=0)
    if latest is not None and n > latest.size:
        raise VerificationError("record not covered by any signed checkpoint (appended after sealing)",
                                index=latest.size)
    if latest is not None and n < latest.size:
        raise VerificationError("log is shorter than its latest checkpoint (records deleted)", index=n)
    # Rows the chunks never read: at a negative index, or past the head by more than a chunk.
    below, beyond = store.stray_indexes(n)
    if below is not None:
        raise VerificationError("record at a negative index (outside the log, never signed)", index=below)
    if beyond is not None:
        raise VerificationError("record not covered by any signed checkpoint (beyond the end of the log)",
                                index=beyond)
    if against is not None and against.size > n:
        raise VerificationError(f"log has {n} records, fewer than the external checkpoint's {against.size} "
                                "(truncated or rolled back)", index=n)
    if pruned > cutoffs["#count"]:
        raise VerificationError(f"{pruned} record bodies are missing but retention receipts account for "
                                f"{cutoffs['#count']}", index=store.max_pruned_idx())
    expected_nodes = sum(n >> level for level in range(TILE_HEIGHT, n.bit_length() + 1, TILE_HEIGHT))
    stored_count = store.count_nodes()
    if nodes_seen != stored_count or stored_count != expected_nodes:
        first_missing = _first_missing_node(store, n)
        raise VerificationError(f"stored tree nodes: {stored_count} present, {expected_nodes} expected, "
                                f"{nodes_seen} where the tree has them (deleted, extra or misplaced interior "
                                "nodes)", index=first_missing)
    if head is None:
        raise VerificationError(head_error, index=max(n - 1, 0))
    if head.size != n or (latest is not None and head.checkpoint_note != latest.note):
        raise VerificationError("stored tree head does not match the log", index=min(head.size, n))
    if head.frontier != [*prefix, *final_local]:
        raise VerificationError("stored tree head frontier does not match the recomputed tree",
                                index=max(n - 1, 0))
    root = _fold(prefix, final_local)
    return VerifyReport(n, len(cps), pruned, root, latest, time.perf_counter() - t0,
                        against.size if against else None, kinds)
