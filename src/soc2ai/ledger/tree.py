"""Subtree hashes read from a store: leaves (level 0) and stored nodes every TILE_HEIGHT levels.

Any perfect subtree's hash needs at most 2**TILE_HEIGHT stored hashes, so proofs cost a handful of
indexed range reads even for very large logs.
"""

from __future__ import annotations

from soc2ai.errors import StoreError
from soc2ai.ledger.merkle import EMPTY_ROOT, node_hash
from soc2ai.ledger.store import TILE_HEIGHT, Store


def fold_level(hashes: list[bytes]) -> bytes:
    """Root of a perfect subtree given all its hashes at one level (a power-of-two count)."""
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


class StoredTree:
    """MTH(D[a:b]) over a store's leaves, for proof generation."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def complete(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree of height ``level`` covering leaves [index << level, (index+1) << level)."""
        base = level - level % TILE_HEIGHT
        span = 1 << (level - base)
        start = index << (level - base)
        if base == 0:
            got = self.store.leaf_hashes(start, start + span)
        else:
            got = self.store.nodes(base, start, start + span)
        if len(got) != span:
            raise StoreError(f"store is missing tree hashes at level {base} from {start} (needed {span})")
        return fold_level(got)

    def mth(self, a: int, b: int) -> bytes:
        n = b - a
        if n <= 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and a % n == 0:
            return self.complete(n.bit_length() - 1, a // n)
        k = 1 << ((n - 1).bit_length() - 1)
        return node_hash(self.mth(a, a + k), self.mth(a + k, b))
