"""Portable proofs an auditor checks offline with only the public key (no database).

An inclusion proof bundle is JSON::

    {"type": "soc2ai.inclusion/v1", "index": 7, "leaf": "<base64 canonical record>",
     "path": ["<base64 hash>", ...], "checkpoint": "<signed note text>"}

``verify_inclusion_bundle(bundle, ["name+id+key"])`` checks the checkpoint signature, hashes the leaf,
walks the path to the signed root, and checks the record's own ``idx`` equals the proven index.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from soc2ai.errors import VerificationError
from soc2ai.ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from soc2ai.ledger.note import Checkpoint, Verifier, open_checkpoint

INCLUSION_TYPE = "soc2ai.inclusion/v1"
CONSISTENCY_TYPE = "soc2ai.consistency/v1"


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Leaf ``index`` (its canonical bytes, or None if pruned) is in the tree the checkpoint signs."""

    index: int
    leaf: bytes | None
    leaf_hash: bytes
    path: list[bytes]
    checkpoint: Checkpoint

    def to_json(self) -> dict[str, Any]:
        return {"type": INCLUSION_TYPE, "index": self.index,
                "leaf": None if self.leaf is None else _b64(self.leaf), "leaf_hash": _b64(self.leaf_hash),
                "path": [_b64(p) for p in self.path], "checkpoint": self.checkpoint.note}


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """The tree at ``new`` extends the tree at ``old``."""

    old: Checkpoint
    new: Checkpoint
    path: list[bytes]

    def to_json(self) -> dict[str, Any]:
        return {"type": CONSISTENCY_TYPE, "old_size": self.old.size, "old_root": _b64(self.old.root),
                "old_checkpoint": self.old.note, "path": [_b64(p) for p in self.path],
                "checkpoint": self.new.note}


def _verifiers(keys: list[str] | list[Verifier]) -> list[Verifier]:
    return [k if isinstance(k, Verifier) else Verifier.decode(k) for k in keys]


def _load(bundle: dict[str, Any] | str | bytes) -> dict[str, Any]:
    """A bundle as a dict; anything that is not a JSON object is a VerificationError, not a crash."""
    try:
        data = orjson.loads(bundle) if isinstance(bundle, (str, bytes)) else bundle
    except orjson.JSONDecodeError as exc:
        raise VerificationError(f"proof bundle is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise VerificationError("proof bundle is not a JSON object")
    return data


def verify_bundle(bundle: dict[str, Any] | str | bytes, keys: list[str] | list[Verifier]) -> dict[str, Any]:
    """Verify an inclusion or consistency bundle (by its ``type``); return a summary of what was proven."""
    data = _load(bundle)
    if str(data.get("type", "")).startswith("soc2ai.consistency"):
        old, new = verify_consistency_bundle(data, keys)
        # Sizes from the signed checkpoints, never the bundle's unsigned fields.
        return {"ok": True, "type": "consistency", "old_size": old.size, "new_size": new.size}
    record = verify_inclusion_bundle(data, keys)
    return {"ok": True, "type": "inclusion", "index": int(data["index"]), "record": record}


def verify_inclusion_bundle(bundle: dict[str, Any] | str | bytes, keys: list[str] | list[Verifier]) -> dict[str, Any]:
    """Verify an inclusion bundle; return the proven record (or ``{}`` if its body was pruned).

    Raises VerificationError on any mismatch.
    """
    data = _load(bundle)
    try:
        if data["type"] != INCLUSION_TYPE:
            raise VerificationError(f"not an inclusion proof: {data['type']!r}")
        index = int(data["index"])
        path = [base64.b64decode(p, validate=True) for p in data["path"]]
        leaf = None if data.get("leaf") is None else base64.b64decode(data["leaf"], validate=True)
        lh = leaf_hash(leaf) if leaf is not None else base64.b64decode(data["leaf_hash"], validate=True)
        note = str(data["checkpoint"])
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationError(f"malformed inclusion proof: {exc}") from exc
    cp = open_checkpoint(note, _verifiers(keys))
    verify_inclusion(index, cp.size, lh, path, cp.root)
    if leaf is None:
        return {}
    record: dict[str, Any] = orjson.loads(leaf)
    if record.get("idx") != index:
        raise VerificationError("record's own idx differs from the proven index", index=index)
    return record


def verify_consistency_bundle(bundle: dict[str, Any] | str | bytes,
                              keys: list[str] | list[Verifier]) -> tuple[Checkpoint, Checkpoint]:
    """Verify a consistency bundle: both checkpoints signed, the new tree extends the old one, and the
    bundle's own ``old_size``/``old_root`` (unsigned copies) agree with the old checkpoint.

    Returns the verified (old, new) checkpoints.
    """
    data = _load(bundle)
    try:
        if data["type"] != CONSISTENCY_TYPE:
            raise VerificationError(f"not a consistency proof: {data['type']!r}")
        path = [base64.b64decode(p, validate=True) for p in data["path"]]
        old_note, new_note = str(data["old_checkpoint"]), str(data["checkpoint"])
        old_size = data.get("old_size")
        old_root = None if data.get("old_root") is None else base64.b64decode(data["old_root"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationError(f"malformed consistency proof: {exc}") from exc
    vs = _verifiers(keys)
    old, new = open_checkpoint(old_note, vs), open_checkpoint(new_note, vs)
    verify_consistency(old.size, new.size, old.root, new.root, path)
    # A reader may take these fields at face value: a bundle whose copies disagree with what is signed
    # is refused rather than reported as verified.
    if old_size is not None and (type(old_size) is not int or old_size != old.size):
        raise VerificationError(f"bundle's old_size {old_size!r} differs from its signed old checkpoint ({old.size})")
    if old_root is not None and old_root != old.root:
        raise VerificationError("bundle's old_root differs from its signed old checkpoint")
    return old, new
