"""Checkpoints as C2SP signed notes (tlog-checkpoint + signed-note, Ed25519).

Checkpoint body::

    <origin>
    <tree size>
    <base64 root hash>

followed by a blank line and one signature line per key: ``— <key name> <base64(key id || signature)>``.
The key id is the first 4 bytes of SHA-256(name || "\\n" || 0x01 || public key); verifier keys use the
``<name>+<hex key id>+<base64(0x01 || public key)>`` text form, so Go's ``golang.org/x/mod/sumdb/note``
and other C2SP tooling can check our checkpoints too.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from soc2ai.errors import KeyMaterialError, VerificationError

_ALG_ED25519 = b"\x01"
_SIG_PREFIX = "\u2014 "  # em dash + space, as the signed-note spec requires



def key_id(name: str, public_key: bytes) -> bytes:
    """4-byte key id of an Ed25519 key in the signed-note scheme."""
    return hashlib.sha256(name.encode() + b"\n" + _ALG_ED25519 + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise KeyMaterialError(f"invalid key name {name!r}: no spaces or '+' allowed")


@dataclass(frozen=True, slots=True)
class Verifier:
    """A public key that can check note signatures."""

    name: str
    public_key: bytes

    @property
    def kid(self) -> bytes:
        return key_id(self.name, self.public_key)

    def encode(self) -> str:
        """``name+hexid+base64(0x01||pub)``."""
        return f"{self.name}+{self.kid.hex()}+{base64.b64encode(_ALG_ED25519 + self.public_key).decode()}"

    @classmethod
    def decode(cls, text: str) -> Verifier:
        """Parse the ``name+hexid+base64`` form, checking the id matches."""
        try:
            name, hexid, b64 = text.strip().split("+", 2)
            raw = base64.b64decode(b64, validate=True)
        except ValueError as exc:
            raise KeyMaterialError(f"malformed verifier key {text.strip()[:40]!r}") from exc
        if len(raw) != 33 or raw[:1] != _ALG_ED25519:
            raise KeyMaterialError("verifier key is not an Ed25519 key")
        v = cls(name, raw[1:])
        if v.kid.hex() != hexid.lower():
            raise KeyMaterialError(f"verifier key id {hexid} does not match its key")
        return v

    def verify(self, message: bytes, signature: bytes) -> None:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature as exc:
            raise VerificationError(f"bad signature by key {self.name}") from exc


@dataclass(frozen=True, slots=True)
class Signer:
    """An Ed25519 private key with its note key name."""

    name: str
    private_key: Ed25519PrivateKey
    kid: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        # Derived once: the sealer signs a checkpoint per batch.
        object.__setattr__(self, "kid", self.verifier.kid)

    @property
    def verifier(self) -> Verifier:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        pub = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Verifier(self.name, pub)

    def sign_note(self, text: str) -> str:
        """Return ``text`` as a signed note (text must end with a newline)."""
        if not text.endswith("\n"):
            raise ValueError("note text must end with a newline")
        sig = self.private_key.sign(text.encode())
        blob = base64.b64encode(self.kid + sig).decode()
        return f"{text}\n{_SIG_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: origin, size and root hash, plus the signed note text when signed."""

    origin: str
    size: int
    root: bytes
    note: str = ""

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def sign_checkpoint(signer: Signer, origin: str, size: int, root: bytes) -> Checkpoint:
    """Build and sign a checkpoint."""
    cp = Checkpoint(origin, size, root)
    return Checkpoint(origin, size, root, signer.sign_note(cp.body()))


def open_checkpoint(note: str, verifiers: list[Verifier]) -> Checkpoint:
    """Parse a signed checkpoint note and check it carries a valid signature by a trusted key.

    Raises VerificationError when no trusted key signed it or any signature by a trusted key is bad.
    """
    if not isinstance(note, str):  # e.g. a BLOB stored where the note's text belongs
        raise VerificationError(f"malformed checkpoint note: {type(note).__name__}, not text")
    text, sep, sigs = note.partition("\n\n")
    if not sep or not text:
        raise VerificationError("malformed checkpoint note: no signature block")
    text += "\n"
    lines = text.split("\n")
    try:
        origin, size_s, root_b64 = lines[0], lines[1], lines[2]
        size = int(size_s)
        root = base64.b64decode(root_b64, validate=True)
    except (IndexError, ValueError) as exc:
        raise VerificationError("malformed checkpoint body") from exc
    if not origin or size < 0 or len(root) != 32 or size_s != str(size):
        raise VerificationError("malformed checkpoint body")
    by_id = {(v.name, v.kid): v for v in verifiers}
    good = 0
    for line in sigs.splitlines():
        if not line.startswith(_SIG_PREFIX):
            raise VerificationError("malformed signature line in checkpoint")
        try:
            name, blob_b64 = line[len(_SIG_PREFIX):].split(" ")
            blob = base64.b64decode(blob_b64, validate=True)
        except ValueError as exc:
            raise VerificationError("malformed signature line in checkpoint") from exc
        v = by_id.get((name, blob[:4]))
        if v is None:
            continue
        v.verify(text.encode(), blob[4:])
        good += 1
    if not good:
        raise VerificationError("checkpoint is not signed by any trusted key")
    return Checkpoint(origin, size, root, note)
