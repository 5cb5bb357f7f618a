"""A plain directory of files: matched by path or text, deleted inside the directory only."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from soc2ai.data.connectors.files import FilesConnector
from soc2ai.data.connectors.interface import Location, Subject
from soc2ai.data.settings import ConnectorSettings
from soc2ai.errors import ConnectorError, VerificationError


def conn(root: Path) -> FilesConnector:
    return FilesConnector(ConnectorSettings(name="up", type="files", path="up"), root=root)


def test_path_text_and_binary(tmp_path: Path) -> None:
    """A directory named after the subject and a text mention are found; binary content is not scanned."""
    up = tmp_path / "up"
    (up / "u-7").mkdir(parents=True)
    (up / "u-7" / "a.pdf").write_bytes(b"%PDF\x00\x01")
    (up / "note.txt").write_text("ticket from ann@example.com")
    (up / "blob.bin").write_bytes(b"\x00\x00ann@example.com")
    (up / "u-70.txt").write_text("someone else")
    c = conn(tmp_path)
    s = Subject("u-7", (("email", "ann@example.com"),))
    assert {(loc.item_id, loc.how) for loc in c.find(s)} == {("u-7/a.pdf", "subject"), ("note.txt", "discovery")}
    exported = {e["path"]: e["text"] for e in c.export(c.find(s))}
    assert exported == {"u-7/a.pdf": None, "note.txt": "ticket from ann@example.com"}
    with pytest.raises(VerificationError):
        c.verify_deleted(s)
    assert c.delete(s, c.find(s)) == 2
    c.verify_deleted(s)
    assert (up / "u-70.txt").exists() and (up / "blob.bin").exists()
    (census,) = c.census()
    assert (census.total, census.unlabelled) == (2, 2)


def test_refuses_outside_and_missing(tmp_path: Path) -> None:
    """A location escaping the directory is refused; a missing directory is a ConnectorError."""
    (tmp_path / "up").mkdir()
    (tmp_path / "secret.txt").write_text("x")
    c = conn(tmp_path)
    with pytest.raises(ConnectorError, match="outside"):
        c.delete(Subject("x"), [Location("up", str(tmp_path / "up"), "../secret.txt", "subject")])
    assert (tmp_path / "secret.txt").exists()
    with pytest.raises(ConnectorError, match="does not exist"):
        FilesConnector(ConnectorSettings(name="up", type="files", path="nope"), root=tmp_path).find(Subject("x"))


def test_path_must_name_exactly_the_subject(tmp_path: Path) -> None:
    """"ann" owns ann/ and ann.pdf, not ann-marie/ or ann.lee.pdf (path matching is not discovery)."""
    up = tmp_path / "up"
    (up / "ann").mkdir(parents=True)
    (up / "ann" / "cv.txt").write_text("ann's cv")
    (up / "ann-marie").mkdir()
    (up / "ann-marie" / "cv.txt").write_text("ann-marie's cv")
    (up / "ann.lee.pdf").write_text("x")
    (up / "ann.pdf").write_text("x")
    c = FilesConnector(ConnectorSettings(name="up", type="files", path="up", discovery=False), root=tmp_path)
    s = Subject("ann")
    assert sorted((loc.item_id, loc.how) for loc in c.find(s)) == [("ann.pdf", "subject"), ("ann/cv.txt", "subject")]
    assert c.delete(s, c.find(s)) == 2
    assert (up / "ann-marie" / "cv.txt").exists() and (up / "ann.lee.pdf").exists()


def test_json_file_text_decoded(tmp_path: Path) -> None:
    """A JSON export is matched on its decoded strings: an address after an escaped newline is found."""
    up = tmp_path / "up"
    up.mkdir()
    (up / "chat.json").write_bytes(orjson.dumps({"id": 1042, "text": "Regards\nAnn@Example.com"}))
    c = conn(tmp_path)
    assert [(loc.item_id, loc.how) for loc in c.find(Subject("u1", (("email", "ann@example.com"),)))] == [
        ("chat.json", "discovery")]
    assert c.find(Subject("1042")) == []


def test_delete_removes_the_directories_named_after_the_subject(tmp_path: Path) -> None:
    """Deleting ann/cv.txt also removes the now-empty ann/ (its name is ann's id) and the empty directories
    above it, but never the connector's own directory; verification passes only then."""
    up = tmp_path / "up"
    (up / "ann" / "old").mkdir(parents=True)  # an empty directory inside ann/ must not keep ann/ alive
    (up / "ann" / "cv.txt").write_text("ann's cv")
    (up / "team" / "ann").mkdir(parents=True)
    (up / "team" / "ann" / "photo.png").write_bytes(b"\x00png")
    c = FilesConnector(ConnectorSettings(name="up", type="files", path="up", discovery=False), root=tmp_path)
    s = Subject("ann")
    assert c.delete(s, c.find(s)) == 2
    assert up.is_dir() and list(up.iterdir()) == []
    c.verify_deleted(s)


def test_a_remaining_directory_named_after_the_subject_is_not_verified_gone(tmp_path: Path) -> None:
    """A directory called ann/ that cannot be removed (it still holds a symlink, which is never followed nor
    deleted) fails verification naming it; non-empty directories and files outside stay untouched."""
    up = tmp_path / "up"
    (up / "ann").mkdir(parents=True)
    (up / "ann" / "cv.txt").write_text("ann's cv")
    (tmp_path / "outside.txt").write_text("not the connector's")
    (up / "ann" / "link").symlink_to(tmp_path / "outside.txt")
    (up / "bob").mkdir()
    (up / "bob" / "cv.txt").write_text("bob's cv")
    c = FilesConnector(ConnectorSettings(name="up", type="files", path="up", discovery=False), root=tmp_path)
    s = Subject("ann")
    assert c.delete(s, c.find(s)) == 1
    assert (up / "ann" / "link").is_symlink() and (tmp_path / "outside.txt").exists()
    assert (up / "bob" / "cv.txt").exists()
    with pytest.raises(VerificationError, match=r"directory name\(s\) of the subject remain \(ann\)"):
        c.verify_deleted(s)
