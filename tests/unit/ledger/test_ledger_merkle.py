"""RFC 6962 / RFC 9162 Merkle tree: published known answers and property-based round trips.

Known answers are the certificate-transparency test vectors, copied verbatim from
google/certificate-transparency ``python/ct/crypto/in_memory_merkle_tree_test.py`` and
transparency-dev/merkle ``testonly/constants.go`` / ``proof/verify_test.go`` (0-based leaf indexes here;
the Go file numbers leaves from 1).
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soc2ai.errors import VerificationError
from soc2ai.ledger.merkle import (
    EMPTY_ROOT,
    consistency_path,
    frontier_append,
    frontier_root,
    inclusion_path,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

LEAVES = [h(x) for x in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                         "606162636465666768696a6b6c6d6e6f"]]
ROOTS = [h(x) for x in [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # empty tree
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]]
# Level-0 node hashes (the leaf hashes) of the 8 leaves, from NodeHashes() in testonly/constants.go.
LEAF_HASHES = [h(x) for x in [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
]]
INCLUSION = [  # (index, size, path)
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]


def _mth_fn(hashes: list[bytes]):  # type: ignore[no-untyped-def]
    """Reference MTH(D[a:b]) straight from the RFC's recursive definition."""

    def mth(a: int, b: int) -> bytes:
        n = b - a
        if n == 0:
            return EMPTY_ROOT
        if n == 1:
            return hashes[a]
        k = 1 << ((n - 1).bit_length() - 1)
        return node_hash(mth(a, a + k), mth(a + k, b))

    return mth


KAT_MTH = _mth_fn([leaf_hash(x) for x in LEAVES])


def test_empty_root_is_sha256_of_nothing() -> None:
    """The empty tree's root is SHA-256 of the empty string, as RFC 6962 defines it."""
    assert EMPTY_ROOT == ROOTS[0] == hashlib.sha256(b"").digest()
    assert root_from_leaf_hashes([]) == ROOTS[0]


def test_leaf_hashes_match_published_node_hashes() -> None:
    """leaf_hash(x) = SHA-256(0x00 || x) reproduces the published level-0 hashes."""
    assert [leaf_hash(x) for x in LEAVES] == LEAF_HASHES


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_published_vectors(size: int) -> None:
    """The tree root of the first ``size`` leaves equals the published root, via both code paths."""
    hashes = [leaf_hash(x) for x in LEAVES[:size]]
    assert root_from_leaf_hashes(hashes) == ROOTS[size]
    frontier: list[bytes] = []
    for i, lh in enumerate(hashes):
        frontier_append(frontier, i, lh)
    assert frontier_root(frontier) == ROOTS[size]
    assert KAT_MTH(0, size) == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_paths_match_published_vectors(index: int, size: int, path: list[str]) -> None:
    """Generated audit paths equal the published ones and verify against the published root."""
    got = inclusion_path(index, size, KAT_MTH)
    assert got == [h(p) for p in path]
    verify_inclusion(index, size, leaf_hash(LEAVES[index]), got, ROOTS[size])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_match_published_vectors(old: int, new: int, proof: list[str]) -> None:
    """Generated consistency proofs equal the published ones and verify between the published roots."""
    got = consistency_path(old, new, KAT_MTH)
    assert got == [h(p) for p in proof]
    verify_consistency(old, new, ROOTS[old], ROOTS[new], got)


@pytest.mark.parametrize(("index", "size", "path"), [v for v in INCLUSION if v[2]])
def test_published_inclusion_proofs_reject_corruptions(index: int, size: int, path: list[str]) -> None:
    """The corruption probes of transparency-dev/merkle (wrong index/size/leaf/root, padding) all fail."""
    proof = [h(p) for p in path]
    lh, root = leaf_hash(LEAVES[index]), ROOTS[size]
    some = h("abacaba000000000000000000000000000000000000000000060061e00123456")
    probes = [
        (index - 1, size, lh, proof, root), (index + 1, size, lh, proof, root), (index ^ 2, size, lh, proof, root),
        (index, size * 2, lh, proof, root), (index, size // 2, lh, proof, root),
        (index, size, b"WrongLeaf", proof, root), (index, size, lh, proof, ROOTS[0]), (index, size, lh, proof, some),
        (index, size, lh, [*proof, b""], root), (index, size, lh, [*proof, root], root),
        (index, size, lh, [b"", *proof], root), (index, size, lh, [root, *proof], root),
        (index, size, lh, proof[:-1], root),
    ]
    if len(proof) > 1:
        probes.append((index, size, lh, [proof[0], some, *proof[1:]], root))
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        probes.append((index, size, lh, bad, root))
    for p_index, p_size, p_leaf, p_proof, p_root in probes:
        if p_index == index and p_size == size and p_leaf == lh and p_proof == proof and p_root == root:
            continue  # e.g. index ^ 2 == index is impossible, but keep the probe list honest
        with pytest.raises(VerificationError):
            verify_inclusion(p_index, p_size, p_leaf, p_proof, p_root)


@pytest.mark.parametrize(("old", "new", "proof"), [v for v in CONSISTENCY if v[2]])
def test_published_consistency_proofs_reject_corruptions(old: int, new: int, proof: list[str]) -> None:
    """The corruption probes of transparency-dev/merkle for consistency proofs all fail."""
    pr = [h(p) for p in proof]
    r1, r2 = ROOTS[old], ROOTS[new]
    probes = [
        (old - 1, new, r1, r2, pr), (old + 1, new, r1, r2, pr), (old ^ 2, new, r1, r2, pr),
        (old, new * 2, r1, r2, pr), (old, new // 2, r1, r2, pr),
        (old, new, b"WrongRoot", r2, pr), (old, new, r1, b"WrongRoot", pr), (old, new, r2, r1, pr),
        (old, new, r1, r2, []), (old, new, r1, r2, [*pr, b""]), (old, new, r1, r2, [*pr, r1]),
        (old, new, r1, r2, [*pr, r2]), (old, new, r1, r2, [b"", *pr]), (old, new, r1, r2, [r1, *pr]),
        (old, new, r1, r2, [r2, *pr]), (old, new, r1, r2, [pr[0], *pr]), (old, new, r1, r2, pr[:-1]),
    ]
    for i in range(len(pr)):
        bad = list(pr)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((old, new, r1, r2, bad))
    for p in probes:
        with pytest.raises(VerificationError):
            verify_consistency(*p)


def test_degenerate_consistency_cases() -> None:
    """Equal sizes need equal roots and an empty proof; size 0 is consistent with anything; time travel fails."""
    verify_consistency(0, 0, ROOTS[0], ROOTS[0], [])
    verify_consistency(0, 5, ROOTS[0], ROOTS[5], [])
    verify_consistency(3, 3, ROOTS[3], ROOTS[3], [])
    for args in [(1, 1, ROOTS[1], ROOTS[2], []), (1, 1, ROOTS[1], ROOTS[1], [ROOTS[0]]),
                 (0, 1, ROOTS[0], ROOTS[1], [ROOTS[0]]), (2, 1, ROOTS[2], ROOTS[1], []),
                 (1, 2, ROOTS[1], ROOTS[2], [])]:
        with pytest.raises(VerificationError):
            verify_consistency(*args)


def test_inclusion_outside_tree_rejected() -> None:
    """Index >= size (including the empty tree) never verifies."""
    for index, size in [(0, 0), (1, 0), (2, 1), (1, 1)]:
        with pytest.raises(VerificationError):
            verify_inclusion(index, size, LEAF_HASHES[0], [], ROOTS[1])


# -- Hypothesis round trips over trees up to a few hundred leaves -----------------------------------

MAX = 300
_ALL = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(MAX)]
_HASHES = [leaf_hash(x) for x in _ALL]
_MTH = _mth_fn(_HASHES)
_ROOT_CACHE: dict[int, bytes] = {}


def _root(n: int) -> bytes:
    if n not in _ROOT_CACHE:
        _ROOT_CACHE[n] = root_from_leaf_hashes(_HASHES[:n])
    return _ROOT_CACHE[n]


def _flip(proof: list[bytes], which: int, bit: int) -> list[bytes]:
    out = list(proof)
    b = bytearray(out[which])
    b[bit // 8] ^= 1 << (bit % 8)
    out[which] = bytes(b)
    return out


@st.composite
def _index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX))
    return draw(st.integers(0, size - 1)), size


@settings(max_examples=300, deadline=None)
@given(_index_and_size())
def test_frontier_root_equals_rfc_definition(pair: tuple[int, int]) -> None:
    """The incremental frontier root equals the recursive RFC definition for every size."""
    _, size = pair
    assert _root(size) == _MTH(0, size)


@settings(max_examples=400, deadline=None)
@given(_index_and_size(), st.data())
def test_inclusion_round_trip_and_tamper(pair: tuple[int, int], data: st.DataObject) -> None:
    """Every generated inclusion proof verifies; a flipped bit, wrong index, size or leaf never does."""
    index, size = pair
    proof = inclusion_path(index, size, _MTH)
    root = _root(size)
    verify_inclusion(index, size, _HASHES[index], proof, root)
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        with pytest.raises(VerificationError):
            verify_inclusion(index, size, _HASHES[index], _flip(proof, which, data.draw(st.integers(0, 255))), root)
    with pytest.raises(VerificationError):
        verify_inclusion(index, size, _flip([_HASHES[index]], 0, data.draw(st.integers(0, 255)))[0], proof, root)
    with pytest.raises(VerificationError):
        verify_inclusion(index, size, _HASHES[index], proof, _flip([root], 0, data.draw(st.integers(0, 255)))[0])
    other = data.draw(st.integers(0, MAX).filter(lambda i: i != index))
    with pytest.raises(VerificationError):
        verify_inclusion(other, size, _HASHES[index], proof, root)
    # A path does not bind the size by itself (size 3 and 4 share index 0's path shape: the signed
    # checkpoint binds size and root together), so probe the sizes that change the path's shape.
    for other_size in (size * 2, size // 2):
        with pytest.raises(VerificationError):
            verify_inclusion(index, other_size, _HASHES[index], proof, root)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, MAX), st.integers(0, MAX), st.data())
def test_consistency_round_trip_and_tamper(a: int, b: int, data: st.DataObject) -> None:
    """Every generated consistency proof verifies; a flipped bit or wrong size/root never does."""
    old, new = min(a, b), max(a, b)
    proof = consistency_path(old, new, _MTH)
    verify_consistency(old, new, _root(old), _root(new), proof)
    if not proof:
        return  # trivial cases (0 -> n, n -> n) carry no proof to tamper with
    which = data.draw(st.integers(0, len(proof) - 1))
    with pytest.raises(VerificationError):
        verify_consistency(old, new, _root(old), _root(new), _flip(proof, which, data.draw(st.integers(0, 255))))
    with pytest.raises(VerificationError):
        verify_consistency(old, new, _flip([_root(old)], 0, 3)[0], _root(new), proof)
    with pytest.raises(VerificationError):
        verify_consistency(old, new, _root(old), _flip([_root(new)], 0, 5)[0], proof)
    wrong_old = data.draw(st.integers(1, MAX).filter(lambda s: s != old))
    if wrong_old <= new:
        with pytest.raises(VerificationError):
            verify_consistency(wrong_old, new, _root(old), _root(new), proof)
    for wrong_new in (new * 2, new // 2):
        if wrong_new >= old:
            with pytest.raises(VerificationError):
                verify_consistency(old, wrong_new, _root(old), _root(new), proof)


def test_every_pair_up_to_64_round_trips() -> None:
    """Exhaustively, for all 0 <= m <= n <= 64 and every leaf, proofs generated verify."""
    for n in range(1, 65):
        for i in range(n):
            verify_inclusion(i, n, _HASHES[i], inclusion_path(i, n, _MTH), _root(n))
        for m in range(n + 1):
            verify_consistency(m, n, _root(m), _root(n), consistency_path(m, n, _MTH))
