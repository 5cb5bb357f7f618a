"""Content hashes and record ids: the fast paths give exactly what the standard constructions give."""

from __future__ import annotations

import hmac
import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from soc2ai.ledger.log import KeyedHash
from soc2ai.ledger.records import new_id


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=200), st.binary(max_size=5000))
def test_keyed_hash_is_hmac_sha256(key: bytes, data: bytes) -> None:
    """Precomputed inner/outer states give RFC 2104 HMAC-SHA256, for short, 64-byte and over-long keys."""
    mac = KeyedHash(key)
    assert mac.hexdigest(data) == hmac.digest(key, data, "sha256").hex()
    assert mac.hexdigest(data) == mac.hexdigest(data)  # the cached states are not consumed by a call


def test_keyed_hash_rfc4231_vector() -> None:
    """RFC 4231 test case 2 (key "Jefe")."""
    assert KeyedHash(b"Jefe").hexdigest(b"what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


def test_new_id_is_time_ordered_hex() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(2000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert before <= int(ids[0][:12], 16) <= time.time_ns() // 1_000_000
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)
