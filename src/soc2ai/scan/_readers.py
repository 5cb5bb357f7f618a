"""Streaming record readers and the redacted-copy writer for the dataset gate."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from soc2ai.errors import ConfigError
from soc2ai.scan.interface import Finding
from soc2ai.scan.redact import redact

ErrorFn = Callable[[str, int, str], None]
Fields = list[tuple[str, str]]
# Where each field sits in its record, for the redacting writer: a key path (JSON, Parquet) or a column
# index (CSV). Field names alone are ambiguous ("user.email" as one key, repeated CSV headers).
Locators = list[Any]
_BOM = b"\xef\xbb\xbf"
_PATH_PART = re.compile(r"[^.\[\]]+|\[\d+\]")
_CSV_FIELD_LIMIT = 1 << 30
_ESCAPED = re.compile("[\udc80-\udcff]")  # undecodable bytes under errors="surrogateescape"


class HashingReader(io.RawIOBase):
    """A raw binary stream that hashes and counts what passes through (for the dataset hash, progress)."""

    def __init__(self, fh: BinaryIO, digest: Any, on_bytes: Callable[[int], None] | None) -> None:
        super().__init__()
        self._fh = fh
        self._digest = digest
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._fh.read(len(b))
        n = len(data)
        b[:n] = data
        self._digest.update(data)
        if self._on_bytes is not None and n:
            self._on_bytes(n)
        return n


def string_leaves(obj: Any, prefix: str, out: Fields, locs: Locators | None = None,
                  loc: tuple[str | int, ...] = ()) -> None:
    """Every string inside ``obj`` with its dotted/indexed path (``messages[0].content``); with ``locs``,
    also each leaf's key path as a tuple (unambiguous when keys contain dots or brackets)."""
    if isinstance(obj, str):
        out.append((prefix or "$", obj))
        if locs is not None:
            locs.append(loc)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            string_leaves(v, f"{prefix}.{k}" if prefix else str(k), out, locs, (*loc, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            string_leaves(v, f"{prefix}[{i}]", out, locs, (*loc, i))


def select(obj: Any, fields: Sequence[str] | None, locs: Locators | None = None) -> Fields:
    """The strings to scan: every leaf, or the leaves under the named top-level fields."""
    out: Fields = []
    if fields is None:
        string_leaves(obj, "", out, locs)
    elif isinstance(obj, dict):
        for f in fields:
            v = obj.get(f)
            if isinstance(v, str):
                out.append((f, v))  # the common flat case, without the recursive walk
                if locs is not None:
                    locs.append((f,))
            elif v is not None:
                string_leaves(v, f, out, locs, (f,))
    return out


def set_path(obj: Any, path: str | tuple[str | int, ...], value: str) -> Any:
    """Write ``value`` at a leaf path from :func:`string_leaves` (a tuple locator, or the dotted string
    form when no key holds ``.`` or ``[``); returns the (new) root."""
    if path == "$" or path == ():
        return value
    parts = _PATH_PART.findall(path) if isinstance(path, str) else path
    cur = obj
    for i, p in enumerate(parts):
        key: Any = int(p[1:-1]) if isinstance(path, str) and p.startswith("[") else p
        if i == len(parts) - 1:
            cur[key] = value
        else:
            cur = cur[key]
    return obj


class RecordReader:
    """Yields ``(record number, raw record, fields)``; malformed records go to ``error`` and are skipped.

    With ``need_objects`` (a redacted copy), :attr:`locators` holds where each field of the record just
    yielded sits in it (see :class:`RedactWriter`).
    """

    def __init__(self, path: Path, kind: str, fields: Sequence[str] | None, digest: Any,
                 on_bytes: Callable[[int], None] | None, error: ErrorFn, *, need_objects: bool = False) -> None:
        self.path, self.kind, self.fields = path, kind, fields
        self.need_objects = need_objects
        self.digest, self.on_bytes, self.error = digest, on_bytes, error
        self.count = 0
        self.header: list[str] | None = None
        self.schema: Any = None
        self.locators: Locators = []

    def __iter__(self) -> Iterator[tuple[int, Any, Fields]]:
        if self.kind == "parquet":
            yield from self._parquet()
            return
        with self.path.open("rb") as fh:
            raw = HashingReader(fh, self.digest, self.on_bytes)
            buf = io.BufferedReader(raw, buffer_size=1 << 20)
            if self.kind == "jsonl":
                yield from self._jsonl(buf)
            elif self.kind == "csv":
                yield from self._csv(buf)
            else:
                yield from self._txt(buf)

    def _decode(self, line: bytes, n: int) -> str | None:
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.error(str(self.path), n, f"invalid UTF-8 at byte {exc.start}")
            return None

    def _jsonl(self, buf: Iterable[bytes]) -> Iterator[tuple[int, Any, Fields]]:
        raw_mode = self.fields is None and not self.need_objects
        for n, line in enumerate(buf, 1):
            if n == 1 and line.startswith(_BOM):
                line = line[len(_BOM):]  # Windows tools write one; orjson rejects it
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                text = self._decode(line, n)
                if text is not None:
                    self.error(str(self.path), n, f"malformed JSON: {exc}")
                continue
            self.count += 1
            if raw_mode:
                # Whole-record scan of the line as written (keys, numbers and strings alike): no tree
                # walk per record. JSON escapes stay escaped; use --fields to scan decoded values.
                yield n, None, [("$record", line.decode("utf-8").rstrip("\r\n"))]
            else:
                locs: Locators | None = [] if self.need_objects else None
                found = select(obj, self.fields, locs)
                self.locators = locs or []
                yield n, obj, found

    def _txt(self, buf: Iterable[bytes]) -> Iterator[tuple[int, Any, Fields]]:
        for n, line in enumerate(buf, 1):
            text = self._decode(line, n)
            if text is None:
                continue
            self.count += 1
            body = text.rstrip("\r\n")
            self.locators = [None]
            yield n, text, [("$", body)] if body else []

    def _csv(self, buf: Any) -> Iterator[tuple[int, Any, Fields]]:
        # surrogateescape: bytes that are not UTF-8 come through as lone surrogates, so a row holding them
        # is reported (it was not fully read) instead of silently turned into U+FFFD.
        text_stream = io.TextIOWrapper(buf, encoding="utf-8-sig", errors="surrogateescape", newline="")
        csv.field_size_limit(_CSV_FIELD_LIMIT)
        reader = csv.reader(text_stream)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            self.error(str(self.path), 1, f"malformed CSV header: {exc}")
            return
        if any(_ESCAPED.search(h) for h in header):
            self.error(str(self.path), 1, "invalid UTF-8 in the CSV header (replaced by U+FFFD)")
            header = [_ESCAPED.sub("\ufffd", h) for h in header]
        self.header = header
        wanted = [i for i, h in enumerate(header) if self.fields is None or h in self.fields]
        if self.fields is not None:
            missing = sorted(set(self.fields) - set(header))
            if missing:
                raise ConfigError(f"no such column(s): {', '.join(missing)}", file=str(self.path),
                                  field="--fields")
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self.error(str(self.path), reader.line_num, f"malformed CSV: {exc}")
                continue
            if _ESCAPED.search("".join(row)):  # one C call per row: cheaper than one per cell
                self.error(str(self.path), reader.line_num, "invalid UTF-8 (replaced by U+FFFD, the rest scanned)")
                row = [_ESCAPED.sub("\ufffd", c) for c in row]
            self.count += 1
            cols = [i for i in wanted if i < len(row) and row[i]]
            self.locators = cols
            yield reader.line_num, row, [(header[i], row[i]) for i in cols]

    def _parquet(self) -> Iterator[tuple[int, Any, Fields]]:
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ConfigError("parquet needs the optional extra: pip install 'soc2ai[parquet]'",
                              field="--format") from exc
        with self.path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                self.digest.update(chunk)
        pf = pq.ParquetFile(str(self.path))
        self.schema = pf.schema_arrow
        columns = [f.name for f in self.schema if self.fields is None or f.name in self.fields]
        n = 0
        for batch in pf.iter_batches(batch_size=4096):
            rows = batch.to_pylist()
            if self.on_bytes is not None:
                self.on_bytes(batch.nbytes)
            for row in rows:
                n += 1
                self.count += 1
                found: Fields = []
                locs: Locators = []
                for c in columns:
                    if row.get(c) is not None:
                        string_leaves(row[c], c, found, locs, (c,))
                self.locators = locs
                yield n, row, found


class RedactWriter:
    """Writes the cleaned copy in input order once every field of a record has been scanned."""

    def __init__(self, out: Path, kind: str, header: Callable[[], list[str] | None],
                 schema: Callable[[], Any]) -> None:
        self.out, self.kind = out, kind
        self._header, self._schema = header, schema
        self._fh = out.open("w", encoding="utf-8", newline="") if kind != "parquet" else None
        self._csv: Any = None
        self._pending: dict[int, list[Any]] = {}  # rec -> [raw, outstanding fields]
        self._order: list[int] = []
        self._rows: list[dict[str, Any]] = []
        self._pq: Any = None

    def begin(self, rec: int, raw: Any, nfields: int) -> None:
        self._pending[rec] = [raw, nfields]
        self._order.append(rec)
        self._drain()

    def field_done(self, rec: int, loc: Any, text: str, found: list[Finding]) -> None:
        """One field of ``rec`` is scanned; ``loc`` is its entry in :attr:`RecordReader.locators`."""
        entry = self._pending[rec]
        if found:
            cleaned = redact(text, found, "tag")
            if self.kind == "txt":
                entry[0] = entry[0].replace(text, cleaned, 1)
            elif self.kind == "csv":
                entry[0][loc] = cleaned
            else:
                entry[0] = set_path(entry[0], loc, cleaned)
        entry[1] -= 1
        self._drain()

    def _drain(self) -> None:
        while self._order and self._pending[self._order[0]][1] <= 0:
            rec = self._order.pop(0)
            raw, _ = self._pending.pop(rec)
            self._write(raw)

    def _write(self, raw: Any) -> None:
        fh = self._fh
        if fh is not None and self.kind == "jsonl":
            fh.write(orjson.dumps(raw).decode() + "\n")
        elif fh is not None and self.kind == "txt":
            fh.write(raw)
        elif fh is not None and self.kind == "csv":
            if self._csv is None:
                self._csv = csv.writer(fh)
                self._csv.writerow(self._header() or [])
            self._csv.writerow(raw)
        else:
            self._rows.append(raw)
            if len(self._rows) >= 4096:
                self._flush_parquet()

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=self._schema())
        if self._pq is None:
            self._pq = pq.ParquetWriter(str(self.out), table.schema)
        self._pq.write_table(table)
        self._rows = []

    def close(self, *, discard: bool = False) -> None:
        """Write what is left and close the file; ``discard`` (the scan failed) deletes it instead, since
        records still pending were never scanned and must not pass for a cleaned copy."""
        if discard:
            self._pending, self._order, self._rows = {}, [], []
            if self._pq is not None:
                self._pq.close()
            if self._fh is not None:
                self._fh.close()
            self.out.unlink(missing_ok=True)
            return
        for rec in list(self._order):
            self._write(self._pending.pop(rec)[0])
        self._order = []
        if self.kind == "parquet":
            self._flush_parquet()
            if self._pq is not None:
                self._pq.close()
        elif self._fh is not None:
            header = self._header()
            if self.kind == "csv" and self._csv is None and header is not None:
                csv.writer(self._fh).writerow(header)
            self._fh.close()
