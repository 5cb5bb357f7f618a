"""Deterministic PII detection: regex candidates, then validity checks. No model, no network.

Every pattern is written without nested ambiguous quantifiers (possessive quantifiers where a group
repeats), so scanning is linear in the input; a cheap character prefilter skips patterns that cannot
match (no ``@``: no e-mail search). Candidates are then validated: Luhn and issuer prefixes for cards,
SSA rules and published sample numbers for SSNs, mod 97 for IBANs, ``ipaddress`` for IPs,
``phonenumbers`` plus context words for phones.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence

from soc2ai.scan import stdnum_packs
from soc2ai.scan.interface import Finding
from soc2ai.scan.normalize import normalize

VERSION = "1.0.0"

# Speed note: Python's regex engine skips ahead with a C scan only when a pattern *starts* with a character
# class, so patterns begin with one and put the "not preceded by" check right after it as a two-character
# lookbehind ("[0-9](?<![\w.-][0-9])" = a digit not preceded by a word character, dot or dash).
EMAIL_RE = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}+@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)++(?![\w@])"
)
# 12-19 digits, optionally grouped by one kind of separator; possessive groups, so no backtracking.
# Numbers: one fast scan finds where a number can start (NUM_START); each type's pattern is then tried
# there with .match (the patterns keep their own "not preceded by" lookbehinds).
NUM_START = re.compile(r"[0-9+(](?:(?<![\w.][0-9+(])|(?<=\\n[0-9+(]))(?=[0-9 ().+-]{5})")
CARD_RE = re.compile(r"(?<![\w.-])[0-9]{4}(?:[ -]?[0-9]{2,6}+){2,4}+(?![\w]|[.-]\d)")
SSN_RE = re.compile(r"(?<![\w.-])[0-9]{3}([- ]?)[0-9]{2}\1[0-9]{4}(?![\w]|[.-]\d)")
# IBAN: the scan keys on the check digits (digits are rarer than capitals in prose); the country code is
# checked by lookbehind and the match is widened back over it.
IBAN_RE = re.compile(r"[0-9](?<=(?<![\w])[A-Z]{2}[0-9])[0-9](?: ?[A-Z0-9]{4}){2,7}+(?: ?[A-Z0-9]{1,3})?(?!\w)")
IBAN_RE_ANYCASE = re.compile(
    r"[A-Za-z](?<![\w][A-Za-z])[A-Za-z][0-9]{2}(?: ?[A-Za-z0-9]{4}){2,7}+(?: ?[A-Za-z0-9]{1,3})?(?!\w)")
IPV4_RE = re.compile(r"(?<![\w.])[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?![\w]|\.\d)")
# Every IPv6 address contains "::" or ":h:" .. ":hhhh:"; that literal-led scan gates the full pattern.
IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
IPV6_RE = re.compile(
    r"[0-9A-Fa-f:](?<![\w:.][0-9A-Fa-f:])[0-9A-Fa-f]{0,3}:(?:[0-9A-Fa-f]{0,4}+:){1,6}+[0-9A-Fa-f]{0,4}+(?![\w:])"
)
# Phones: optional +CC, optional (area), then digit groups joined by exactly one separator. Digit runs
# are possessive and separators mandatory between groups, so there is one way to match.
PHONE_RE = re.compile(
    r"(?:(?<=\\n)|(?<![\w.:/+@#$€£-]))"
    r"(?:\+\d{1,3}+(?:[ .-]?\(0\))?[ .-]?)?"
    r"(?:\(\d{1,5}+\)[ .-]?)?"
    r"\d++(?:(?:[ .-]|\)[ ]?| ?\()\d++\)?){0,6}+"
    r"(?:[ ]?(?:x|ext\.?|#)[ ]?\d{1,6}+)?"
    r"(?![\w:/@]|[.,-]\d)"
)
PHONE_CONTEXT_RE = re.compile(
    r"(?i)(phone|call|tel\b|tel[.:]|telephone|mobile|mobil|cell|fax|desk|office|reach|text me|sms|"
    r"whatsapp|messages to|answering at|registered|dial|contact|ring|landline|hotline|"
    r"helpline|ph[.:]|\bm[.:]|\bt[.:])"
)
SSN_CONTEXT_RE = re.compile(r"(?i)(ssn|social security|social sec|ss#|ss #|ss no|taxpayer)")
CARD_CONTEXT_RE = re.compile(r"(?i)(card|visa|mastercard|amex|credit|debit|payment|cc\b|cc#|pan\b|charge)")
NOT_CARD_CONTEXT_RE = re.compile(
    r"(?i)(order|\bid\b|invoice|tracking|ticket|logged|timestamp|epoch|serial|account|ref\b|reference|"
    r"\s*ms\b|\s*seconds|\s*bytes)")
VERSION_PREFIX_RE = re.compile(r"(?i)(?:\bv|version|ver\.?|release|build|rev\.?|firmware|kernel|os)\s*$")
NOT_PHONE_PREFIX_RE = re.compile(r"(?i)(?:apt\.?|suite|unit|no\.|zip:?|postal code:?|postcode:?|p\.?o\.? box|box)\s*$")
NOT_PHONE_CONTEXT_RE = re.compile(
    r"(?i)(licen[cs]e|passport|order|invoice|tracking|account|acct|iban|routing|ref\b|reference|serial|"
    r"address|located|sku|isbn|zip|postal|ticket|case|\bid\b|#\s*$)"
)
ADDRESS_NEXT_RE = re.compile(r" [A-Z][a-z]")
_DIGIT_RE = re.compile(r"\d")
_NON_DIGIT_RE = re.compile(r"\D")
SSN_SHAPE_RE = re.compile(r"\d{3}([- ])\d{2}\1\d{4}$")  # 3-2-4 grouping is SSN-shaped, never a phone
DATE_RE = re.compile(r"^(\d{1,4})([./-])(\d{1,2})\2(\d{1,4})$")

# Published sample / advertising SSNs that are never real.
SAMPLE_SSNS = frozenset({"078051120", "219099999", "123456789", "457555462", "111111111", "333333333",
                         "666666666", "987654320", "987654321", "987654322", "987654323", "987654324",
                         "987654325", "987654326", "987654327", "987654328", "987654329"})
TEST_CARDS = frozenset({"4111111111111111", "4242424242424242", "5555555555554444", "378282246310005",
                        "6011111111111117", "4012888888881881", "5105105105105100"})


def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) checksum over a digit string."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_brand(digits: str) -> str | None:
    """Issuer network by IIN prefix and length, or None when no network issues this shape."""
    n = len(digits)
    p2, p4, p6 = int(digits[:2]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16:
        return "mastercard"
    if p2 in (34, 37) and n == 15:
        return "amex"
    if (p4 == 6011 or p2 == 65 or 644 <= p4 // 10 <= 649 or 622126 <= p6 <= 622925) and 16 <= n <= 19:
        return "discover"
    if p2 == 35 and 16 <= n <= 19:  # JCB proper is 3528-3589; generators (Faker) use the whole 35 range
        return "jcb"
    if p4 in (1800, 2131) and n == 15:
        return "jcb"
    if (300 <= p4 // 10 <= 305 or p2 in (36, 38, 39) or p4 == 3095) and 14 <= n <= 19:
        return "diners"
    if p2 == 62 and 16 <= n <= 19:
        return "unionpay"
    if (p2 == 50 or 56 <= p2 <= 69 or p4 == 604) and 12 <= n <= 19:  # 0604: Maestro UK range generators use
        return "maestro"
    if p4 in (2200, 2201, 2202, 2203, 2204) and 16 <= n <= 19:
        return "mir"
    return None


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """SSA validity: no 000/666/9xx area, no 00 group, no 0000 serial, no published sample numbers."""
    a = int(area)
    if a == 0 or a == 666 or a >= 900 or group == "00" or serial == "0000":
        return False
    return area + group + serial not in SAMPLE_SSNS


def iban_ok(value: str) -> bool:
    """Country length/format and mod-97 check (python-stdnum)."""
    from stdnum import iban

    return bool(iban.is_valid(value))


def _looks_like_date(cand: str) -> bool:
    m = DATE_RE.match(cand)
    if not m:
        return False
    a, _, b, c = m.groups()
    x, y, z = int(a), int(b), int(c)
    if len(a) == 4:  # yyyy-mm-dd
        return 1 <= y <= 12 and 1 <= z <= 31
    return (1 <= x <= 31 and 1 <= y <= 31 and (x <= 12 or y <= 12)) and len(c) in (2, 4)


class PiiScanner:
    """Deterministic PII tier: email, phone, credit card, US SSN, IBAN, IPv4/IPv6, stdnum packs."""

    name = "pii"
    version = VERSION

    def __init__(self, *, phone_regions: Sequence[str] = ("US", "GB", "DE", "FR", "CH", "NL", "AU", "BR"),
                 stdnum_packs_enabled: Sequence[str] = (), entities: Iterable[str] | None = None,
                 max_phone_lookups: int = 64) -> None:
        self.phone_regions = tuple(r.upper() for r in phone_regions)
        self.entities = frozenset(entities) if entities is not None else None
        self.max_phone_lookups = max_phone_lookups
        self._packs = stdnum_packs.load(stdnum_packs_enabled)

    def _want(self, etype: str) -> bool:
        return self.entities is None or etype in self.entities

    def scan(self, text: str) -> list[Finding]:
        """Return PII findings with offsets into ``text``."""
        if not text:
            return []
        norm = normalize(text)
        found = self._scan_normalized(norm.text)
        if norm.identity:
            return found
        out = []
        for f in found:
            s, e = norm.span_to_original(f.start, f.end)
            out.append(Finding(f.entity_type, s, e, f.score, f.rule_id, f.scanner, f.action, f.meta))
        return out

    def _scan_normalized(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        add = out.append
        taken: list[tuple[int, int]] = []  # spans claimed by stronger types (cards, SSNs, IBANs, IPs)

        if "@" in text and self._want("EMAIL_ADDRESS"):
            for m in _at_matches(text):
                if self._email_ok(m.group()):
                    add(Finding("EMAIL_ADDRESS", m.start(), m.end(), 0.95, "pii.email", self.name))
        if _DIGIT_RE.search(text) is None:
            return out
        starts = [m.start() for m in NUM_START.finditer(text)]
        if self._want("CREDIT_CARD"):
            for m in _matches_at(CARD_RE, text, starts):
                cand = m.group()
                seps = {c for c in cand if not c.isdigit()}
                if len(seps) > 1:
                    continue
                digits = cand.replace(" ", "").replace("-", "")
                if not 12 <= len(digits) <= 19 or not luhn_ok(digits) or card_brand(digits) is None:
                    continue
                if len(set(digits)) < 3 or digits in TEST_CARDS:
                    continue
                if not seps and not self._ctx(text, m, CARD_CONTEXT_RE, before=40, after=0) and (
                        len(digits) < 14 or NOT_CARD_CONTEXT_RE.search(text, max(0, m.start() - 32), m.start())
                        or NOT_CARD_CONTEXT_RE.match(text, m.end())):
                    continue  # a bare digit run that only happens to pass Luhn: an id, a timestamp
                add(Finding("CREDIT_CARD", m.start(), m.end(), 1.0 if seps or len(digits) >= 15 else 0.8,
                            "pii.card.luhn", self.name))
                taken.append((m.start(), m.end()))
        if self._want("US_SSN"):
            for m in _matches_at(SSN_RE, text, starts):
                v, sep = m.group(), m.group(1)
                area, group, serial = v[:3], v[3 + len(sep) : 5 + len(sep)], v[-4:]
                if not ssn_ok(area, group, serial) or _overlaps(taken, m.start(), m.end()):
                    continue
                if not sep and not self._ctx(text, m, SSN_CONTEXT_RE, before=48, after=0):
                    continue
                add(Finding("US_SSN", m.start(), m.end(), 0.85 if sep else 0.7, "pii.ssn", self.name))
                taken.append((m.start(), m.end()))
        if self._want("IBAN_CODE"):
            rx = IBAN_RE_ANYCASE if "iban" in text or "IBAN" in text or "Iban" in text else IBAN_RE
            for m in rx.finditer(text):
                start = m.start() - 2 if rx is IBAN_RE else m.start()
                if iban_ok(text[start : m.end()]):
                    add(Finding("IBAN_CODE", start, m.end(), 1.0, "pii.iban.mod97", self.name))
                    taken.append((start, m.end()))
        if self._want("IP_ADDRESS"):
            if "." in text:
                for m in _matches_at(IPV4_RE, text, starts):
                    octets = m.group().split(".")
                    if any((len(o) > 1 and o[0] == "0") or int(o) > 255 for o in octets):
                        continue
                    if VERSION_PREFIX_RE.search(text, max(0, m.start() - 12), m.start()):
                        continue
                    add(Finding("IP_ADDRESS", m.start(), m.end(), 0.95, "pii.ipv4", self.name))
                    taken.append((m.start(), m.end()))
            hint = IPV6_HINT.search(text) if ":" in text else None
            if hint is not None:
                for m in IPV6_RE.finditer(text, max(0, hint.start() - 40)):
                    cand = m.group()
                    if sum(c != ":" for c in cand) < 4:
                        continue
                    try:
                        ipaddress.IPv6Address(cand)
                    except ValueError:
                        continue
                    add(Finding("IP_ADDRESS", m.start(), m.end(), 0.95, "pii.ipv6", self.name))
                    taken.append((m.start(), m.end()))
        for etype, rx, check, rule in self._packs:
            if not self._want(etype):
                continue
            for m in rx.finditer(text):
                if not _overlaps(taken, m.start(), m.end()) and check(m.group()):
                    add(Finding(etype, m.start(), m.end(), 0.85, rule, self.name))
                    taken.append((m.start(), m.end()))
        if self._want("PHONE_NUMBER"):
            self._phones(text, starts, taken, add)
        out.sort(key=lambda f: (f.start, f.end))
        return out

    @staticmethod
    def _email_ok(value: str) -> bool:
        local, _, domain = value.rpartition("@")
        if not local or local.endswith(".") or ".." in local:
            return False
        labels = domain.split(".")
        tld = labels[-1]
        if not (2 <= len(tld) <= 24 and tld.isalpha()):
            return False
        return all(0 < len(lb) <= 63 and lb[0] != "-" and lb[-1] != "-" for lb in labels)

    @staticmethod
    def _ctx(text: str, m: re.Match[str], rx: re.Pattern[str], before: int = 40, after: int = 16) -> bool:
        return rx.search(text, max(0, m.start() - before), m.start()) is not None or (
            after > 0 and rx.search(text, m.end(), min(len(text), m.end() + after)) is not None)

    def _phones(self, text: str, starts: list[int], taken: list[tuple[int, int]],
                add: Callable[[Finding], None]) -> None:
        lookups = 0
        for m in _matches_at(PHONE_RE, text, starts):
            cand = m.group()
            digits = _NON_DIGIT_RE.sub("", cand.split("x")[0].split("ext")[0].split("#")[0])
            nd = len(digits)
            if nd < 6 or nd > 15 or _overlaps(taken, m.start(), m.end()):
                continue
            has_sep = nd != len(cand)
            if not has_sep and cand[0] != "+" and nd < 7:
                continue
            if _looks_like_date(cand) or len(set(digits)) < 2 or SSN_SHAPE_RE.match(cand):
                continue
            if VERSION_PREFIX_RE.search(text, max(0, m.start() - 12), m.start()):
                continue
            if NOT_PHONE_PREFIX_RE.search(text, max(0, m.start() - 14), m.start()):
                continue
            strong = cand[0] in "+(" or nd >= 10
            if not strong and ADDRESS_NEXT_RE.match(text, m.end()):
                continue  # "3455 181 Heb Place": house and street numbers, not a phone
            if (cand[0] != "+" and NOT_PHONE_CONTEXT_RE.search(text, max(0, m.start() - 32), m.start())
                    and not PHONE_CONTEXT_RE.search(text, max(0, m.start() - 16), m.start())):
                continue  # "order id 4412 9921", unless a phone word is closer ("... invoice. Phone: ...")
            context = self._ctx(text, m, PHONE_CONTEXT_RE, before=40, after=12)
            if context:
                add(Finding("PHONE_NUMBER", m.start(), m.end(), 0.75, "pii.phone.context", self.name))
                continue
            if "." in cand and nd < 10 and cand[0] != "+":
                continue  # short dotted numbers without context: IP-like quads, versions, BSN-style ids
            if cand.startswith("+") or (has_sep and nd >= 7):
                if lookups >= self.max_phone_lookups:
                    # Past the cap (it bounds a request's CPU), report strong shapes unvalidated rather
                    # than skip them: padding a text with decoys must not let the next number through.
                    if strong:
                        add(Finding("PHONE_NUMBER", m.start(), m.end(), 0.6, "pii.phone.unvalidated", self.name))
                    continue
                lookups += 1
                if self._phone_valid(cand):
                    add(Finding("PHONE_NUMBER", m.start(), m.end(), 0.85, "pii.phone.valid", self.name))

    def _phone_valid(self, cand: str) -> bool:
        import phonenumbers

        regions: Iterable[str | None] = (None,) if cand.startswith("+") else self.phone_regions
        for region in regions:
            try:
                num = phonenumbers.parse(cand, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(num):
                return True
        return False


def _matches_at(rx: re.Pattern[str], text: str, starts: list[int]) -> Iterator[re.Match[str]]:
    """``rx`` matched at each candidate start, skipping starts inside the previous match."""
    end = 0
    for p in starts:
        if p < end:
            continue
        m = rx.match(text, p)
        if m is not None:
            end = m.end()
            yield m


_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")


def _at_matches(text: str) -> Iterator[re.Match[str]]:
    """E-mail matches, tried only at the local part before each ``@`` (found with a C-speed find)."""
    pos = 0
    n = len(text)
    while (at := text.find("@", pos)) != -1:
        start = at
        lo = max(pos, at - 64)
        while start > lo and text[start - 1] in _LOCAL_CHARS:
            start -= 1
        found = None
        for p in range(start, at):  # usually the first try matches
            m = EMAIL_RE.match(text, p, min(n, at + 256))
            if m is not None:
                found = m
                break
        if found is not None:
            yield found
            pos = found.end()
        else:
            pos = at + 1


def _overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    if not spans:
        return False
    if len(spans) < 8:
        return any(s < end and start < e for s, e in spans)
    spans.sort()  # nearly sorted already (appended in text order per type): cheap
    i = bisect_left(spans, (end, end))
    # Spans do not nest across types here, so the nearest few before ``end`` decide.
    return any(spans[j][0] < end and start < spans[j][1] for j in range(max(0, i - 4), i))
