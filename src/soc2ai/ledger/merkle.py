"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing and proofs, as pure functions.

leaf hash = SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || left || right), empty root = SHA-256("").
Proof *generation* takes a ``mth(start, end)`` callable that returns the hash of leaves ``[start, end)``,
so the store decides how to compute or look up subtree hashes. Verification needs only the proof.
Verifiers raise :class:`~soc2ai.errors.VerificationError`; they never return False.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from soc2ai.errors import VerificationError

EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256
# Hashing the one-byte prefix once and copying that state is cheaper than building 0x00 || leaf (a
# copy of the whole leaf) for every leaf: 0.67 against 1.07 µs on a 622-byte leaf here.
LEAF_PREFIX = _sha256(b"\x00")


def leaf_hash(leaf: bytes) -> bytes:
    """SHA-256(0x00 || leaf)."""
    h = LEAF_PREFIX.copy()
    h.update(leaf)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes (reference implementation, O(n))."""
    if not hashes:
        return EMPTY_ROOT
    frontier: list[bytes] = []
    for i, h in enumerate(hashes):
        frontier_append(frontier, i, h)
    return frontier_root(frontier)


# ---------------------------------------------------------------------------------------------------
# Compact range ("frontier"): the roots of the perfect subtrees that make up a tree of ``size`` leaves,
# largest first; one per set bit of ``size``. Appending is amortised O(1); the root is a right fold.


def frontier_append(frontier: list[bytes], size: int, h: bytes,
                    emit: Callable[[int, int, bytes], None] | None = None) -> None:
    """Append leaf hash ``h`` as leaf number ``size``; ``emit(level, index, hash)`` sees completed nodes."""
    level = 0
    while size & 1:
        h = _sha256(b"\x01" + frontier.pop() + h).digest()
        size >>= 1
        level += 1
        if emit is not None:
            emit(level, size, h)
    frontier.append(h)


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """The tree root given its frontier."""
    if not frontier:
        return EMPTY_ROOT
    r = frontier[-1]
    for h in reversed(frontier[:-1]):
        r = _sha256(b"\x01" + h + r).digest()
    return r


# ---------------------------------------------------------------------------------------------------
# Proof generation (RFC 9162 §2.1.3.1 PATH and §2.1.4.1 SUBPROOF)

MthFn = Callable[[int, int], bytes]


def inclusion_path(index: int, size: int, mth: MthFn) -> list[bytes]:
    """Audit path for leaf ``index`` in the tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} outside tree of size {size}")
    path: list[bytes] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            path.append(mth(lo + k, hi))
            hi = lo + k
        else:
            path.append(mth(lo, lo + k))
            lo += k
            m -= k
    path.reverse()
    return path


def consistency_path(old_size: int, new_size: int, mth: MthFn) -> list[bytes]:
    """Consistency proof from the tree of ``old_size`` leaves to the tree of ``new_size`` leaves."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"cannot prove {old_size} -> {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []

    def sub(m: int, lo: int, hi: int, complete: bool) -> None:
        n = hi - lo
        if m == n:
            if not complete:
                proof.append(mth(lo, hi))
            return
        k = _split(n)
        if m <= k:
            sub(m, lo, lo + k, complete)
            proof.append(mth(lo + k, hi))
        else:
            sub(m - k, lo + k, hi, False)
            proof.append(mth(lo, lo + k))

    sub(old_size, 0, new_size, True)
    return proof


# ---------------------------------------------------------------------------------------------------
# Verification (RFC 9162 §2.1.3.2 and §2.1.4.2)


def verify_inclusion(index: int, size: int, leaf_h: bytes, proof: Iterable[bytes], root: bytes) -> None:
    """Raise VerificationError unless ``leaf_h`` is leaf ``index`` of the tree with ``root``."""
    if not 0 <= index < size:
        raise VerificationError(f"index outside tree of size {size}", index=index)
    fn, sn, r = index, size - 1, leaf_h
    for p in proof:
        if sn == 0:
            raise VerificationError("inclusion proof too long", index=index)
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("inclusion proof too short", index=index)
    if r != root:
        raise VerificationError("inclusion proof does not lead to the checkpoint root", index=index)


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Raise VerificationError unless the tree with ``new_root`` extends the tree with ``old_root``."""
    if not 0 <= old_size <= new_size:
        raise VerificationError(f"old size {old_size} larger than new size {new_size}")
    if old_size == new_size:
        if proof:
            raise VerificationError("consistency proof must be empty for equal sizes")
        if old_root != new_root:
            raise VerificationError("roots differ for the same tree size")
        return
    if old_size == 0:
        if proof:
            raise VerificationError("consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise VerificationError("empty consistency proof")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # old tree is a perfect subtree: its root starts the chain
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("consistency proof too short")
    if fr != old_root:
        raise VerificationError(f"consistency proof does not match the old root (size {old_size})")
    if sr != new_root:
        raise VerificationError(f"consistency proof does not match the new root (size {new_size})")
