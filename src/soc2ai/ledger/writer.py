"""The background sealer: batches queued records, seals them into the store with a signed checkpoint,
and diverts to the dead-letter spool whenever the store is down, slow, or the queue is over its bound.

Ordering rule: once anything is in the spool, new batches go to the spool too until it has been
replayed, so the log keeps the order in which records were acknowledged.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from soc2ai.errors import DuplicateRecordError, RollbackError, SpoolError, StoreError, VerificationError
from soc2ai.ledger.canonical import join_encoded
from soc2ai.ledger.merkle import frontier_append, frontier_root, leaf_hash
from soc2ai.ledger.note import Checkpoint, Signer, Verifier, open_checkpoint, sign_checkpoint
from soc2ai.ledger.spool import ENCODE_ERRORS, Item, SealItem, Spool, encode_item, item_id, read_frames
from soc2ai.ledger.store import TILE_HEIGHT, Head, LeafRow, SealBatch, Store
from soc2ai.ledger.tree import StoredTree

logger = logging.getLogger("soc2ai.ledger")

_YIELD_EVERY = 15  # records between GIL yields in the sealing loop (mask: every 16)
# With a backlog (more than batch_max queued, or a spool replay) a batch may take up to this many times
# batch_max records: the per-commit cost (fsync, signature, the pages the commit touches) is then shared
# by more records. Without a backlog batches stay small (closed by batch_ms).
_BURST = 8

QueueEntry = tuple[Item, int] | threading.Event  # (item, enqueue time ns) or a flush marker


class Witness:
    """The latest checkpoint this installation signed for one store location, kept outside the store.

    Keyed by where the store lives (not by the log's id), so a store that was deleted and re-created,
    or swapped for another database, is caught as well as one restored from an older copy.
    """

    # Rewriting the file costs ~0.5 ms (open + rename), more than the rest of a small batch, so it is
    # refreshed at most this often and always when the log closes. A rollback of the store to a state
    # older than the witness is refused; one within the last interval is caught by `verify --against`.
    MIN_INTERVAL_S = 0.25

    def __init__(self, directory: Path, location: str) -> None:
        self.dir = directory
        self.path = directory / f"{hashlib.sha256(location.encode()).hexdigest()[:24]}.checkpoint"
        self._written_at = 0.0
        self._pending: str | None = None

    def read(self) -> str | None:
        try:
            return self.path.read_text()
        except FileNotFoundError:
            return None

    def write(self, note: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written_at < self.MIN_INTERVAL_S:
            self._pending = note
            return
        if not self.dir.is_dir():
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(note)
        os.replace(tmp, self.path)
        self._written_at = now
        self._pending = None

    def flush(self) -> None:
        """Write a checkpoint held back by the rate limit."""
        if self._pending is not None:
            self.write(self._pending, force=True)


def check_not_rolled_back(store: Store, checkpoint: Checkpoint, *, log_id: str | None = None,
                          witness_path: Path | None = None) -> None:
    """Raise RollbackError if the store is smaller than, inconsistent with, or not the log of ``checkpoint``."""
    # The origin is "<project>/<first 16 hex of the log id>" (AuditLog.open).
    signed_id = checkpoint.origin.rsplit("/", 1)[-1]
    if log_id is not None and not log_id.startswith(signed_id):
        where = f" (if replacing the store was intended, delete {witness_path})" if witness_path else ""
        raise RollbackError(f"the store was replaced: it held log {checkpoint.origin} with {checkpoint.size} records "
                            f"signed, and now holds another log{where}")
    head = store.head()
    if head.size < checkpoint.size:
        raise RollbackError(f"store has {head.size} records but checkpoint {checkpoint.size} was signed: "
                            "the store was truncated or restored from an older copy")
    try:
        root = StoredTree(store).mth(0, checkpoint.size)
    except StoreError as exc:
        raise RollbackError(f"cannot recompute the tree at size {checkpoint.size}: {exc}") from exc
    if root != checkpoint.root:
        raise RollbackError(f"store is inconsistent with the checkpoint at size {checkpoint.size}")


class SealerHandle(Protocol):
    """What ``AuditLog`` needs from a sealer: the thread below, or ``SealerProcess`` (a child process)."""

    durable_size: int

    def submit(self, item: Item) -> None: ...

    def flush(self, timeout: float) -> int: ...

    def stop(self, timeout: float) -> None: ...

    def snapshot(self, *, latencies: bool = False) -> dict[str, Any]: ...

    def clear_latencies(self) -> None: ...


class Sealer(threading.Thread):
    """One per writing process. Never raises out of ``run``; errors are counted and kept in ``stats``."""

    def __init__(self, *, store: Store, signer: Signer, verifiers: list[Verifier], origin: str,
                 spool: Spool, witness: Witness, batch_ms: int, batch_max: int, queue_max: int,
                 yield_gil: bool = True) -> None:
        super().__init__(name="soc2ai-sealer", daemon=True)
        self.store = store
        self.signer = signer
        self.verifiers = verifiers
        self.origin = origin
        self.spool = spool
        self.witness = witness
        self.batch_s = batch_ms / 1000
        self.batch_max = batch_max
        self.queue_max = queue_max
        self.queue: collections.deque[QueueEntry] = collections.deque()
        self.wake = threading.Event()
        self.stopping = False
        self.durable_size = 0
        self.sealed_batches = 0
        self.sealed_records = 0
        self.store_errors = 0
        self.last_error = ""
        self.degraded = False
        self.latencies_us: collections.deque[int] = collections.deque(maxlen=200_000)
        self._known_note: str | None = None
        self._retry_at = 0.0
        self._backoff = 0.05
        self._orphans_at = 0.0
        self._orphan_count = 0
        self.duplicates_rejected = 0
        self._replay_rejected: set[tuple[Path, int, int]] = set()  # (spool file, frame, position) counted
        self.records_rejected = 0
        # Yield the GIL every few records so callers in this process are not held up; a sealer alone in
        # its own process (sealer = "process") has nobody to yield to (each yield costs a syscall).
        self.yield_gil = yield_gil

    # -- thread ---------------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            try:
                if not self.queue:
                    self.wake.wait(timeout=self._idle_timeout())
                    self.wake.clear()
                if self.stopping and not self.queue:
                    self._try_replay(final=True)
                    self.witness.flush()
                    return
                if self.queue and len(self.queue) < self.batch_max and not self.stopping:
                    # Batching window measured from the oldest queued record, so a record never waits
                    # more than batch_ms for its batch to close; the GIL is free while sleeping.
                    head = self.queue[0]
                    if not isinstance(head, threading.Event):
                        wait = self.batch_s - (time.perf_counter_ns() - head[1]) / 1e9
                        if wait > 0:
                            time.sleep(wait)
                self._step()
            except Exception as exc:  # the sealer must outlive any bug: report and keep going
                self.last_error = f"sealer error: {type(exc).__name__}: {exc}"
                logger.exception("ledger sealer error (continuing)")
                time.sleep(0.05)

    # -- the handle AuditLog uses (a SealerProcess offers the same) --------------------------------
    def submit(self, item: Item) -> None:
        """Queue one record (called on the caller's thread: no I/O, no lock)."""
        self.queue.append((item, time.perf_counter_ns()))
        if not self.wake.is_set():
            self.wake.set()

    def flush(self, timeout: float) -> int:
        """Wait until everything queued so far is sealed (or spooled and replayed); the durable size."""
        deadline = time.monotonic() + timeout
        marker = threading.Event()
        self.queue.append(marker)
        self.wake.set()
        marker.wait(timeout)
        while (self.spool.pending or self.degraded) and time.monotonic() < deadline and self.is_alive():
            time.sleep(0.01)
        return self.durable_size

    def stop(self, timeout: float) -> None:
        """Drain (seal or spool every record), stop the thread, release the spool file."""
        self.flush(timeout)
        self.stopping = True
        self.wake.set()
        self.join(timeout)
        self.spool.close()

    def snapshot(self, *, latencies: bool = False) -> dict[str, Any]:
        """Queue, spool, replay and sealing counters for ``AuditLog.stats``."""
        lat = sorted(self.latencies_us)
        out: dict[str, Any] = {
            "queue_depth": sum(1 for e in list(self.queue) if not isinstance(e, threading.Event)),
            "spool_pending": self.spool.pending, "spooled_total": self.spool.spooled_total,
            "replayed_total": self.spool.replayed_total, "spool_corrupt": list(self.spool.corrupt),
            "store_errors": self.store_errors, "degraded": self.degraded, "last_error": self.last_error,
            "duplicates_rejected": self.duplicates_rejected, "records_rejected": self.records_rejected, "durable_size": self.durable_size,
            "sealed_batches": self.sealed_batches, "sealed_records": self.sealed_records,
            "seal_latency_us": {"p50": _pct(lat, 0.50), "p99": _pct(lat, 0.99), "max": lat[-1] if lat else None,
                                "samples": len(lat)},
        }
        if latencies:
            out["latencies_us"] = list(self.latencies_us)
        return out

    def clear_latencies(self) -> None:
        self.latencies_us.clear()

    def _idle_timeout(self) -> float | None:
        return 0.05 if self.spool.pending or self.degraded else 0.5

    def _drain(self) -> tuple[list[SealItem], list[int], list[threading.Event], bool]:
        """The next batch, its enqueue times, flush markers reached, and whether the queue was over its
        bound (then the chunk is large and goes straight to the spool rather than letting memory grow)."""
        items: list[SealItem] = []
        times: list[int] = []
        markers: list[threading.Event] = []
        q = self.queue
        over = len(q) > self.queue_max
        if over:
            limit = max(self.batch_max, len(q) - self.queue_max // 2)
        else:
            limit = self.batch_max * _BURST if len(q) > self.batch_max else self.batch_max
        while q and len(items) < limit:
            entry = q.popleft()
            if isinstance(entry, threading.Event):
                markers.append(entry)
                break  # seal what precedes the marker, then release the flusher
            try:
                items.append(encode_item(entry[0]))
            except ENCODE_ERRORS as exc:
                # A body JSON cannot hold (e.g. a lone surrogate in a string): it can never be sealed or
                # spooled. Counted and reported rather than wedging the queue.
                self.records_rejected += 1
                self.last_error = f"record not encodable, rejected: {type(exc).__name__}: {exc}"
                logger.error("%s", self.last_error)
                continue
            times.append(entry[1])
        return items, times, markers, over

    def _step(self) -> None:
        items, times, markers, overflow = self._drain()
        try:
            if items:
                if self.spool.pending or self._orphans() or self.degraded or overflow:
                    self._to_spool(items)
                else:
                    try:
                        self._seal(items, replay=False)
                        self._note_latency(times)
                    except DuplicateRecordError:
                        self._seal_without_duplicates(items)
                    except Exception as exc:  # any failure to seal: keep the batch (spool), never drop
                        self._store_failed(exc)
                        self._to_spool(items)
            self._try_replay()
        finally:
            for m in markers:
                m.set()

    def _seal_without_duplicates(self, items: list[SealItem]) -> None:
        """Seal a batch the store refused for a reused id, without the duplicates. The retry is itself a
        store write: if it fails (lock held, store gone) the batch is spooled like any other, never dropped
        (replay rejects the duplicates again)."""
        try:
            items = self._drop_duplicates(items)
            if items:
                self._seal(items, replay=False)
        except Exception as exc:
            self._store_failed(exc)
            self._to_spool(items)

    def _reject_duplicate(self, rid: str, where: str = "already in the log") -> None:
        self.duplicates_rejected += 1
        self.last_error = f"record id {rid!r} {where}: rejected"
        logger.error("%s", self.last_error)

    def _drop_duplicates(self, items: list[SealItem]) -> list[SealItem]:
        """Remove records whose id is already in the log (or repeated in the batch); count and report them."""
        existing = self.store.existing_ids([item_id(it) for it in items])
        keep: list[SealItem] = []
        for it in items:
            rid = item_id(it)
            if rid in existing:
                self._reject_duplicate(rid)
                continue
            existing.add(rid)
            keep.append(it)
        return keep

    def _replay_todo(self, batch: list[SealItem], seen: set[str], where: tuple[Path, int]) -> list[SealItem]:
        """The records of one spooled frame still to seal. ``seen``: ids taken from this file so far;
        ``where``: (file, frame number), so a replay retried after an outage counts a rejection once.

        A record already in the log with the same leaf hash at its index was sealed by an earlier,
        interrupted replay of this file (or a commit whose acknowledgement was lost): skipped. Any other
        reuse of an id (in the log with different content, or earlier in this file) is the caller's
        error: rejected and counted, never sealed (it would fail the whole batch) nor silently dropped.
        """
        sealed = self.store.sealed_ids([item_id(it) for it in batch])
        todo: list[SealItem] = []
        for pos, it in enumerate(batch):
            enc = it[0]
            rid = enc[5]
            have = sealed.get(rid)
            if rid in seen or (have is not None and leaf_hash(join_encoded(enc[0], have[0], enc[1])) != have[1]):
                key = (*where, pos)
                if key not in self._replay_rejected:
                    self._replay_rejected.add(key)
                    self._reject_duplicate(rid, "repeated in the spool" if rid in seen else "already in the log")
            elif have is None:
                todo.append(it)
            seen.add(rid)
        return todo

    def _note_latency(self, times: list[int]) -> None:
        now = time.perf_counter_ns()
        self.latencies_us.extend((now - t) // 1000 for t in times)

    def _store_failed(self, exc: Exception) -> None:
        self.store_errors += 1
        self.last_error = str(exc)
        if not self.degraded:
            logger.warning("ledger store unavailable, spooling: %s", exc)
        self.degraded = True
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, 2.0)

    def _to_spool(self, items: list[SealItem]) -> None:
        try:
            self.spool.append(items)
        except SpoolError as exc:
            # Both the store and the spool failed: keep the records in memory (front of the queue) and
            # retry; they are not acknowledged, and nothing is dropped.
            self.last_error = str(exc)
            logger.error("ledger spool unwritable, holding %d records in memory: %s", len(items), exc)
            self.queue.extendleft(reversed([(i, time.perf_counter_ns()) for i in items]))
            time.sleep(0.05)

    def _orphans(self) -> int:
        """Spool files left by dead processes; the directory is listed at most every 2 s."""
        now = time.monotonic()
        if now >= self._orphans_at:
            self._orphan_count = self.spool.orphan_count()
            self._orphans_at = now + 2.0
        return self._orphan_count

    def _forget_rejections(self, path: Path) -> None:
        """The file is gone (its name may be used again): its counted rejections no longer apply."""
        if self._replay_rejected:
            self._replay_rejected = {k for k in self._replay_rejected if k[0] != path}

    def _try_replay(self, final: bool = False) -> None:
        if not (self.spool.pending or self.degraded or self._orphans()):
            return
        if not final and time.monotonic() < self._retry_at:
            return
        for path in self.spool.files():
            replayed = 0
            seen: set[str] = set()
            try:
                for frame, batch in enumerate(read_frames(path)):
                    todo = self._replay_todo(batch, seen, (path, frame))
                    step = self.batch_max * _BURST  # a replay is a backlog by definition
                    for i in range(0, len(todo), step):
                        self._seal(todo[i:i + step], replay=True)
                    replayed += len(todo)
            except SpoolError as exc:
                logger.error("corrupt spool file kept for inspection: %s", exc)
                self.spool.quarantine(path, exc)
                self._forget_rejections(path)
                continue
            except StoreError as exc:
                self._store_failed(exc)
                return
            except Exception as exc:  # a record the store can never take: keep the file, do not stall the log
                err = SpoolError(f"{path}: unreplayable record: {type(exc).__name__}: {exc}")
                logger.error("%s", err)
                self.spool.quarantine(path, err)
                self._forget_rejections(path)
                continue
            self._orphans_at = 0.0
            self.spool.done(path, replayed)
            self._forget_rejections(path)
        if self.degraded:
            logger.warning("ledger store back; spool replayed")
        self.degraded = False
        self._backoff = 0.05

    # -- sealing --------------------------------------------------------------------------------
    def _check_head(self, head: Head) -> None:
        """Refuse to extend a head whose checkpoint we cannot verify or whose frontier does not match it."""
        note = head.checkpoint_note
        if note is None or note == self._known_note:
            if note is None and head.size:
                raise VerificationError("store has records but no checkpoint", index=0)
            return
        cp = open_checkpoint(note, self.verifiers)
        if cp.size != head.size or cp.root != frontier_root(head.frontier):
            raise RollbackError(f"stored tree head does not match its checkpoint at size {cp.size}")
        self._known_note = note

    def _seal(self, items: list[SealItem], *, replay: bool) -> SealBatch:
        def prepare(head: Head) -> SealBatch:
            self._check_head(head)
            size = head.size
            frontier = list(head.frontier)
            nodes: list[tuple[int, int, bytes]] = []

            def emit(level: int, index: int, h: bytes) -> None:
                if level % TILE_HEIGHT == 0:
                    nodes.append((level, index, h))

            leaves: list[LeafRow] = []
            subjects = []
            payloads = []
            spans: dict[str, list[int]] = {}  # subject_ref hex -> [first idx, last idx, count]
            for n, ((head_b, tail_b, kind, ts, ref, rid), subj, payload) in enumerate(items):
                if self.yield_gil and n and not n & _YIELD_EVERY:
                    # Let caller threads waiting for the GIL run now rather than after a full switch
                    # interval (5 ms): bounds the latency this loop adds to log_inference calls. Not
                    # before the first record: the store released the GIL just before (BEGIN, head
                    # read), and sleep(0) costs ~25 us of CPU and ~80 us of wall time per call here.
                    time.sleep(0)
                enc = join_encoded(head_b, size, tail_b)
                lh = leaf_hash(enc)
                frontier_append(frontier, size, lh, emit)
                leaves.append(LeafRow(size, lh, enc, kind, ts, bytes.fromhex(ref) if ref else None, rid))
                if ref:
                    span = spans.get(ref)
                    if span is None:
                        spans[ref] = [size, size, 1]
                    else:
                        span[1] = size
                        span[2] += 1
                if subj is not None:
                    subjects.append(subj)
                if payload is not None:
                    payloads.append((rid, payload))
                size += 1
            cp = sign_checkpoint(self.signer, self.origin, size, frontier_root(frontier))
            return SealBatch(leaves, nodes, cp, frontier, subjects, payloads,
                             [(a, bytes.fromhex(r), b, k) for r, (a, b, k) in spans.items()],
                             len(items) if replay else 0)

        batch = self.store.seal(prepare)
        self._known_note = batch.checkpoint.note
        self.durable_size = batch.checkpoint.size
        self.sealed_batches += 1
        self.sealed_records += len(batch.leaves)
        try:
            self.witness.write(batch.checkpoint.note)
        except OSError as exc:
            self.last_error = f"witness not written: {exc}"
        return batch


def start_sealer(store: Store, *, keys_dir: Path, origin: str, spool_dir: Path, witness_dir: Path,
                 batch_ms: int, batch_max: int, queue_max: int, yield_gil: bool = True) -> Sealer:
    """A running sealer for ``store`` with this installation's keys, spool and witness (the writing
    process's thread, or the whole of a sealer process)."""
    from soc2ai.ledger import keys as keymod

    sealer = Sealer(store=store, signer=keymod.load_signer(keys_dir), verifiers=keymod.load_verifiers(keys_dir),
                    origin=origin, spool=Spool(spool_dir), witness=Witness(witness_dir, store.url),
                    batch_ms=batch_ms, batch_max=batch_max, queue_max=queue_max, yield_gil=yield_gil)
    sealer.durable_size = store.head().size
    sealer.start()
    return sealer


def _pct(sorted_vals: list[int], q: float) -> int | None:
    if not sorted_vals:
        return None
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]
