"""Bad key material and bad configuration fail closed with an error that says what to fix."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ledger_helpers import config_for, ensure_keys, sqlite_url
from soc2ai.config import parse_config
from soc2ai.errors import ConfigError, KeyMaterialError
from soc2ai.ledger import AuditLog


@pytest.mark.parametrize("name", ["signing.key", "master.key"])
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_group_or_world_readable_key_refused(tmp_path: Path, name: str, mode: int) -> None:
    """A key file readable by group/others stops the log from opening, naming the file and `chmod 600`."""
    keys = ensure_keys(tmp_path)
    os.chmod(keys / name, mode)
    with pytest.raises(KeyMaterialError) as info:
        AuditLog.open(config_for(sqlite_url(tmp_path), tmp_path))
    msg = str(info.value)
    assert str(keys / name) in msg and "chmod 600" in msg and f"{mode:04o}" in msg


@pytest.mark.parametrize("missing", ["signing.key", "master.key", "signing.pub"])
def test_missing_key_file_refused(tmp_path: Path, missing: str) -> None:
    """A writer with a key file missing does not start, and the error names the file."""
    keys = ensure_keys(tmp_path)
    (keys / missing).unlink()
    with pytest.raises(KeyMaterialError, match=missing.replace(".", r"\.")):
        AuditLog.open(config_for(sqlite_url(tmp_path), tmp_path))


def test_no_keys_directory_refused(tmp_path: Path) -> None:
    """Without any keys the log refuses to open (fail closed), also read-only (nothing to verify with),
    and a writer that could not start leaves no empty store behind."""
    cfg = config_for(sqlite_url(tmp_path), tmp_path)
    with pytest.raises(KeyMaterialError, match=r"signing\.key"):
        AuditLog.open(cfg)
    assert not (tmp_path / "a.db").exists()
    ensure_keys(tmp_path)
    AuditLog.open(cfg).close()
    shutil.rmtree(tmp_path / "keys")
    with pytest.raises(KeyMaterialError, match=r"signing\.pub"):
        AuditLog.open(cfg, read_only=True)


def test_mismatched_public_key_refused(tmp_path: Path) -> None:
    """A signing.pub that is not the signing key's public half is refused at open."""
    keys = ensure_keys(tmp_path)
    other = ensure_keys(tmp_path / "other")
    (keys / "signing.pub").write_text((other / "signing.pub").read_text())
    with pytest.raises(KeyMaterialError, match="does not match"):
        AuditLog.open(config_for(sqlite_url(tmp_path), tmp_path))


@pytest.mark.parametrize("content", ["", "not base64!", "QUFB\n"])
def test_malformed_master_key_refused(tmp_path: Path, content: str) -> None:
    """A master key that is empty, not base64, or not 32 bytes is refused."""
    keys = ensure_keys(tmp_path)
    (keys / "master.key").write_text(content)
    os.chmod(keys / "master.key", 0o600)
    with pytest.raises(KeyMaterialError, match=r"master\.key"):
        AuditLog.open(config_for(sqlite_url(tmp_path), tmp_path))


@pytest.mark.parametrize("algo", ["md5", "MD5", "sha1", "SHA-1", "sha-1", "sha512", "blake2b"])
def test_weak_or_unknown_hash_algorithm_rejected(algo: str) -> None:
    """Only SHA-256 is accepted; MD5/SHA-1 (or anything else) is a ConfigError naming file, line, field."""
    text = f'[project]\nname = "x"\n\n[ledger]\nbatch_ms = 10\nhash_algorithm = "{algo}"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="soc2ai.toml")
    err = info.value
    assert (err.file, err.line, err.field) == ("soc2ai.toml", 6, "ledger.hash_algorithm")
    assert algo in str(err) and "soc2ai.toml:6" in str(err)


def test_sha256_spellings_accepted() -> None:
    """'sha256' and 'SHA-256' both select SHA-256."""
    for algo in ("sha256", "SHA-256"):
        assert parse_config(f'[ledger]\nhash_algorithm = "{algo}"\n').ledger.hash_algorithm == "sha256"


@pytest.mark.parametrize(("text", "line", "field"), [
    ('[ledger]\nstore = "sqlite:///a.db"\nbatch_size = 5\n', 3, "ledger.batch_size"),          # unknown key
    ('[ledger]\nbatch_ms = "fast"\n', 2, "ledger.batch_ms"),                                   # wrong type
    ('[ledger]\nbatch_ms = 0\n', 2, "ledger.batch_ms"),                                        # out of range
    ('[ledger]\nhash_mode = "md5"\n', 2, "ledger.hash_mode"),                                  # bad choice
    ('[ledger]\nstore = "mysql://x"\n', 2, "ledger.store"),                                    # bad scheme
    ('[ledger]\nretain_payloads = "maybe"\n', 2, "ledger.retain_payloads"),
    ('[project]\nname = "x"\n[ledgr]\nstore = "sqlite:///a"\n', 3, "ledgr"),                  # unknown table
])
def test_bad_ledger_config_names_line_and_field(text: str, line: int, field: str) -> None:
    """Unknown keys, wrong types and out-of-range values are ConfigErrors naming file, line and field."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="soc2ai.toml")
    err = info.value
    assert (err.file, err.line, err.field) == ("soc2ai.toml", line, field), str(err)


def test_invalid_toml_names_line() -> None:
    """A TOML syntax error is a ConfigError with the file and line."""
    with pytest.raises(ConfigError) as info:
        parse_config('[ledger]\nstore = "a\n', source="soc2ai.toml")
    assert info.value.file == "soc2ai.toml" and info.value.line == 2
