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
