"""Dead-letter spool: an append-only, fsynced file of batches the store could not take (yet).

Frame: 4-byte big-endian length, 4-byte CRC-32 of the payload, payload (JSON). A batch counts as
acknowledged once its frame is fsynced. Frames are replayed in order; a frame with a bad CRC or a torn
tail is never skipped silently: the file is kept, renamed ``*.corrupt``, and the error is raised/reported.
Each process owns its own spool file (held with ``flock``); files left by a dead process are adopted.
"""

from __future__ import annotations

import base64
import fcntl
import os
import re
import struct
import uuid
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from soc2ai.errors import SpoolError
from soc2ai.ledger.canonical import split_encode

_HDR = struct.Struct(">II")

Subject = tuple[bytes, bytes, bytes]  # a new subject key row: (subject_ref, lookup, wrapped key)
# A record ready for sealing: its canonical JSON split where the top-level "idx" goes (split_encode), and
# the fields the store indexes: (head, tail, kind, ts, subject_ref hex or None, id).
Encoded = tuple[bytes, bytes, str, int, str | None, str]
# What a writer submits: (body without idx, or already Encoded; new subject row or None; sealed payload or None)
Item = tuple[dict[str, Any] | Encoded, Subject | None, bytes | None]
SealItem = tuple[Encoded, Subject | None, bytes | None]


def item_id(item: SealItem) -> str:
    """The record id of a sealable item. (Encoded is a plain tuple: as a NamedTuple it pickled 4x slower,
    1.08 against 0.27 µs per record, on the process sealer's hand-off.)"""
    return item[0][5]


# What encode_item raises for a body that can never be sealed (JSON cannot hold it, or a field is missing).
ENCODE_ERRORS = (TypeError, ValueError, KeyError)


def encode_item(item: Item) -> SealItem:
    """The sealable form of a submitted item (raises one of ENCODE_ERRORS for a body it cannot encode)."""
    body, subj, payload = item
    if not isinstance(body, dict):
        return body, subj, payload  # already Encoded
    head, tail = split_encode(body)
    ref = body.get("subject_ref")
    return (head, tail, str(body["kind"]), int(body["ts"]), ref, str(body["id"])), subj, payload


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: str | None) -> bytes | None:
    return None if s is None else base64.b64decode(s)


def _subject(s: list[str] | None) -> Subject | None:
    return None if s is None else (base64.b64decode(s[0]), base64.b64decode(s[1]), base64.b64decode(s[2]))


def encode_items(items: Sequence[Item]) -> bytes:
    """A spool frame (version 2): the encoded halves as JSON strings, so replay does not rebuild dicts."""
    rows = []
    for it in items:
        (head, tail, kind, ts, ref, rid), s, p = encode_item(it)
        rows.append([head.decode(), tail.decode(), kind, ts, ref, rid,
                     None if s is None else [_b64(x) for x in s], None if p is None else _b64(p)])
    return orjson.dumps({"v": 2, "items": rows})


def decode_items(data: bytes) -> list[SealItem]:
    obj = orjson.loads(data)
    out: list[SealItem] = []
    if isinstance(obj, list):  # version 1 (before 2026-11-27): bodies as JSON objects
        for body, s, p in obj:
            out.append(encode_item((body, _subject(s), _unb64(p))))
        return out
    if obj.get("v") != 2:
        raise ValueError(f"unknown spool frame version {obj.get('v')!r}")
    for head, tail, kind, ts, ref, rid, s, p in obj["items"]:
        if not (isinstance(head, str) and isinstance(tail, str) and isinstance(kind, str)
                and isinstance(ts, int) and isinstance(rid, str) and (ref is None or isinstance(ref, str))):
            raise ValueError("malformed spooled record")
        out.append(((head.encode(), tail.encode(), kind, ts, ref, rid), _subject(s), _unb64(p)))
    return out


def read_frames(path: Path) -> Iterator[list[SealItem]]:
    """Yield each batch in ``path``; raise SpoolError on a corrupt or torn frame."""
    with open(path, "rb") as fh:
        offset = 0
        while True:
            hdr = fh.read(_HDR.size)
            if not hdr:
                return
            if len(hdr) < _HDR.size:
                raise SpoolError(f"{path}: torn frame header at byte {offset}")
            length, crc = _HDR.unpack(hdr)
            data = fh.read(length)
            if len(data) < length:
                raise SpoolError(f"{path}: torn frame at byte {offset} ({len(data)} of {length} bytes)")
            if zlib.crc32(data) != crc:
                raise SpoolError(f"{path}: CRC mismatch in frame at byte {offset}")
            try:
                yield decode_items(data)
            except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
                raise SpoolError(f"{path}: undecodable frame at byte {offset}: {exc}") from exc
            offset += _HDR.size + length


class Spool:
    """This process's spool file plus any orphaned ones in the same directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.dir / f"{uuid.uuid4().hex}.spool"
        self._fd: int | None = None
        self.pending = 0          # records written to the spool and not yet replayed
        self.spooled_total = 0
        self.replayed_total = 0
        self.corrupt: list[str] = []

    def _open(self) -> int:
        if self._fd is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._fd = fd
        return self._fd

    def append(self, items: Sequence[Item]) -> None:
        """Write and fsync one batch. Raises SpoolError when the spool itself cannot be written."""
        try:
            data = encode_items(items)
        except ENCODE_ERRORS as exc:
            raise SpoolError(f"records cannot be encoded for the spool: {type(exc).__name__}: {exc}") from exc
        try:
            fd = self._open()
            os.write(fd, _HDR.pack(len(data), zlib.crc32(data)) + data)
            os.fsync(fd)
        except OSError as exc:
            raise SpoolError(f"cannot write spool {self.path}: {exc}") from exc
        self.pending += len(items)
        self.spooled_total += len(items)

    def files(self) -> list[Path]:
        """Spool files to replay, oldest first: orphans we can lock, then our own."""
        out: list[Path] = []
        for p in sorted(self.dir.glob("*.spool"), key=lambda q: q.stat().st_mtime):
            if p == self.path:
                continue
            try:
                fd = os.open(p, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # another live process owns it
            os.close(fd)
            out.append(p)
        if self.path.exists():
            out.append(self.path)
        return out

    def orphan_count(self) -> int:
        return sum(1 for p in self.files() if p != self.path)

    def done(self, path: Path, replayed: int) -> None:
        """A file was fully replayed: remove it."""
        self.replayed_total += replayed
        if path == self.path:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self.pending = 0
        path.unlink(missing_ok=True)

    def quarantine(self, path: Path, error: SpoolError) -> None:
        """Keep a corrupt file for inspection under a name replay will not pick up again."""
        target = path.with_suffix(".corrupt")
        os.replace(path, target)
        if path == self.path and self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.pending = 0
        self.corrupt.append(f"{target}: {error}")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def scrub_quarantined(directory: Path, lookup: bytes) -> int:
    """Erase, in place, the wrapped subject keys minted for ``lookup`` inside quarantined (``*.corrupt``)
    spool files; return how many were erased.

    Those files are never replayed, so ``forget`` must reach them itself or the subject's key (wrapped
    under the master key) would outlive the shredding. The file cannot be parsed (it is corrupt), so the
    rows are found by their encoded bytes: ``"<lookup b64>","<wrapped key b64>"``. The rest of the file is
    kept byte for byte for whoever inspects it.
    """
    if not directory.is_dir():
        return 0
    pattern = re.compile(rb'"' + re.escape(_b64(lookup).encode()) + rb'","([A-Za-z0-9+/]+=*)"')
    erased = 0
    for path in sorted(directory.glob("*.corrupt")):
        data = bytearray(path.read_bytes())
        hits = [m.span(1) for m in pattern.finditer(data)]
        if not hits:
            continue
        for a, b in hits:
            data[a:b] = b"A" * (b - a)
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, bytes(data))
            os.fsync(fd)
        finally:
            os.close(fd)
        erased += len(hits)
    return erased
