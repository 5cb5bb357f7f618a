"""Signed notes and checkpoints (C2SP signed-note, Ed25519), key files and key rotation."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from soc2ai.errors import KeyMaterialError, VerificationError
from soc2ai.ledger.keys import (
    _decode_private,
    generate_keys,
    load_signer,
    load_verifiers,
    rotate_signing_key,
)
from soc2ai.ledger.note import Signer, Verifier, key_id, open_checkpoint, sign_checkpoint

# Known answer from golang.org/x/mod/sumdb/note (the reference implementation of signed notes): Ed25519
# is deterministic, so this key must reproduce this signature byte for byte.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (GO_TEXT + "\n\u2014 PeterNeumann "
           "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")
# The C2SP signed-note spec's example verifier key.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"

ROOT = hashlib.sha256(b"root").digest()


def _signer(name: str = "test") -> Signer:
    return Signer(name, Ed25519PrivateKey.generate())


def test_signed_note_matches_go_reference_vector(tmp_path: Path) -> None:
    """Our key parsing, key ids, verifier encoding and note signing reproduce the Go sumdb/note example."""
    signer = _decode_private(GO_SKEY, tmp_path / "k")
    assert signer.verifier.encode() == GO_VKEY
    assert signer.verifier.kid.hex() == "c74f20a3"
    assert signer.sign_note(GO_TEXT) == GO_NOTE
    v = Verifier.decode(GO_VKEY)
    assert v == signer.verifier


def test_spec_verifier_key_parses() -> None:
    """The C2SP spec's example verifier key decodes with the key id it states."""
    v = Verifier.decode(SPEC_VKEY)
    assert (v.name, v.kid.hex(), len(v.public_key)) == ("example.com/foo", "530d903a", 32)


def test_verifier_key_with_wrong_id_rejected() -> None:
    """A verifier key whose stated id does not match the key is refused."""
    with pytest.raises(KeyMaterialError):
        Verifier.decode(SPEC_VKEY.replace("530d903a", "530d903b"))
    with pytest.raises(KeyMaterialError):
        Verifier.decode("no-plus-signs")


def test_key_id_format() -> None:
    """Key id = first 4 bytes of SHA-256(name || '\\n' || 0x01 || pubkey); encoded as 8 lowercase hex chars."""
    s = _signer("log.example/a")
    pub = s.verifier.public_key
    assert key_id("log.example/a", pub) == hashlib.sha256(b"log.example/a\n\x01" + pub).digest()[:4]
    name, hexid, b64 = s.verifier.encode().split("+", 2)
    assert (name, hexid) == ("log.example/a", s.verifier.kid.hex())
    assert len(hexid) == 8 and hexid == hexid.lower()
    assert base64.b64decode(b64) == b"\x01" + pub


def test_checkpoint_round_trip() -> None:
    """A signed checkpoint opens to the same origin, size and root, and has the C2SP body layout."""
    s = _signer()
    cp = sign_checkpoint(s, "soc2ai/abc", 42, ROOT)
    assert cp.note.startswith(f"soc2ai/abc\n42\n{base64.b64encode(ROOT).decode()}\n\n\u2014 test ")
    got = open_checkpoint(cp.note, [s.verifier])
    assert (got.origin, got.size, got.root, got.note) == ("soc2ai/abc", 42, ROOT, cp.note)


def test_checkpoint_signed_by_other_key_rejected() -> None:
    """A checkpoint re-signed with a key we do not trust is rejected, even under the same key name."""
    good, evil = _signer("test"), _signer("test")
    note = sign_checkpoint(evil, "o", 3, ROOT).note
    with pytest.raises(VerificationError, match="not signed by any trusted key"):
        open_checkpoint(note, [good.verifier])


def test_checkpoint_with_forged_signature_for_trusted_key_id_rejected() -> None:
    """A signature line claiming a trusted key's id but made by another key fails verification."""
    good, evil = _signer("test"), _signer("test")
    body = sign_checkpoint(good, "o", 3, ROOT).body()
    sig = evil.private_key.sign(body.encode())
    note = f"{body}\n\u2014 test {base64.b64encode(good.verifier.kid + sig).decode()}\n"
    with pytest.raises(VerificationError, match="bad signature"):
        open_checkpoint(note, [good.verifier])


@pytest.mark.parametrize("edit", [
    lambda n: n.replace("\n7\n", "\n8\n", 1),                 # size
    lambda n: n.replace("o\n", "p\n", 1),                     # origin
    lambda n: n.replace(base64.b64encode(ROOT).decode(), base64.b64encode(bytes(32)).decode()),  # root
    lambda n: n.replace("\n\n", "\n", 1),                     # signature separator gone
    lambda n: n.split("\n\n")[0] + "\n\n",                    # signature removed
    lambda n: n.replace("\u2014", "-"),                       # not a signature line
    lambda n: n[:-6] + ("A" if n[-6] != "A" else "B") + n[-5:],  # signature bytes
])
def test_tampered_checkpoint_rejected(edit) -> None:  # type: ignore[no-untyped-def]
    """Any edit to a checkpoint's body or signature makes it fail to open."""
    s = _signer()
    note = sign_checkpoint(s, "o", 7, ROOT).note
    bad = edit(note)
    assert bad != note
    with pytest.raises(VerificationError):
        open_checkpoint(bad, [s.verifier])


def test_checkpoint_with_non_canonical_size_rejected() -> None:
    """A size with leading zeros or a sign is not accepted as the same checkpoint."""
    s = _signer()
    for size in ("07", "+7", " 7"):
        note = s.sign_note(f"o\n{size}\n{base64.b64encode(ROOT).decode()}\n")
        with pytest.raises(VerificationError):
            open_checkpoint(note, [s.verifier])


def test_generated_key_files_are_private_and_load(tmp_path: Path) -> None:
    """generate_keys writes 0600 secrets in a 0700 directory; signer and verifier match."""
    keys = tmp_path / "keys"
    v = generate_keys(keys, "test")
    assert oct(os.stat(keys).st_mode & 0o777) == "0o700"
    for name in ("signing.key", "master.key"):
        assert oct(os.stat(keys / name).st_mode & 0o777) == "0o600"
    assert load_signer(keys).verifier == v
    assert load_verifiers(keys) == [v]
    with pytest.raises(KeyMaterialError, match="already exists"):
        generate_keys(keys, "test")


def test_rotation_keeps_old_checkpoints_verifiable(tmp_path: Path) -> None:
    """After rotate_signing_key, checkpoints signed by the old key still verify and new ones use the new key."""
    keys = tmp_path / "keys"
    generate_keys(keys, "test")
    old_cp = sign_checkpoint(load_signer(keys), "o", 1, ROOT)
    new_v = rotate_signing_key(keys, "test2")
    new_cp = sign_checkpoint(load_signer(keys), "o", 2, ROOT)
    vs = load_verifiers(keys)
    assert vs[0] == new_v and len(vs) == 2
    assert open_checkpoint(old_cp.note, vs).size == 1
    assert open_checkpoint(new_cp.note, vs).size == 2
    with pytest.raises(VerificationError):
        open_checkpoint(old_cp.note, [new_v])  # the old key alone is what makes old notes valid


def test_signer_name_with_space_or_plus_rejected() -> None:
    """Key names containing spaces or '+' would break the note format and are refused."""
    for name in ("a b", "a+b", ""):
        with pytest.raises(KeyMaterialError):
            _signer(name)
