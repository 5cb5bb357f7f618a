"""Deterministic PII tier: positives, hard negatives, offsets, and bounded time on adversarial input."""

from __future__ import annotations

import time

import pytest

from soc2ai.scan.pii import PiiScanner, card_brand, luhn_ok, ssn_ok

SC = PiiScanner()


def types(text: str, scanner: PiiScanner = SC) -> list[tuple[str, str]]:
    return [(f.entity_type, text[f.start : f.end]) for f in scanner.scan(text)]


@pytest.mark.parametrize(("text", "etype", "value"), [
    ("write to jane.doe+x@mail.example.co.uk today", "EMAIL_ADDRESS", "jane.doe+x@mail.example.co.uk"),
    ("my card is 4539 1488 0343 6467 thanks", "CREDIT_CARD", "4539 1488 0343 6467"),
    ("amex 378734493671000", "CREDIT_CARD", "378734493671000"),
    ("ssn 536-22-8726 on file", "US_SSN", "536-22-8726"),
    ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN_CODE", "GB82 WEST 1234 5698 7654 32"),
    ("from 192.168.10.254 at noon", "IP_ADDRESS", "192.168.10.254"),
    ("v6 2001:db8:85a3::8a2e:370:7334 seen", "IP_ADDRESS", "2001:db8:85a3::8a2e:370:7334"),
    ("call me on +1 415-555-2671 tonight", "PHONE_NUMBER", "+1 415-555-2671"),
    ("Phone: (894)134-3524", "PHONE_NUMBER", "(894)134-3524"),
    ("Mobile: 07700 316 475", "PHONE_NUMBER", "07700 316 475"),
    ("reach me at 030 1234567", "PHONE_NUMBER", "030 1234567"),
])
def test_detects(text: str, etype: str, value: str) -> None:
    """Each structured type is found with the exact span."""
    assert (etype, value) in types(text)


@pytest.mark.parametrize("text", [
    "order id 4539148803436468 shipped",          # Luhn fails
    "card 1234 5678 9012 3456",                    # Luhn fails
    "test card 4111 1111 1111 1111",               # published test number
    "ssn 078-05-1120",                             # Woolworth sample
    "ssn 219-09-9999",                             # SSA advertising sample
    "ssn 000-12-3456 and 666-12-3456 and 912-34-5678",
    "ssn 123-00-4567 or 123-45-0000",
    "version 10.2.0.1 released",
    "upgrade to v2.4.1.8",
    "at 2024-03-15 12:30:45.123456 UTC",
    "timestamp 1700000000123",
    "order #4829102931 confirmed",
    "invoice number 20240315 0042",
    "IBAN GB82 WEST 1234 5698 7654 33",            # mod 97 fails
    "999.10.10.10 is not an address",
    "ratio 3:2:1 and 12:30:45",
    "isbn 978-3-16-148410-0",
    "released on 12/05/2023 and 2023.05.12",
])
def test_hard_negatives(text: str) -> None:
    """Order ids, timestamps, versions, dates, sample numbers and bad checksums are not PII."""
    assert types(text) == []


def test_offsets_map_back_through_normalisation() -> None:
    """In text with hidden/full-width characters, spans still index the original string."""
    text = "\u200bcontact \uff4a\uff4f\uff45@example.com"
    found = SC.scan(text)
    assert [f.entity_type for f in found] == ["EMAIL_ADDRESS"]
    assert text[found[0].start : found[0].end] == "\uff4a\uff4f\uff45@example.com"


def test_validators() -> None:
    """Luhn, issuer prefixes and SSA rules."""
    assert luhn_ok("4539148803436467") and not luhn_ok("4539148803436468")
    assert card_brand("4539148803436467") == "visa" and card_brand("9999999999999995") is None
    assert ssn_ok("536", "22", "8726") and not ssn_ok("666", "22", "8726")


def test_entities_filter() -> None:
    """Restricting entities limits what is reported."""
    sc = PiiScanner(entities=["EMAIL_ADDRESS"])
    assert [t for t, _ in types("a@b.io 192.168.1.1", sc)] == ["EMAIL_ADDRESS"]


def test_stdnum_pack_opt_in() -> None:
    """Country packs are off by default and validate checksums when enabled."""
    text = "BSN 1112.22.333 and NIR 1 85 05 78 006 084 91"
    assert types(text) == []
    sc = PiiScanner(stdnum_packs_enabled=["nl", "fr"])
    found = dict(types(text, sc))
    assert found.get("NL_BSN") == "1112.22.333" and found.get("FR_NIR") == "1 85 05 78 006 084 91"


def test_unknown_pack_raises() -> None:
    """An unknown pack name is an error naming the pack."""
    with pytest.raises(KeyError, match="zz"):
        PiiScanner(stdnum_packs_enabled=["zz"])


@pytest.mark.parametrize("text", [
    "", "\x00\x01\x02\xff\ufffd" * 1000, "1" * 200_000, "1 " * 100_000, "1-" * 100_000, "a@" * 100_000,
    "a." * 100_000 + "@", "@" + "a." * 100_000, "(" * 50_000 + "1" * 50_000, "+1 " * 70_000,
    "1." * 100_000, ":" * 100_000 + "1", "ab12 " * 40_000, "AA11" + " AAAA" * 50_000,
])
def test_adversarial_inputs_finish_fast(text: str) -> None:
    """Pathological inputs (no catastrophic backtracking): 200 KB scans finish well within a second."""
    t0 = time.perf_counter()
    SC.scan(text)
    assert time.perf_counter() - t0 < 2.0


def test_ten_megabyte_single_line() -> None:
    """A 10 MB single line is scanned in bounded time and the PII in it is found."""
    text = ("lorem ipsum dolor sit amet " * 390_000) + " bob@example.com"
    t0 = time.perf_counter()
    found = SC.scan(text)
    assert time.perf_counter() - t0 < 10.0
    assert [f.entity_type for f in found] == ["EMAIL_ADDRESS"]


def test_phone_numbers_past_the_lookup_cap_are_still_reported() -> None:
    """The cap on phonenumbers validations bounds a request's CPU; it must not let a number through.
    A text padded with 64 decoy numbers still has the real one after them found (unvalidated), while weak
    shapes past the cap (short, no '+') are not reported without validation."""
    decoys = " ".join(f"+1 000-555-{i:04d}" for i in range(64))  # '+' shapes that fail validation
    text = f"{decoys} then +44 20 7946 0958 and 12-34-56 now"  # no phone word: no context rule
    found = types(text)
    assert ("PHONE_NUMBER", "+44 20 7946 0958") in found
    assert all(v != "12-34-56" for _, v in found)
    t0 = time.perf_counter()
    SC.scan(" ".join(f"+1 415-555-{i:04d}" for i in range(20_000)))
    assert time.perf_counter() - t0 < 2.0  # bounded: no validation past the cap
