"""The dataset gate: stream JSONL / CSV / Parquet / text files through the scanners.

Memory stays flat: records are read one at a time and scanned in batches of about 256 KB (many short
records joined by a separator the patterns cannot cross, scanned in one regex pass, findings split back
by offset). Malformed lines (bad JSON, invalid UTF-8) are reported with their line numbers and the rest
of the file is still scanned. The dataset hash is SHA-256 over the files' bytes in the order given.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from soc2ai.errors import ConfigError
from soc2ai.scan._readers import RecordReader, RedactWriter
from soc2ai.scan.interface import Finding, Scanner
from soc2ai.scan.settings import ScanSettings

Format = Literal["jsonl", "csv", "parquet", "txt"]
_SEP = "\n\x00" + " " * 60 + "\x00\n"  # wider than any context window a pattern looks at
BATCH_CHARS = 256 * 1024
MAX_ERRORS = 1000


@dataclass(frozen=True, slots=True)
class RecordFindings:
    """Findings in one field of one record (``record`` is the 1-based line or row number)."""

    path: str
    record: int
    field: str
    findings: list[Finding]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form without the matched values (no PII in reports)."""
        return {"path": self.path, "record": self.record, "field": self.field,
                "findings": [{"type": f.entity_type, "start": f.start, "end": f.end, "score": f.score,
                              "rule": f.rule_id} for f in self.findings]}


@dataclass(slots=True)
class DatasetReport:
    """Summary of one gate run."""

    paths: list[str]
    dataset_hash: str = ""
    records: int = 0
    fields_scanned: int = 0
    records_with_findings: int = 0
    bytes: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    scanners: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0
    redacted_to: str | None = None
    allow_malformed: bool = False
    # Requested fields no text was found under: a typo (--fields txet) would otherwise scan nothing and pass.
    missing_fields: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when nothing was found, every record could be read and every requested field was found.
        A record the gate could not read (bad JSON, invalid UTF-8, a pretty-printed JSON array read as
        JSONL) is content nobody screened, which a lenient training loader may still read: it fails the
        gate unless ``allow_malformed``."""
        return not self.counts and (self.error_count == 0 or self.allow_malformed) and not self.missing_fields

    @property
    def mb_per_s(self) -> float:
        """Throughput in MB/s (10**6 bytes)."""
        return self.bytes / 1e6 / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"paths": self.paths, "dataset_hash": self.dataset_hash, "passed": self.passed,
                "records": self.records, "fields_scanned": self.fields_scanned,
                "records_with_findings": self.records_with_findings, "bytes": self.bytes,
                "counts": dict(sorted(self.counts.items())), "errors": self.errors,
                "error_count": self.error_count, "scanners": self.scanners,
                "elapsed_s": round(self.elapsed_s, 3), "mb_per_s": round(self.mb_per_s, 2),
                "redacted_to": self.redacted_to, "allow_malformed": self.allow_malformed,
                "missing_fields": self.missing_fields}


def detect_format(path: Path, fmt: str | None) -> Format:
    """The format from ``fmt`` or the file extension."""
    if fmt:
        if fmt not in ("jsonl", "csv", "parquet", "txt"):
            raise ConfigError(f"unknown format {fmt!r} (jsonl, csv, parquet, txt)", field="--format")
        return fmt  # type: ignore[return-value]
    suffixes = [s.lower() for s in path.suffixes]
    if ".jsonl" in suffixes or ".ndjson" in suffixes or ".json" in suffixes:
        return "jsonl"
    if ".csv" in suffixes or ".tsv" in suffixes:
        return "csv"
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    return "txt"


class _Batcher:
    """Accumulates texts, scans them together, and hands findings back per text.

    ``emit`` is called for texts with findings, and for every text when ``emit_all`` (the redacting
    writer needs to know when each field is done).
    """

    def __init__(self, scanners: Sequence[Scanner], emit: Callable[[Any, list[Finding]], None],
                 emit_all: bool = False) -> None:
        # Pattern scanners see many records joined in one string (one regex pass per batch).
        self.joint = [s for s in scanners if s.name not in ("injection", "moderation", "ner")]
        # Whole-text classifiers score each record on its own.
        self.single = [s for s in scanners if s.name in ("injection", "moderation")]
        # NER goes through spaCy's nlp.pipe over the batch's records.
        self.batched = [s for s in scanners if s.name == "ner" and hasattr(s, "scan_batch")]
        self.emit = emit
        self.emit_all = emit_all
        self.texts: list[str] = []
        self.keys: list[Any] = []
        self.size = 0

    def add(self, key: Any, text: str) -> None:
        self.texts.append(text)
        self.keys.append(key)
        self.size += len(text)
        if self.size >= BATCH_CHARS:
            self.flush()

    def flush(self) -> None:
        texts = self.texts
        if not texts:
            return
        sep = len(_SEP)
        starts = []
        pos = 0
        for t in texts:
            starts.append(pos)
            pos += len(t) + sep
        per: dict[int, list[Finding]] = {}
        if self.joint:
            joined = _SEP.join(texts)
            for scanner in self.joint:
                for f in scanner.scan(joined):
                    i = bisect_right(starts, f.start) - 1
                    base = starts[i]
                    if f.end <= base + len(texts[i]):
                        per.setdefault(i, []).append(Finding(f.entity_type, f.start - base, f.end - base, f.score,
                                                             f.rule_id, f.scanner, f.action, f.meta))
        for scanner in self.batched:
            for i, found in enumerate(scanner.scan_batch(texts)):
                if found:
                    per.setdefault(i, []).extend(found)
        for scanner in self.single:
            for i, t in enumerate(texts):
                found = scanner.scan(t)
                if found:
                    per.setdefault(i, []).extend(found)
        if self.emit_all:
            for i, key in enumerate(self.keys):
                self.emit(key, per.get(i, []))
        else:
            for i in sorted(per):
                self.emit(self.keys[i], per[i])
        self.texts, self.keys, self.size = [], [], 0


def _scanners_for(settings: ScanSettings, injection: bool) -> list[Scanner]:
    from soc2ai.scan.injection import InjectionScanner
    from soc2ai.scan.pii import PiiScanner
    from soc2ai.scan.secrets import SecretsScanner

    scanners: list[Scanner] = []
    if settings.pii:
        # No cap on phone validations: it bounds a gateway request's latency, but here one scan covers a
        # whole batch of records, and numbers past the cap would go unreported.
        scanners.append(PiiScanner(phone_regions=settings.phone_regions,
                                   stdnum_packs_enabled=settings.stdnum_packs, max_phone_lookups=sys.maxsize))
    if settings.secrets:
        scanners.append(SecretsScanner(high_entropy=settings.high_entropy_secrets))
    if settings.ner:
        from soc2ai.scan.ner import NerScanner

        scanners.append(NerScanner(settings.ner_model))
    if injection:
        scanners.append(InjectionScanner(threshold=settings.injection_threshold,
                                         window=settings.injection_window))
    return scanners


def scan_dataset(paths: Sequence[str | Path], settings: ScanSettings | None = None, *,
                 fmt: str | None = None, fields: Sequence[str] | None = None,
                 redact_to: str | Path | None = None, injection: bool = False,
                 on_record: Callable[[RecordFindings], None] | None = None,
                 on_bytes: Callable[[int], None] | None = None,
                 scanners: Sequence[Scanner] | None = None,
                 clock: Callable[[], float] = time.perf_counter,
                 allow_malformed: bool = False) -> DatasetReport:
    """Scan files record by record; return a :class:`DatasetReport`.

    ``fields`` limits which top-level fields/columns are scanned (default: the whole record; for JSONL
    that is the line as written, keys and numbers included, with JSON escapes left as they are).
    ``redact_to`` writes a cleaned copy (one input path only; same format; type-tag redaction;
    malformed records are left out of it). ``on_record`` receives each record's findings as they are
    found; ``on_bytes`` the bytes read (progress bars). ``injection`` adds the injection classifier
    (slower: it scores each text on its own). Records that cannot be read fail the gate unless
    ``allow_malformed`` (they are reported either way).
    """
    settings = settings or ScanSettings()
    if redact_to is not None and len(paths) != 1:
        raise ConfigError("--redact-to takes exactly one input path", field="--redact-to")
    if redact_to is not None and Path(redact_to).resolve() == Path(paths[0]).resolve():
        raise ConfigError("--redact-to must not overwrite the input", field="--redact-to")
    active = list(scanners) if scanners is not None else _scanners_for(settings, injection)
    report = DatasetReport(paths=[str(p) for p in paths], scanners={s.name: s.version for s in active},
                           allow_malformed=allow_malformed)
    counts: Counter[str] = Counter()
    digest = hashlib.sha256()
    flagged: set[tuple[str, int]] = set()
    pending = set(fields or ())  # requested fields no text has been found under yet
    t0 = clock()

    def error(path: str, line: int, msg: str) -> None:
        report.error_count += 1
        if len(report.errors) < MAX_ERRORS:
            report.errors.append({"path": path, "line": line, "error": msg})

    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise ConfigError("no such file", file=str(path))
        kind = detect_format(path, fmt)
        reader = RecordReader(path, kind, fields, digest, on_bytes, error, need_objects=redact_to is not None)
        writer = (RedactWriter(Path(redact_to), kind, functools.partial(getattr, reader, "header"),
                               functools.partial(getattr, reader, "schema"))
                  if redact_to is not None else None)
        # Keyed by (record, field position, field name): names can repeat within a record.
        texts: dict[tuple[int, int, str], tuple[Any, str]] = {}

        def emit(key: tuple[int, int, str], found: list[Finding], _path: str = str(path),
                 _writer: RedactWriter | None = writer,
                 _texts: dict[tuple[int, int, str], tuple[Any, str]] = texts) -> None:
            rec, _, fld = key
            if found:
                counts.update(f.entity_type for f in found)
                flagged.add((_path, rec))
                if on_record is not None:
                    on_record(RecordFindings(_path, rec, fld, found))
            if _writer is not None:
                loc, text = _texts.pop(key)
                _writer.field_done(rec, loc, text, found)

        batcher = _Batcher(active, emit, emit_all=writer is not None)
        report.bytes += path.stat().st_size
        try:
            for rec, raw, found_fields in reader:
                if writer is not None:
                    writer.begin(rec, raw, len(found_fields))
                for i, (fld, text) in enumerate(found_fields):
                    report.fields_scanned += 1
                    if pending:
                        pending -= {f for f in pending if fld == f or fld.startswith((f + ".", f + "["))}
                    if writer is not None:
                        texts[(rec, i, fld)] = (reader.locators[i], text)
                    batcher.add((rec, i, fld), text)
            batcher.flush()
        except BaseException:
            if writer is not None:
                writer.close(discard=True)
            raise
        if writer is not None:
            writer.close()
            report.redacted_to = str(redact_to)
        report.records += reader.count
    report.dataset_hash = digest.hexdigest()
    report.missing_fields = [f for f in fields or () if f in pending]
    report.counts = dict(counts)
    report.records_with_findings = len(flagged)
    report.elapsed_s = clock() - t0
    return report
