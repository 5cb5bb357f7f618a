"""A plain directory of files (uploads, exports, transcripts): a file belongs to a subject when its
path names the subject (a directory called exactly the subject id, or a file whose name or stem is the
id: ``ann/cv.txt``, ``ann.pdf``, not ``ann-marie/`` or ``ann.lee.pdf``) or its text mentions an
identifier (JSON files by their string values, see ``_match.blob_hit``).

Deletion unlinks the file, then removes the directories it left empty (up to, not including, the
connector's directory) and empty directories named after the subject: a directory called ``ann`` is
itself the subject's id. Non-empty directories are never removed. Binary files are matched by path
only. Files over ``MAX_BYTES`` are scanned in their first ``MAX_BYTES`` only, and a note says so.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from soc2ai.data.connectors._match import blob_hit
from soc2ai.data.connectors.interface import Census, Expiry, Location, Subject, verify_by_find
from soc2ai.data.settings import ConnectorSettings
from soc2ai.errors import ConnectorError, VerificationError

MAX_BYTES = 16 << 20


def names_subject(rel: Path, subject_id: str) -> bool:
    """A path component is the subject id, or (for the file itself) its stem is."""
    if not subject_id:
        return False
    return any(part == subject_id for part in rel.parts) or rel.stem == subject_id


class FilesConnector:
    """Files under one directory, recursively."""

    type = "files"

    def __init__(self, settings: ConnectorSettings, *, root: Path) -> None:
        self.name = settings.name
        self._s = settings
        self._dir = (root / (settings.path or "")).resolve()
        self.notes: list[str] = []

    def _files(self) -> Iterator[Path]:
        if not self._dir.is_dir():
            raise ConnectorError(f"{self.name}: directory {self._dir} does not exist")
        for p in sorted(self._dir.rglob("*")):
            if p.is_file() and not p.is_symlink():
                yield p

    def find(self, subject: Subject) -> list[Location]:
        """Files named after the subject, recorded by lineage, or mentioning an identifier."""
        self.notes = []
        out = []
        needles = subject.needles()
        for path in self._files():
            rel = str(path.relative_to(self._dir))
            if names_subject(Path(rel), subject.id):
                out.append(Location(self.name, str(self._dir), rel, "subject"))
                continue
            if rel in subject.known_ids(self.name, str(self._dir)):
                out.append(Location(self.name, str(self._dir), rel, "lineage"))
                continue
            if not self._s.discovery:
                continue
            try:
                with path.open("rb") as fh:
                    data = fh.read(MAX_BYTES + 1)
            except OSError as exc:
                self.notes.append(f"{path}: unreadable ({exc})")
                continue
            if len(data) > MAX_BYTES:
                self.notes.append(f"{path}: larger than {MAX_BYTES} bytes; only the start was scanned")
            if b"\x00" in data[:8192]:
                continue  # binary: matched by path only
            hit = blob_hit(data, needles)
            if hit is not None:
                out.append(Location(self.name, str(self._dir), rel, "discovery"))
        return out

    def export(self, locations: Sequence[Location]) -> Iterator[dict[str, Any]]:
        """Each file's text (or a note that it is binary), by relative path."""
        for loc in locations:
            path = self._dir / loc.item_id
            try:
                data = path.read_bytes()
            except OSError:
                continue
            text = None if b"\x00" in data[:8192] else data.decode("utf-8", "replace")
            yield {"path": loc.item_id, "bytes": len(data), "text": text}

    def copy_to(self, locations: Sequence[Location], dest: Path) -> None:
        """Copy the files themselves into an export bundle."""
        for loc in locations:
            src = self._dir / loc.item_id
            if src.is_file():
                target = dest / loc.item_id
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)

    def _subject_dirs(self, subject: Subject) -> list[Path]:
        """Directories (not symlinks) whose path below the root has a component that is the subject id."""
        if not subject.id or not self._dir.is_dir():
            return []
        return [p for p in sorted(self._dir.rglob("*"))
                if p.is_dir() and not p.is_symlink() and subject.id in p.relative_to(self._dir).parts]

    def delete(self, subject: Subject, locations: Sequence[Location]) -> int:
        """Unlink the files (inside the directory only); already-gone files are fine. Then remove the
        directories left empty, which would otherwise keep the subject's id in a path after the DSAR."""
        n = 0
        emptied: set[Path] = set()
        for loc in locations:
            path = (self._dir / loc.item_id).resolve()
            if not path.is_relative_to(self._dir):
                raise ConnectorError(f"{self.name}: refusing to delete outside {self._dir}: {loc.item_id}")
            if path.is_file():
                path.unlink()
                n += 1
                emptied.add(path.parent)
        emptied.update(self._subject_dirs(subject))
        candidates = {d for start in emptied for d in (start, *start.parents)
                      if d != self._dir and d.is_relative_to(self._dir)}
        for d in sorted(candidates, key=lambda p: len(p.parts), reverse=True):  # children before parents
            try:
                d.rmdir()  # only ever removes an empty directory
            except OSError:
                pass  # not empty (other files, a symlink) or already gone: kept
        return n

    def verify_deleted(self, subject: Subject) -> None:
        """Raise if a fresh find still sees files of the subject, or a directory still names it."""
        verify_by_find(self, subject)
        left = self._subject_dirs(subject)
        if left:
            sample = ", ".join(str(d.relative_to(self._dir)) for d in left[:5])
            raise VerificationError(f"{self.name}: {len(left)} directory name(s) of the subject remain ({sample})")

    def expire(self, expiry: Expiry, *, dry_run: bool) -> dict[str, int]:
        """Plain files carry no label, so retention does not touch them (census reports them)."""
        return {}

    def census(self) -> list[Census]:
        """Every plain file is unlabelled (no metadata to hold a label)."""
        n = sum(1 for _ in self._files())
        return [Census(self.name, str(self._dir), n, n, ["plain files carry no label"] if n else [])]

    def close(self) -> None:
        """Nothing to release."""
