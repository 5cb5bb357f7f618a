"""Dataset files (JSONL, CSV, Parquet): find rows of a subject, rewrite files atomically without them.

A rewrite holds an exclusive lock (``<file>.lock``, flock) for the whole read-filter-write, writes a
temporary file in the same directory, fsyncs it and renames it over the original, so two deletions at
once (or a crash) never leave a half-written dataset. Each rewrite appends to ``<file>.manifest.json``:
the file hash before and after, row counts, and the SHA-256 of every removed row (evidence of what went,
without keeping it). Malformed rows are reported with file and line and kept; they are still scanned
as text, so an identifier in a broken row is found and that row removed.

Discovery looks at a row's string values only (not keys, not numbers: ``"max_tokens": 1042`` does not
mention subject ``1042``), decoded (escapes such as ``\\n`` and ``\\u00eb`` resolved), ignoring case. A
case-insensitive byte pre-filter over the whole file picks the rows worth parsing.

Suffixes (any case): ``.jsonl``/``.ndjson``, ``.csv``, ``.parquet``.

Row keys (what lineage records): the row's ``id`` field when it has one, else ``sha256:<row hash>``.
"""

from __future__ import annotations

import csv
import fcntl
import functools
import hashlib
import io
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

import orjson

from soc2ai.data.connectors._match import first_hit, probes, value_hit
from soc2ai.data.connectors.interface import (
    LABEL_FIELD,
    Census,
    Expiry,
    Location,
    Subject,
    verify_by_find,
)
from soc2ai.data.settings import ConnectorSettings
from soc2ai.errors import ConnectorError

EXPIRES_FIELD = "soc2ai_expires_at"
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
# Files this connector writes next to a dataset: not datasets, not worth a note.
_OWN_SUFFIXES = (".lock", ".manifest.json", ".tmp")


def kind(path: Path) -> str | None:
    """``jsonl``, ``csv`` or ``parquet`` by suffix (any case), None when unsupported."""
    return SUFFIXES.get(path.suffix.lower())


@functools.cache
def _read_errors() -> tuple[type[BaseException], ...]:
    """What reading a broken dataset raises (pyarrow only when installed)."""
    errors: tuple[type[BaseException], ...] = (OSError, csv.Error, UnicodeError)
    try:
        import pyarrow
    except ImportError:  # pragma: no cover - extra installed in CI
        return errors
    return (*errors, pyarrow.ArrowException)


@dataclass(slots=True)
class Row:
    """One row as read: 1-based line (or row) number, parsed mapping (None if malformed), raw bytes."""

    line: int
    data: dict[str, Any] | None
    raw: bytes

    def key(self) -> str:
        """Stable row key: the ``id`` field, else a hash of the raw row."""
        if self.data is not None and self.data.get("id") not in (None, ""):
            return str(self.data["id"])
        return "sha256:" + hashlib.sha256(self.raw.strip()).hexdigest()[:32]


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``<path>.lock`` for the duration of a rewrite."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with tmp_path.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, path.stat().st_mode & 0o777 if path.exists() else 0o600)
        os.replace(tmp_path, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        tmp_path.unlink(missing_ok=True)


class DatasetConnector:
    """JSONL/CSV/Parquet files: one file, or every such file under a directory."""

    type = "dataset"

    def __init__(self, settings: ConnectorSettings, *, root: Path, clock: Callable[[], float] = time.time) -> None:
        self.name = settings.name
        self._s = settings
        self._path = (root / (settings.path or "")).resolve()
        self._clock = clock
        self.notes: list[str] = []

    # -- reading --------------------------------------------------------------------------------
    def files(self) -> list[Path]:
        """The dataset files this connector covers; other files in a directory are skipped with a note."""
        if self._path.is_file():
            if kind(self._path) is None:
                raise ConnectorError(f"{self.name}: {self._path}: unsupported dataset file type"
                                     f" (expected {', '.join(SUFFIXES)})")
            return [self._path]
        if not self._path.is_dir():
            raise ConnectorError(f"{self.name}: dataset path {self._path} does not exist")
        out = []
        for p in sorted(self._path.rglob("*")):
            if not p.is_file():
                continue
            if kind(p) is not None:
                out.append(p)
            elif not p.name.endswith(_OWN_SUFFIXES):
                self.notes.append(f"{p}: unsupported dataset file type; not scanned")
        return out

    def rows(self, path: Path) -> Iterator[Row]:
        """Rows of one file; malformed rows come with ``data=None`` and a note naming file and line."""
        k = kind(path)
        if k is None:
            raise ConnectorError(f"{self.name}: {path}: unsupported dataset file type")
        try:
            if k == "jsonl":
                yield from self._jsonl_rows(path)
            elif k == "csv":
                yield from self._csv_rows(path)
            else:
                yield from self._parquet_rows(path)
        except _read_errors() as exc:
            raise ConnectorError(f"{self.name}: cannot read {path}: {type(exc).__name__}: {exc}") from exc

    def _jsonl_row(self, path: Path, n: int, raw: bytes) -> Row:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            self.notes.append(f"{path}:{n}: malformed JSON row ({exc.msg}); kept")
            return Row(n, None, raw)
        if not isinstance(data, dict):
            self.notes.append(f"{path}:{n}: row is not a JSON object; kept")
            return Row(n, None, raw)
        return Row(n, data, raw)

    def _jsonl_rows(self, path: Path) -> Iterator[Row]:
        for n, raw in enumerate(_lines(path.read_bytes()), 1):
            if raw.strip():
                yield self._jsonl_row(path, n, raw)

    def _jsonl_validate(self, path: Path, lines: list[bytes]) -> None:
        """Report malformed rows (file and line) without building row objects for the valid ones."""
        loads, err = orjson.loads, orjson.JSONDecodeError
        for n, raw in enumerate(lines, 1):
            try:
                if not isinstance(loads(raw), dict):
                    self._jsonl_row(path, n, raw)
            except err:
                if raw.strip():
                    self._jsonl_row(path, n, raw)

    @staticmethod
    def _jsonl_candidates(data: bytes, lines: list[bytes], needles: list[bytes], known: frozenset[str],
                          hints: dict[int, str] | None = None) -> set[int]:
        """Line numbers that can match: a probe (see ``_match.probes``) occurs in them (found with bytes.find
        over the lowercased file, C speed) or their row key is in ``known``. ``hints`` (line -> key, from a
        find) are checked at their line first; only keys not confirmed there cost a pass over every row."""
        low = data.lower() if needles else data  # same length: positions map to the original lines
        positions = sorted(p for nb in needles for p in _positions(low, nb))
        out: set[int] = set()
        line, last = 1, 0
        for pos in positions:
            line += data.count(b"\n", last, pos)
            last = pos
            out.add(line)
        remaining = set(known)
        for n, key in (hints or {}).items():
            if 0 < n <= len(lines) and lines[n - 1].strip():
                raw = lines[n - 1]
                if Row(n, _maybe_dict(raw), raw).key() == key:
                    out.add(n)
                    remaining.discard(key)
        if remaining:
            for n, raw in enumerate(lines, 1):
                if raw.strip() and Row(n, _maybe_dict(raw), raw).key() in remaining:
                    out.add(n)
        return out

    def _csv_rows(self, path: Path) -> Iterator[Row]:
        with path.open("r", encoding="utf-8", newline="", errors="surrogateescape") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return
            for values in reader:
                line = reader.line_num
                raw = ",".join(values).encode("utf-8", "surrogateescape")
                if len(values) != len(header):
                    self.notes.append(f"{path}:{line}: {len(values)} fields, header has {len(header)}; kept")
                    yield Row(line, None, raw)
                    continue
                yield Row(line, dict(zip(header, values, strict=True)), raw)

    def _parquet_rows(self, path: Path) -> Iterator[Row]:
        pq = _pyarrow_parquet()
        n = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
            for data in batch.to_pylist():
                n += 1
                yield Row(n, data, orjson.dumps(data, default=str))

    # -- matching -------------------------------------------------------------------------------
    def _why(self, row: Row, subject: Subject, ids: set[str], needles: list[str], known: frozenset[str]) -> str:
        if row.data is not None and str(row.data.get(self._s.subject_field, "")) in ids:
            return "subject"
        if known and row.key() in known:
            return "lineage"
        if self._s.discovery and needles:
            hit = value_hit(row.data, needles) if row.data is not None else first_hit(row.raw, needles)
            if hit is not None:
                return "discovery"
        return ""

    def find(self, subject: Subject) -> list[Location]:
        """Rows whose subject field is the subject, whose key lineage recorded, or that mention them."""
        self.notes = []
        out: list[Location] = []
        ids = {subject.id, *subject.refs}
        needles = subject.needles()
        # A row can only match by field or discovery if a probe's bytes appear in it.
        raw_needles = probes(needles)
        for path in self.files():
            known = subject.known_ids(self.name, str(path))
            if kind(path) == "jsonl":
                data = self._read(path)
                lines = _lines(data)
                self._jsonl_validate(path, lines)
                notes = list(self.notes)
                for n in sorted(self._jsonl_candidates(data, lines, raw_needles, known)):
                    row = self._jsonl_row(path, n, lines[n - 1])
                    how = self._why(row, subject, ids, needles, known)
                    if how:
                        out.append(Location(self.name, str(path), str(n), how, row.key()))
                self.notes = notes  # candidates re-parsed above must not double the malformed notes
                continue
            for row in self.rows(path):
                if not known and not any(n in row.raw.lower() for n in raw_needles):
                    continue
                how = self._why(row, subject, ids, needles, known)
                if how:
                    out.append(Location(self.name, str(path), str(row.line), how, row.key()))
        return out

    def _read(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ConnectorError(f"{self.name}: cannot read {path}: {exc}") from exc

    def export(self, locations: Sequence[Location]) -> Iterator[dict[str, Any]]:
        """The rows at these locations (as found), parsed when possible."""
        wanted: dict[str, set[int]] = {}
        for loc in locations:
            wanted.setdefault(loc.collection, set()).add(int(loc.item_id))
        for file, lines in wanted.items():
            for row in self.rows(Path(file)):
                if row.line in lines:
                    yield {"file": file, "line": row.line,
                           "row": row.data if row.data is not None else row.raw.decode("utf-8", "replace")}

    # -- rewriting ------------------------------------------------------------------------------
    def _rewrite(self, path: Path, remove: Callable[[Row], bool], *, dry_run: bool = False,
                 only: Callable[[bytes, list[bytes]], set[int]] | None = None) -> int:
        """Drop rows for which ``remove`` is true, atomically and under the file lock; return the count.

        For JSONL, ``only`` narrows which lines are even considered (the rest are kept untouched)."""
        with file_lock(path):
            if not path.exists():
                return 0
            if kind(path) == "jsonl":
                data = self._read(path)
                lines = _lines(data)
                numbers = sorted(only(data, lines)) if only else range(1, len(lines) + 1)
                doomed = [r for r in (self._jsonl_row(path, n, lines[n - 1]) for n in numbers
                                      if lines[n - 1].strip()) if remove(r)]
                if not doomed or dry_run:
                    return len(doomed)
                drop = sorted({r.line for r in doomed})
                # Copy the bytes between removed lines instead of re-joining a million lines.
                ends = list(accumulate(map(len, lines)))
                parts, cursor = [], 0
                for n in drop:
                    start = (ends[n - 2] + n - 1) if n > 1 else 0
                    parts.append(data[cursor:start])
                    cursor = min(len(data), ends[n - 1] + n)
                parts.append(data[cursor:])
                body = b"".join(parts)
                if body and not body.endswith(b"\n"):
                    body += b"\n"

                def write_jsonl(tmp: Path) -> None:
                    tmp.write_bytes(body)

                _atomic_write(path, write_jsonl)
                self._manifest(path, hashlib.sha256(data).hexdigest(), len(lines), len(lines) - len(drop), doomed,
                               after=hashlib.sha256(body).hexdigest())
                return len(doomed)
            rows = list(self.rows(path))
            doomed = [r for r in rows if remove(r)]
            if not doomed or dry_run:
                return len(doomed)
            before = _file_hash(path)
            gone = {r.line for r in doomed}
            try:
                if kind(path) == "csv":
                    _atomic_write(path, lambda tmp: self._write_csv(path, tmp, gone))
                else:
                    _atomic_write(path, lambda tmp: self._write_parquet(path, tmp, gone))
            except _read_errors() as exc:
                raise ConnectorError(f"{self.name}: cannot rewrite {path}: {type(exc).__name__}: {exc}") from exc
            self._manifest(path, before, len(rows), len(rows) - len(gone), doomed)
            return len(doomed)

    @staticmethod
    def _write_csv(src: Path, tmp: Path, gone: set[int]) -> None:
        with src.open("r", encoding="utf-8", newline="", errors="surrogateescape") as fh:
            reader = csv.reader(fh)
            buf = io.StringIO()
            writer = csv.writer(buf)
            header = next(reader, None)
            if header is not None:
                writer.writerow(header)
            for values in reader:
                if reader.line_num not in gone:
                    writer.writerow(values)
        tmp.write_text(buf.getvalue(), encoding="utf-8", errors="surrogateescape", newline="")

    @staticmethod
    def _write_parquet(src: Path, tmp: Path, gone: set[int]) -> None:
        import pyarrow as pa

        pq = _pyarrow_parquet()
        table = pq.read_table(src)
        keep = [i for i in range(table.num_rows) if i + 1 not in gone]
        # Typed indices: an empty Python list would be a null array, which take() rejects.
        pq.write_table(table.take(pa.array(keep, type=pa.int64())), tmp)

    def _manifest(self, path: Path, before: str, n_before: int, n_after: int, doomed: list[Row], *,
                  after: str | None = None) -> None:
        mpath = path.with_name(path.name + ".manifest.json")
        entries: list[Any] = orjson.loads(mpath.read_bytes()) if mpath.exists() else []
        entries.append({"ts": int(self._clock()), "sha256_before": before,
                        "sha256_after": after or _file_hash(path),
                        "rows_before": n_before, "rows_after": n_after,
                        "removed_row_sha256": [hashlib.sha256(r.raw.strip()).hexdigest() for r in doomed]})

        def write_manifest(tmp: Path) -> None:
            tmp.write_bytes(orjson.dumps(entries, option=orjson.OPT_INDENT_2))

        _atomic_write(mpath, write_manifest)

    def delete(self, subject: Subject, locations: Sequence[Location]) -> int:
        """Remove the subject's rows. Re-matched under the lock: line numbers may have moved since find."""
        self.notes = []
        ids = {subject.id, *subject.refs}
        needles = subject.needles()
        hints: dict[str, dict[int, str]] = {}
        for loc in locations:
            hints.setdefault(loc.collection, {})[int(loc.item_id)] = loc.detail
        total = 0
        raw_needles = probes(needles)
        for path in self.files():
            hint = hints.get(str(path), {})
            known = subject.known_ids(self.name, str(path)) | frozenset(hint.values())

            def matches(row: Row, k: frozenset[str] = known) -> bool:
                return bool(self._why(row, subject, ids, needles, k))

            def candidates(data: bytes, lines: list[bytes], k: frozenset[str] = known,
                           h: dict[int, str] = hint) -> set[int]:
                return self._jsonl_candidates(data, lines, raw_needles, k, h)

            total += self._rewrite(path, matches, only=candidates)
        return total

    def verify_deleted(self, subject: Subject) -> None:
        """Raise if a fresh find still sees rows of the subject."""
        verify_by_find(self, subject)

    def expire(self, expiry: Expiry, *, dry_run: bool) -> dict[str, int]:
        """Remove rows whose ``soc2ai_expires_at`` has passed."""
        self.notes = []
        counts: dict[str, int] = {}

        def past(row: Row) -> bool:
            if row.data is None:
                return False
            exp = row.data.get(EXPIRES_FIELD)
            try:
                hit = exp is not None and exp != "" and int(exp) < expiry.now_s
            except (TypeError, ValueError):
                return False
            if hit:
                label = str(row.data.get(LABEL_FIELD) or "unlabelled")
                counts[label] = counts.get(label, 0) + 1
            return hit

        for path in self.files():
            self._rewrite(path, past, dry_run=dry_run)
        return counts

    def census(self) -> list[Census]:
        """Rows and unlabelled rows per file (malformed rows count as unlabelled)."""
        out = []
        self.notes = []
        paths = self.files()
        skipped = list(self.notes)
        for path in paths:
            self.notes = []
            total = unlabelled = 0
            for row in self.rows(path):
                total += 1
                if row.data is None or not row.data.get(LABEL_FIELD):
                    unlabelled += 1
            out.append(Census(self.name, str(path), total, unlabelled, list(self.notes)))
        if skipped:  # files nobody can see into are reported, not silently left out
            if out:
                out[0].notes[:0] = skipped
            else:
                out.append(Census(self.name, str(self._path), 0, 0, skipped))
        self.notes = skipped + [n for c in out for n in c.notes if n not in skipped]
        return out

    def close(self) -> None:
        """Nothing to release."""


def _lines(data: bytes) -> list[bytes]:
    """Lines without their newline; a final newline does not make an extra empty line."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def _positions(data: bytes, needle: bytes) -> Iterator[int]:
    pos = data.find(needle)
    while pos != -1:
        yield pos
        pos = data.find(needle, pos + 1)


def _maybe_dict(raw: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - extra installed in CI
        raise ConnectorError("Parquet datasets need the 'parquet' extra (pip install soc2ai[parquet])") from exc
    return pq
