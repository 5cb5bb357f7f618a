"""Key material: the checkpoint signing key, the HMAC master key, trusted verifier keys, subject keys.

Layout of the keys directory (files 0600, directory 0700)::

    signing.key        PRIVATE+KEY+<name>+<hexid>+<base64(0x01||seed)>   (signed-note private key form)
    signing.pub        <name>+<hexid>+<base64(0x01||pub)>                  (give this to auditors)
    master.key         base64 of 32 random bytes (HMAC master key; derives lookup and wrapping keys)
    trusted/*.pub      older verifier keys, still trusted for checkpoints they signed (rotation)

Subject keys are random per subject (never derived from the master key: deriving them would let anyone
with the master key undo crypto-shredding). They are stored wrapped with AES-GCM under a key derived
from the master key, so the store alone does not reveal them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from soc2ai.errors import KeyMaterialError
from soc2ai.ledger.note import Signer, Verifier

SIGNING_KEY = "signing.key"
SIGNING_PUB = "signing.pub"
MASTER_KEY = "master.key"
TRUSTED_DIR = "trusted"


def _hkdf(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(master)


def write_secret(path: Path, data: str) -> None:
    """Create ``path`` with mode 0600 atomically (never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_secret(path: Path) -> str:
    """Read a secret file, refusing one that group or others can read or write."""
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise KeyMaterialError(f"{path}: key file missing (run `soc2ai init`)") from exc
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyMaterialError(
            f"{path}: permissions {stat.S_IMODE(st.st_mode):04o} are too open; run `chmod 600 {path}`")
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyMaterialError(f"{path}: unreadable key file: {exc}") from exc


def _encode_private(name: str, key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    kid = Signer(name, key).verifier.kid
    blob = base64.b64encode(b"\x01" + seed).decode()
    return f"PRIVATE+KEY+{name}+{kid.hex()}+{blob}"


def _decode_private(text: str, path: Path) -> Signer:
    parts = text.split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise KeyMaterialError(f"{path}: not a signed-note private key")
    try:
        raw = base64.b64decode(parts[4], validate=True)
    except ValueError as exc:
        raise KeyMaterialError(f"{path}: bad base64 in private key") from exc
    if len(raw) != 33 or raw[:1] != b"\x01":
        raise KeyMaterialError(f"{path}: not an Ed25519 private key")
    signer = Signer(parts[2], Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if signer.verifier.kid.hex() != parts[3]:
        raise KeyMaterialError(f"{path}: key id does not match the key")
    return signer


def generate_keys(keys_dir: Path, name: str, *, overwrite: bool = False) -> Verifier:
    """Create a signing key and master key under ``keys_dir`` (0600); return the public verifier."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(keys_dir, 0o700)
    if not overwrite and (keys_dir / SIGNING_KEY).exists():
        raise KeyMaterialError(f"{keys_dir / SIGNING_KEY} already exists")
    signer = Signer(name, Ed25519PrivateKey.generate())
    write_secret(keys_dir / SIGNING_KEY, _encode_private(name, signer.private_key) + "\n")
    (keys_dir / SIGNING_PUB).write_text(signer.verifier.encode() + "\n")
    if overwrite or not (keys_dir / MASTER_KEY).exists():
        write_secret(keys_dir / MASTER_KEY, base64.b64encode(os.urandom(32)).decode() + "\n")
    return signer.verifier


def rotate_signing_key(keys_dir: Path, name: str) -> Verifier:
    """Retire the current signing key into ``trusted/`` and create a new one; old checkpoints still verify."""
    old = load_signer(keys_dir)
    trusted = keys_dir / TRUSTED_DIR
    trusted.mkdir(exist_ok=True, mode=0o700)
    (trusted / f"{old.name}-{old.verifier.kid.hex()}.pub").write_text(old.verifier.encode() + "\n")
    signer = Signer(name, Ed25519PrivateKey.generate())
    write_secret(keys_dir / SIGNING_KEY, _encode_private(name, signer.private_key) + "\n")
    (keys_dir / SIGNING_PUB).write_text(signer.verifier.encode() + "\n")
    return signer.verifier


def load_signer(keys_dir: Path) -> Signer:
    """The current checkpoint signing key."""
    path = keys_dir / SIGNING_KEY
    return _decode_private(read_secret(path), path)


def load_verifiers(keys_dir: Path) -> list[Verifier]:
    """Every public key whose checkpoint signatures we accept: current plus retired ones."""
    out: list[Verifier] = []
    pub = keys_dir / SIGNING_PUB
    if pub.exists():
        out.append(Verifier.decode(pub.read_text()))
    trusted = keys_dir / TRUSTED_DIR
    if trusted.is_dir():
        out.extend(Verifier.decode(p.read_text()) for p in sorted(trusted.glob("*.pub")))
    if not out:
        raise KeyMaterialError(f"{keys_dir}: no public key to verify with (signing.pub missing)")
    return out


@dataclass(frozen=True, slots=True)
class MasterKeys:
    """Keys derived from the master key. ``lookup`` finds a subject's rows; ``wrap`` protects subject keys;
    ``anonymous`` keys the content hashes of records without a user (those cannot be shredded)."""

    lookup: bytes
    wrap: bytes
    anonymous: bytes

    @classmethod
    def load(cls, keys_dir: Path) -> MasterKeys:
        path = keys_dir / MASTER_KEY
        try:
            master = base64.b64decode(read_secret(path), validate=True)
        except ValueError as exc:
            raise KeyMaterialError(f"{path}: not base64") from exc
        if len(master) != 32:
            raise KeyMaterialError(f"{path}: master key must be 32 bytes")
        lookup = _hkdf(master, b"soc2ai/subject-lookup/v1")
        return cls(lookup, _hkdf(master, b"soc2ai/subject-wrap/v1"),
                   hmac.new(lookup, b"soc2ai/anonymous-content/v1", hashlib.sha256).digest())

    def subject_lookup(self, user_id: str) -> bytes:
        """Stable index of a subject's key rows; deleted with them on forget."""
        return hmac.new(self.lookup, user_id.encode(), hashlib.sha256).digest()

    def wrap_key(self, subject_ref: bytes, key: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self.wrap).encrypt(nonce, key, subject_ref)

    def unwrap_key(self, subject_ref: bytes, blob: bytes) -> bytes:
        return AESGCM(self.wrap).decrypt(blob[:12], blob[12:], subject_ref)


def subject_ref(subject_key: bytes, user_id: str) -> bytes:
    """HMAC(subject_key, user_id): the only form of the user id that appears in records."""
    return hmac.new(subject_key, user_id.encode(), hashlib.sha256).digest()
