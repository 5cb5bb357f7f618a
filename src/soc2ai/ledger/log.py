"""``AuditLog``: the public face of the ledger.

Writers call :meth:`AuditLog.log_inference` / :meth:`AuditLog.append` from any thread; both compute the
keyed hashes on the caller's thread, enqueue, and return at once. They never block on I/O and never raise
into the caller: failures are counted in :meth:`stats`. A background sealer makes records durable under a
signed checkpoint; :meth:`flush` waits for that and returns the durable size.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from soc2ai.errors import ConfigError, KeyMaterialError, StoreError, VerificationError
from soc2ai.ledger import keys as keymod
from soc2ai.ledger.canonical import to_jsonable
from soc2ai.ledger.merkle import consistency_path, inclusion_path
from soc2ai.ledger.note import Checkpoint, Signer, open_checkpoint
from soc2ai.ledger.proofs import ConsistencyProof, InclusionProof
from soc2ai.ledger.records import INFERENCE_FIELDS, SCHEMA_VERSION, DsarRecord, Record, content_bytes, new_id
from soc2ai.ledger.sealer_process import SealerProcess
from soc2ai.ledger.spool import Item, scrub_quarantined
from soc2ai.ledger.store import Store, open_store
from soc2ai.ledger.tree import StoredTree
from soc2ai.ledger.verify import VerifyReport, verify_store
from soc2ai.ledger.writer import SealerHandle, Witness, check_not_rolled_back, start_sealer

if TYPE_CHECKING:
    from soc2ai.config import Config

logger = logging.getLogger("soc2ai.ledger")

_INFERENCE_EXTRA = frozenset(INFERENCE_FIELDS) - {"hash_mode", "input_hash", "output_hash", "model",
                                                  "latency_us", "input_tokens", "output_tokens", "flagged"}


@dataclass(frozen=True, slots=True)
class Entry:
    """A record read back from the log. ``body`` is None when retention pruned it."""

    idx: int
    body: dict[str, Any] | None
    kind: str
    ts: int
    id: str


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """Outcome of crypto-shredding one subject."""

    subject_refs: list[str]
    records: int
    receipt_id: str
    # Wrapped keys erased from quarantined spool files (never replayed, so not in the store).
    spool_keys_erased: int = 0
    # Where the store says deleted bytes may still remain (e.g. PostgreSQL WAL settings); empty: nowhere.
    residue: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Whether given content is exactly what record ``index`` processed."""

    index: int
    prompt: bool | None
    response: bool | None

    @property
    def ok(self) -> bool:
        return self.prompt is not False and self.response is not False


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class KeyedHash:
    """HMAC-SHA256 (RFC 2104) under one key, with the padded key's inner and outer SHA-256 states
    computed once. ``hmac.digest`` re-derives them on every call, about a third of its cost on 2 KB;
    the output is identical (a property test checks it against ``hmac.digest``)."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        padded = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(padded.translate(_IPAD))
        self._outer = hashlib.sha256(padded.translate(_OPAD))

    def hexdigest(self, data: bytes) -> str:
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


@dataclass(frozen=True, slots=True)
class _SealerConf:
    """How this log's sealer is started (again, in a forked child)."""

    kind: str
    spool_dir: Path
    witness_dir: Path
    batch_ms: int
    batch_max: int
    queue_max: int
    sqlite_synchronous: str


def _content_hash(mac: KeyedHash, content: Any, sha_only: bool) -> str:
    data = content_bytes(content)
    return hashlib.sha256(data).hexdigest() if sha_only else mac.hexdigest(data)


class _Subject:
    __slots__ = ("key", "mac", "ref", "ref_hex")

    def __init__(self, key: bytes, ref: bytes) -> None:
        self.key = key
        self.ref = ref
        self.ref_hex = ref.hex()
        self.mac = KeyedHash(key)


def _now_us() -> int:
    return time.time_ns() // 1000


_OPEN_LOGS: weakref.WeakSet[AuditLog] = weakref.WeakSet()


def _drain_at_exit() -> None:
    for log in list(_OPEN_LOGS):
        try:
            log.close(timeout=10.0)
        except Exception:  # noqa: S110 - best effort at interpreter exit; the spool keeps what is left
            pass


atexit.register(_drain_at_exit)


def _mark_forked() -> None:
    # Runs in the child right after fork(); only sets a flag (the child may be about to exec). The
    # first write in the child then gives it its own sealer and store connections.
    for log in list(_OPEN_LOGS):
        log._forked = True


os.register_at_fork(after_in_child=_mark_forked)


class AuditLog:
    """A signed, tamper-evident, append-only log of AI activity."""

    def __init__(self, store: Store, *, keys_dir: Path, origin: str, spool_dir: Path, witness_dir: Path,
                 hash_mode: str = "hmac-sha256", read_only: bool = False, retain_payloads: bool = False,
                 batch_ms: int = 10, batch_max: int = 512, queue_max: int = 50_000,
                 sealer: str = "thread", sqlite_synchronous: str = "full",
                 clock: Callable[[], int] = _now_us) -> None:
        self.store = store
        self.keys_dir = keys_dir
        self.origin = origin
        self.hash_mode = hash_mode
        self.read_only = read_only
        self._spool_dir = spool_dir
        self.retain_payloads = retain_payloads
        self._clock = clock
        self._subjects: dict[str, _Subject] = {}
        self._subject_lock = threading.Lock()
        self.caller_errors = 0
        self.last_caller_error = ""
        self._closed = False
        self._forked = False  # set in a forked child (see _mark_forked)
        self.verifiers = keymod.load_verifiers(keys_dir)
        self._master: keymod.MasterKeys | None = None
        self._sealer: SealerHandle | None = None
        if (keys_dir / keymod.MASTER_KEY).exists() or not read_only:
            self._master = keymod.MasterKeys.load(keys_dir)
        if read_only:
            return
        if self._master is None:  # pragma: no cover - MasterKeys.load raises first
            raise KeyMaterialError(f"{keys_dir}: master.key missing")
        self._anon_key = self._master.anonymous
        self._anon_mac = KeyedHash(self._anon_key)
        signer: Signer = keymod.load_signer(keys_dir)
        if all(v.kid != signer.verifier.kid for v in self.verifiers):
            raise KeyMaterialError(f"{keys_dir}: signing.pub does not match signing.key")
        self.witness = Witness(witness_dir, store.url)
        note = self.witness.read()
        if note is not None:
            check_not_rolled_back(store, open_checkpoint(note, self.verifiers), log_id=store.log_id,
                                  witness_path=self.witness.path)
        if sealer not in ("thread", "process"):
            raise ConfigError(f"unknown sealer {sealer!r} (use 'thread' or 'process')", field="ledger.sealer")
        self._sealer_conf = _SealerConf(sealer, spool_dir, witness_dir, batch_ms, batch_max, queue_max,
                                        sqlite_synchronous)
        self._sealer = self._start_sealer()
        _OPEN_LOGS.add(self)

    def _start_sealer(self) -> SealerHandle:
        c = self._sealer_conf
        where: dict[str, Any] = {"keys_dir": self.keys_dir, "origin": self.origin, "spool_dir": c.spool_dir,
                                 "witness_dir": c.witness_dir, "batch_ms": c.batch_ms, "batch_max": c.batch_max,
                                 "queue_max": c.queue_max}
        if c.kind == "process":
            return SealerProcess({**where, "url": self.store.url, "sqlite_synchronous": c.sqlite_synchronous})
        return start_sealer(self.store, **where)

    def _after_fork(self) -> None:
        """First write in a forked child (gunicorn --preload, a prefork worker pool): the sealer thread or
        process and the store connections belong to the parent, so this process gets its own. What the
        parent had queued before the fork stays the parent's to seal."""
        self._forked = False
        self.store = open_store(self.store.url, create=False, sqlite_synchronous=self._sealer_conf.sqlite_synchronous)
        self._sealer = self._start_sealer()

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    def open(cls, target: str | Config | None = None, *, keys_dir: str | Path | None = None,
             read_only: bool = False, clock: Callable[[], int] | None = None, **overrides: Any) -> AuditLog:
        """Open a log from a store URL or a :class:`Config` (default: ``load_config()``)."""
        from soc2ai.config import Config, load_config  # the config module imports ledger settings

        config = target if isinstance(target, Config) else load_config()
        s = config.ledger
        url = target if isinstance(target, str) else s.store
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            url = "sqlite:///" + str(config.path(url[len("sqlite:///"):]))
        keys = Path(keys_dir) if keys_dir else config.path(s.keys_dir)
        if not read_only:
            # Before the store: a writer that cannot sign must not leave an empty store behind (the next
            # reader would then fail on a store without a log instead of on the missing keys).
            for name in (keymod.SIGNING_KEY, keymod.MASTER_KEY):
                if not (keys / name).is_file():
                    raise KeyMaterialError(f"{keys / name}: key file missing (run `soc2ai init`)")
        store = open_store(url, create=not read_only, sqlite_synchronous=s.sqlite_synchronous)
        params: dict[str, Any] = {
            "keys_dir": keys,
            "spool_dir": config.path(s.spool_dir) / store.log_id,
            "witness_dir": config.path(s.witness_dir),
            "origin": f"{config.project.name}/{store.log_id[:16]}",
            "hash_mode": s.hash_mode, "read_only": read_only, "retain_payloads": s.retain_payloads,
            "batch_ms": s.batch_ms, "batch_max": s.batch_max, "queue_max": s.queue_max, "sealer": s.sealer,
            "sqlite_synchronous": s.sqlite_synchronous,
        }
        if clock is not None:
            params["clock"] = clock
        params.update(overrides)
        try:
            return cls(store, **params)
        except BaseException:
            store.close()
            raise

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing (hot path) ---------------------------------------------------------------------
    def _subject(self, user_id: str) -> tuple[_Subject, tuple[bytes, bytes, bytes] | None]:
        subj = self._subjects.get(user_id)
        if subj is not None:
            return subj, None
        with self._subject_lock:
            subj = self._subjects.get(user_id)
            if subj is not None:
                return subj, None
            if self._master is None:
                raise KeyMaterialError("read-only log: cannot mint subject keys")
            # A fresh random key; the sealer persists it (wrapped) in the same transaction as the record.
            # A process that restarts may mint a second key for a known subject: both are kept, and
            # forget() destroys all of them.
            key = os.urandom(32)
            ref = keymod.subject_ref(key, user_id)
            subj = _Subject(key, ref)
            self._subjects[user_id] = subj
            return subj, (ref, self._master.subject_lookup(user_id), self._master.wrap_key(ref, key))

    def _enqueue(self, item: Item) -> None:
        if self._forked:
            with self._subject_lock:
                if self._forked:
                    self._after_fork()
        sealer = self._sealer
        if sealer is None or self._closed:
            raise StoreError("log is closed or read-only")
        sealer.submit(item)

    def _caller_error(self, exc: BaseException) -> None:
        self.caller_errors += 1
        self.last_caller_error = f"{type(exc).__name__}: {exc}"
        logger.error("audit record not queued: %s", self.last_caller_error)

    def log_inference(self, *, user_id: str | None, model_id: str, prompt: Any, response: Any,
                      latency_us: int = 0, input_tokens: int = 0, output_tokens: int = 0,
                      flagged: bool = False, request_id: str | None = None, ts: int | None = None,
                      **extra: Any) -> str:
        """Record one model call; returns the request id. Never blocks on I/O, never raises."""
        rid = request_id or new_id()
        try:
            if user_id is None:
                subj, new_row = None, None
                mac, ref_hex = self._anon_mac, None
            else:
                subj, new_row = self._subject(user_id)
                mac, ref_hex = subj.mac, subj.ref_hex
            sha_only = self.hash_mode == "sha256"
            body: dict[str, Any] = {
                "v": SCHEMA_VERSION, "kind": "inference", "id": rid, "ts": self._clock() if ts is None else ts,
                "subject_ref": ref_hex, "hash_mode": self.hash_mode,
                "input_hash": _content_hash(mac, prompt, sha_only),
                "output_hash": None if response is None else _content_hash(mac, response, sha_only),
                "model": model_id if model_id.__class__ is str else to_jsonable(model_id),
                "latency_us": int(latency_us), "input_tokens": int(input_tokens),
                "output_tokens": int(output_tokens), "flagged": bool(flagged),
            }
            if extra:
                attrs: dict[str, Any] | None = None
                for k, v in extra.items():
                    if k in _INFERENCE_EXTRA:
                        # Most extras are plain strings: skip the coercion call (the caller's hot path).
                        body[k] = v if v.__class__ is str else to_jsonable(v)
                    else:
                        if attrs is None:
                            attrs = {}
                        attrs[k] = v
                if attrs:
                    body["attrs"] = to_jsonable({**body.get("attrs", {}), **attrs})
            payload = None
            if self.retain_payloads:
                payload = self._seal_payload(subj.key if subj is not None else self._anon_key, prompt, response)
            self._enqueue((body, new_row, payload))
        except Exception as exc:
            self._caller_error(exc)
        return rid

    def append(self, record: Record) -> str:
        """Append any other record kind; returns its id. Never blocks on I/O, never raises."""
        try:
            subj, new_row = self._subject(record.user_id) if record.user_id is not None else (None, None)
            body = {"v": SCHEMA_VERSION, "kind": record.kind, "id": record.id,
                    "ts": record.ts if record.ts is not None else self._clock(),
                    "subject_ref": subj.ref_hex if subj is not None else None, **record.fields_body()}
            self._enqueue((body, new_row, None))
        except Exception as exc:
            self._caller_error(exc)
        return record.id

    def _seal_payload(self, key: bytes, prompt: Any, response: Any) -> bytes:
        data = orjson.dumps({"prompt": to_jsonable(prompt), "response": to_jsonable(response)})
        nonce = os.urandom(12)
        return nonce + AESGCM(key).encrypt(nonce, data, None)

    # -- durability -----------------------------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> int:
        """Wait until everything queued so far is sealed (or spooled and replayed); return the durable size."""
        sealer = self._sealer
        if sealer is None:
            return self.size()
        return sealer.flush(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Drain the queue (sealing or spooling every record), stop the sealer, close the store."""
        if self._closed:
            return
        if self._forked:  # a forked child that never wrote: the inherited sealer is the parent's
            self._closed = True
            _OPEN_LOGS.discard(self)
            return
        if self._sealer is not None:
            self._sealer.stop(timeout)
        self._closed = True
        _OPEN_LOGS.discard(self)
        self.store.close()

    # -- reading --------------------------------------------------------------------------------
    def size(self) -> int:
        return self.store.head().size

    def checkpoint(self) -> Checkpoint:
        """The latest signed checkpoint (verified)."""
        note = self.store.head().checkpoint_note
        if note is None:
            raise VerificationError("the log is empty: no checkpoint yet")
        return open_checkpoint(note, self.verifiers)

    def entries(self, start: int = 0, stop: int | None = None, kind: str | None = None) -> Iterator[Entry]:
        for row in self.store.iter_leaves(start, stop, kind):
            yield Entry(row.idx, None if row.body is None else orjson.loads(row.body), row.kind, row.ts, row.rid)

    def entry(self, index: int) -> Entry:
        for e in self.entries(index, index + 1):
            return e
        raise StoreError(f"no record at index {index}")

    def find(self, request_id: str) -> int | None:
        return self.store.find_rid(request_id)

    def prove(self, index: int, size: int | None = None) -> InclusionProof:
        """Inclusion proof of record ``index`` under the latest (or the given size's) checkpoint."""
        cp = self.checkpoint() if size is None else self._checkpoint_at(size)
        if not 0 <= index < cp.size:
            raise VerificationError(f"index outside the checkpointed tree of size {cp.size}", index=index)
        row = next(self.store.iter_leaves(index, index + 1))
        path = inclusion_path(index, cp.size, StoredTree(self.store).mth)
        return InclusionProof(index, row.body, row.leaf_hash, path, cp)

    def _checkpoint_at(self, size: int) -> Checkpoint:
        for s, note in self.store.checkpoints():
            if s == size:
                return open_checkpoint(note, self.verifiers)
        raise VerificationError(f"no signed checkpoint at size {size}")

    def consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """Proof that the tree at ``new_size`` (default: latest) extends the signed tree at ``old_size``."""
        new = self.checkpoint() if new_size is None else self._checkpoint_at(new_size)
        old = self._checkpoint_at(old_size)
        return ConsistencyProof(old, new, consistency_path(old.size, new.size, StoredTree(self.store).mth))

    def verify(self, against: Checkpoint | None = None,
               progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Verify every record, node and checkpoint; raise VerificationError naming the first bad index."""
        return verify_store(self.store, self.verifiers, against=against, progress=progress)

    def stats(self) -> dict[str, Any]:
        """Counts by kind, pruned bodies, queue, spool and replay state (works while the store is down)."""
        snap = self._sealer.snapshot() if self._sealer is not None else None
        # Records the sealer refused (a reused id, a body JSON cannot hold) are the caller's errors too.
        rejected = snap.get("duplicates_rejected", 0) + snap.get("records_rejected", 0) if snap is not None else 0
        out: dict[str, Any] = {"caller_errors": self.caller_errors + rejected,
                               "last_caller_error": self.last_caller_error,
                               "store": _redact_url(self.store.url)}
        try:
            out.update({"size": self.size(), "kinds": self.store.count_by_kind(),
                        "pruned": self.store.pruned_count(), "store_reachable": True})
        except StoreError as exc:
            out.update({"size": snap["durable_size"] if snap is not None else None, "store_reachable": False,
                        "store_error": str(exc)})
        if snap is not None:
            snap.pop("durable_size", None)
            out.update(snap)
        else:
            files = [p for p in self._spool_dir.glob("*.spool") if p.stat().st_size] if self._spool_dir.is_dir() else []
            out.update({"spool_files": len(files), "spool_bytes": sum(p.stat().st_size for p in files)})
        return out

    # -- content proof (PI1) --------------------------------------------------------------------
    def _subject_key_for_ref(self, ref_hex: str | None) -> bytes | None:
        if self._master is None:
            raise KeyMaterialError("master.key is needed to recompute keyed hashes")
        if ref_hex is None:
            return self._master.anonymous
        ref = bytes.fromhex(ref_hex)
        wrapped = self.store.subject_key_by_ref(ref)
        return None if wrapped is None else self._master.unwrap_key(ref, wrapped)

    def match(self, index: int, *, prompt: Any = None, response: Any = None) -> MatchResult:
        """Recompute the record's hashes over the given content; say whether it is what was processed."""
        e = self.entry(index)
        if e.body is None:
            raise VerificationError("record body was pruned by retention; only its hash remains", index=index)
        if e.body.get("kind") != "inference":
            raise VerificationError(f"record is a {e.body.get('kind')} record, not an inference", index=index)
        mode = e.body.get("hash_mode")
        key = b"" if mode == "sha256" else self._subject_key_for_ref(e.body.get("subject_ref"))
        if key is None:
            raise VerificationError("subject key destroyed (forgotten): content can no longer be linked",
                                    index=index)

        def check(content: Any, field: str) -> bool | None:
            if content is None:
                return None
            data = content_bytes(content)
            got = hashlib.sha256(data).hexdigest() if mode == "sha256" else hmac.digest(key, data, "sha256").hex()
            want = e.body.get(field) if e.body is not None else None
            return want is not None and hmac.compare_digest(got, str(want))

        return MatchResult(index, check(prompt, "input_hash"), check(response, "output_hash"))

    def payload(self, index: int) -> dict[str, Any]:
        """Decrypt the retained prompt/response of an inference record (needs retain_payloads)."""
        e = self.entry(index)
        sealed = self.store.payload(e.id)
        if sealed is None:
            raise StoreError(f"no retained payload for index {index} (retention off, pruned or forgotten)")
        key = self._subject_key_for_ref(e.body.get("subject_ref") if e.body else None)
        if key is None:
            raise VerificationError("subject key destroyed: payload unreadable", index=index)
        data: dict[str, Any] = orjson.loads(AESGCM(key).decrypt(sealed[:12], sealed[12:], None))
        return data

    # -- subjects -------------------------------------------------------------------------------
    def subject_refs(self, user_id: str) -> list[str]:
        """Every subject_ref this user's records carry (one per subject key)."""
        if self._master is None:
            raise KeyMaterialError("master.key is needed to look up subjects")
        return [ref.hex() for ref, _ in self.store.subject_keys(self._master.subject_lookup(user_id))]

    def forget(self, user_id: str, *, actor: str = "") -> ForgetResult:
        """Crypto-shred a subject: destroy their keys (and retained payloads); proofs still verify."""
        if self._master is None or self._sealer is None:
            raise KeyMaterialError("forget needs a writable log with its keys")
        self.flush()
        lookup = self._master.subject_lookup(user_id)
        refs = self.store.delete_subject(lookup)
        erased = scrub_quarantined(self._spool_dir, lookup)
        with self._subject_lock:
            self._subjects.pop(user_id, None)
        records = self.store.count_subject_records(refs)
        residue = self.store.compact()
        attrs: dict[str, Any] = {"actor": actor} if actor else {}
        if residue:
            attrs["residue"] = residue
        receipt = DsarRecord(action="forget", outcome="shredded" if refs else "unknown_subject",
                             subject_refs=[r.hex() for r in refs], count=records, attrs=attrs)
        self.append(receipt)
        self.flush()
        return ForgetResult([r.hex() for r in refs], records, receipt.id, erased, tuple(residue))

    def prune(self, before_ts: int, kinds: list[str] | None = None, *, actor: str = "") -> int:
        """Drop record bodies older than ``before_ts`` (µs); hashes, checkpoints and earlier retention receipts
        stay; a receipt is logged."""
        from soc2ai.ledger.records import RetentionRecord

        if self._sealer is None:
            raise StoreError("prune needs a writable log")
        self.flush()
        n = self.store.prune(before_ts, kinds)
        # The receipt signs how many bodies were dropped and up to which index, so verify can tell a
        # retention prune from a body deleted by hand (whose ts column could have been back-dated).
        attrs: dict[str, Any] = {"max_idx": self.store.max_pruned_idx()}
        if actor:
            attrs["actor"] = actor
        self.append(RetentionRecord(action="prune", scope=",".join(kinds) if kinds else "*", cutoff_ts=before_ts,
                                    count=n, attrs=attrs))
        self.flush()
        return n



def _redact_url(url: str) -> str:
    """Hide a password in a store URL before it is shown or logged."""
    import re

    return re.sub(r"(://[^:/@]+):[^@/]+@", r"\1:***@", url)


__all__ = ["AuditLog", "Entry", "ForgetResult", "MatchResult"]
