"""Data-subject requests across every store: find, export, delete (P4.2, P4.3, CC6.5).

Find = lineage (exact: what ingestion recorded) + each connector's own search (subject field, and a
discovery scan of identifiers in text and metadata). Delete is a dry run unless asked; it is journaled
under ``<state_dir>/journal`` (named by the keyed subject hash, never the raw id) so an interrupted run
resumes, deletes what is left and proves the result; running it twice is harmless. The proof is a fresh
find per store; the outcome goes to the ledger as a ``DsarRecord``. A store that could not be reached
is named in the report and the outcome is never "complete".
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from soc2ai.data.connectors.interface import Connector, Location, Subject
from soc2ai.data.runtime import Opened
from soc2ai.errors import Soc2AIError, VerificationError

if TYPE_CHECKING:
    from soc2ai.data.lineage import LineageStore
    from soc2ai.ledger import AuditLog

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class StoreResult:
    """One connector's part of a request."""

    name: str
    type: str
    locations: list[Location] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    deleted: int | None = None
    verified: bool | None = None
    delete_seconds: float = 0.0
    verify_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"name": self.name, "type": self.type, "count": len(self.locations),
                "locations": [loc.as_dict() for loc in self.locations], "seconds": round(self.seconds, 4),
                "error": self.error, "notes": self.notes, "deleted": self.deleted, "verified": self.verified,
                "delete_seconds": round(self.delete_seconds, 4), "verify_seconds": round(self.verify_seconds, 4)}


@dataclass
class DsarReport:
    """The answer to one request."""

    action: str
    stores: list[StoreResult]
    lineage_nodes: int = 0
    outcome: str = ""
    receipt_id: str | None = None
    resumed: bool = False
    dry_run: bool = False
    seconds: float = 0.0
    bundle: str | None = None

    @property
    def total(self) -> int:
        return sum(len(s.locations) for s in self.stores)

    @property
    def unreachable(self) -> list[str]:
        return [s.name for s in self.stores if s.error]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (what ``--json`` prints)."""
        return {"action": self.action, "outcome": self.outcome, "dry_run": self.dry_run,
                "total": self.total, "lineage_nodes": self.lineage_nodes, "unreachable": self.unreachable,
                "resumed": self.resumed, "receipt_id": self.receipt_id, "seconds": round(self.seconds, 4),
                "bundle": self.bundle, "stores": [s.as_dict() for s in self.stores]}


def _summary(stores: Iterable[StoreResult]) -> list[dict[str, Any]]:
    out = []
    for s in stores:
        by_how: dict[str, int] = {}
        for loc in s.locations:
            by_how[loc.how] = by_how.get(loc.how, 0) + 1
        out.append({"store": s.name, "type": s.type, "count": len(s.locations), "how": by_how,
                    "deleted": s.deleted, "verified": s.verified, "error": s.error})
    return out


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _each(items: Sequence[T], fn: Callable[[T], R]) -> list[R]:
    """``fn`` over ``items`` concurrently (one thread each), results in input order; exceptions propagate."""
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=len(items), thread_name_prefix="soc2ai-dsar") as pool:
        return list(pool.map(fn, items))


class Dsar:
    """Runs requests over opened connectors, the lineage store and (optionally) the ledger."""

    def __init__(self, opened: Opened, *, lineage: LineageStore | None, log: AuditLog | None,
                 state_dir: Path, clock: Callable[[], float] = time.time,
                 progress: Callable[[str], None] | None = None) -> None:
        self._opened = opened
        self._lineage = lineage
        self._log = log
        self._state = state_dir
        self._clock = clock
        self._progress = progress or (lambda _msg: None)

    # -- subject --------------------------------------------------------------------------------
    def _subject(self, subject_id: str, identifiers: Sequence[tuple[str, str]],
                 extra_refs: Iterable[str] = ()) -> tuple[Subject, int]:
        if not subject_id.strip():
            raise Soc2AIError("subject id must not be empty")
        refs: list[str] = list(extra_refs)
        if self._log is not None:
            for ref in self._log.subject_refs(subject_id):
                if ref not in refs:
                    refs.append(ref)
        known: dict[tuple[str, str], set[str]] = {}
        nodes = 0
        if self._lineage is not None:
            for node in self._lineage.subject_nodes(subject_id):
                nodes += 1
                if node.store and node.locator and node.deleted_us is None:
                    known.setdefault((node.store, node.collection), set()).add(node.locator)
        subject = Subject(subject_id, tuple(identifiers), tuple(refs),
                          {k: frozenset(v) for k, v in known.items()})
        return subject, nodes

    def _find_one(self, c: Connector, subject: Subject) -> StoreResult:
        self._progress(f"find: {c.name}")
        res = StoreResult(c.name, c.type)
        t0 = time.perf_counter()
        try:
            res.locations = c.find(subject)
        except Soc2AIError as exc:
            res.error = str(exc)
        except Exception as exc:  # a store failing mid-scan is reported, not fatal to the others
            res.error = f"{type(exc).__name__}: {exc}"
        res.seconds = time.perf_counter() - t0
        res.notes = list(c.notes)
        return res

    def _find_all(self, subject: Subject) -> list[StoreResult]:
        """Every connector at once: most of the work happens in the stores' own processes or native code,
        so one thread per connector turns the sum of the scans into roughly the longest one."""
        results = [StoreResult(name, "?", error=f"unreachable: {why}")
                   for name, why in self._opened.unreachable.items()]
        return results + _each(self._opened.connectors, lambda c: self._find_one(c, subject))

    def _receipt(self, action: str, outcome: str, subject: Subject, stores: list[StoreResult],
                 attrs: dict[str, Any]) -> str | None:
        if self._log is None or self._log.read_only:
            return None
        from soc2ai.ledger.records import DsarRecord

        rec = DsarRecord(action=action, outcome=outcome, subject_refs=list(subject.refs),
                         locations=_summary(stores), count=sum(len(s.locations) for s in stores), attrs=attrs)
        self._log.append(rec)
        self._log.flush()
        return rec.id

    # -- find / export --------------------------------------------------------------------------
    def find(self, subject_id: str, identifiers: Sequence[tuple[str, str]] = (), *,
             receipt: bool = True) -> DsarReport:
        """Every location of the subject's data, per store, with timings."""
        t0 = time.perf_counter()
        subject, nodes = self._subject(subject_id, identifiers)
        report = DsarReport("find", self._find_all(subject), lineage_nodes=nodes)
        report.outcome = "unreachable" if report.unreachable else ("found" if report.total else "nothing_found")
        report.seconds = time.perf_counter() - t0
        if receipt:
            report.receipt_id = self._receipt("find", report.outcome, subject, report.stores,
                                              {"unreachable": report.unreachable})
        return report

    def export(self, subject_id: str, identifiers: Sequence[tuple[str, str]], out_dir: Path) -> DsarReport:
        """Write the subject's data as a bundle: one JSONL per store, copied files, a hashed manifest."""
        t0 = time.perf_counter()
        subject, nodes = self._subject(subject_id, identifiers)
        report = DsarReport("export", self._find_all(subject), lineage_nodes=nodes)
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        files: dict[str, dict[str, Any]] = {}
        by_name = {c.name: c for c in self._opened.connectors}
        for res in report.stores:
            conn = by_name.get(res.name)
            if conn is None or res.error or not res.locations:
                continue
            path = out_dir / f"{res.name}.jsonl"
            n = 0
            with path.open("wb") as fh:
                for item in conn.export(res.locations):
                    fh.write(orjson.dumps(item, default=str) + b"\n")
                    n += 1
            copy_to = getattr(conn, "copy_to", None)
            if copy_to is not None:
                copy_to(res.locations, out_dir / "files" / res.name)
            files[path.name] = {"items": n, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        manifest = {"subject_refs": list(subject.refs), "created": int(self._clock()), "files": files,
                    "stores": _summary(report.stores), "lineage_nodes": nodes}
        _write_json(out_dir / "manifest.json", manifest)
        report.bundle = str(out_dir)
        report.outcome = "incomplete" if report.unreachable else ("exported" if report.total else "nothing_found")
        report.seconds = time.perf_counter() - t0
        report.receipt_id = self._receipt("export", report.outcome, subject, report.stores,
                                          {"unreachable": report.unreachable, "files": files})
        return report

    # -- delete ---------------------------------------------------------------------------------
    def _journal_path(self, subject_id: str) -> Path:
        if self._lineage is not None:
            name = self._lineage.subject_key(subject_id)
        else:  # without a lineage key the journal name is still not the raw id
            name = hashlib.sha256(b"soc2ai-dsar-journal\x00" + subject_id.encode()).hexdigest()
        return self._state / "journal" / f"{name}.json"

    def delete(self, subject_id: str, identifiers: Sequence[tuple[str, str]] = (), *,
               dry_run: bool = True) -> DsarReport:
        """Delete everywhere (or, on a dry run, say what would go), then prove nothing remains."""
        t0 = time.perf_counter()
        if dry_run:
            report = self.find(subject_id, identifiers, receipt=False)
            report.action, report.dry_run = "delete", True
            report.outcome = "dry_run"
            report.seconds = time.perf_counter() - t0
            return report
        jpath = self._journal_path(subject_id)
        with _locked(jpath.with_name(jpath.name + ".lock")):
            journal: dict[str, Any] = orjson.loads(jpath.read_bytes()) if jpath.exists() else {}
            resumed = bool(journal)
            subject, nodes = self._subject(subject_id, identifiers, journal.get("refs", []))
            journal.setdefault("started", int(self._clock()))
            journal["refs"] = list(subject.refs)
            journal.setdefault("steps", {})
            _write_json(jpath, journal)  # refs are safe on disk before the ledger forgets them
            stores = self._find_all(subject)
            report = DsarReport("delete", stores, lineage_nodes=nodes, resumed=resumed)
            # All stores at once. The ledger's forget destroys the subject refs that locate cache entries,
            # but those were found above and are in the journal, so nothing depends on the order.
            lock = threading.Lock()
            _each(stores, lambda res: self._delete_one(res, subject, journal, jpath, lock))
            if self._lineage is not None:
                for res in stores:
                    if res.deleted is not None and not res.error:
                        by_col: dict[str, list[str]] = {}
                        for loc in res.locations:
                            by_col.setdefault(loc.collection, []).append(self._lineage_locator(res, loc))
                        for col, locs in by_col.items():
                            self._lineage.mark_deleted(res.name, col, locs)
            self._verify(stores, Subject(subject_id, tuple(identifiers), subject.refs))
            failed = [s.name for s in stores if s.error or s.verified is False]
            if self._lineage is not None and not failed:
                # Only now: the links are how a resumed run finds items no identifier points to.
                self._lineage.forget_subject(subject_id)
            report.outcome = "incomplete" if failed else "complete"
            report.seconds = time.perf_counter() - t0
            report.receipt_id = self._receipt(
                "delete", report.outcome, subject, stores,
                {"unreachable": report.unreachable, "failed": failed, "resumed": resumed,
                 "verified": [s.name for s in stores if s.verified], "seconds_ms": int(report.seconds * 1000)})
            if failed:
                journal["outcome"] = "incomplete"
                _write_json(jpath, journal)
            else:
                jpath.unlink(missing_ok=True)
        return report

    @staticmethod
    def _lineage_locator(res: StoreResult, loc: Location) -> str:
        """What lineage recorded for this item: a dataset's row key (its line number is not an id and can
        equal another row's key), else the item id."""
        return loc.detail if res.type == "dataset" and loc.detail else loc.item_id

    def _delete_one(self, res: StoreResult, subject: Subject, journal: dict[str, Any], jpath: Path,
                    lock: threading.Lock) -> None:
        def step(state: str) -> None:
            with lock:
                journal["steps"][res.name] = state
                _write_json(jpath, journal)

        conn = next((c for c in self._opened.connectors if c.name == res.name), None)
        if conn is None or res.error:
            step("unreachable")
            return
        self._progress(f"delete: {res.name}")
        step("deleting")
        t0 = time.perf_counter()
        state = "failed"
        try:
            res.deleted = conn.delete(subject, res.locations) if res.locations else 0
            state = "deleted"
        except Soc2AIError as exc:
            res.error = f"delete failed: {exc}"
        except Exception as exc:
            res.error = f"delete failed: {type(exc).__name__}: {exc}"
        res.delete_seconds = time.perf_counter() - t0
        step(state)

    def _verify(self, stores: list[StoreResult], subject: Subject) -> None:
        by_name: dict[str, Connector] = {c.name: c for c in self._opened.connectors}

        def one(res: StoreResult) -> None:
            conn = by_name.get(res.name)
            if conn is None or res.error:
                res.verified = False
                return
            self._progress(f"verify: {res.name}")
            t0 = time.perf_counter()
            try:
                conn.verify_deleted(subject)
                res.verified = True
            except VerificationError as exc:
                res.verified = False
                res.error = str(exc)
            except Soc2AIError as exc:
                res.verified = False
                res.error = f"verify failed: {exc}"
            except Exception as exc:
                res.verified = False
                res.error = f"verify failed: {type(exc).__name__}: {exc}"
            res.verify_seconds = time.perf_counter() - t0

        _each(stores, one)
