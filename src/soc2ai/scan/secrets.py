"""Secret detection: provider key formats, private key blocks, JWTs, credentials in connection strings.

Each rule has a literal *anchor* checked with ``in`` first (C speed), so a prompt without ``sk-`` never
runs the OpenAI pattern. High-entropy token detection is off by default: it catches unknown formats but
also hashes, UUID-ish ids and base64 images.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter

from soc2ai.scan.interface import Finding
from soc2ai.scan.normalize import normalize

VERSION = "1.0.0"

# (entity type, rule id, anchors, pattern, group holding the secret (0 = whole match), score).
# Patterns that start with a literal need no anchor: the regex engine finds the literal at C speed
# (the "not preceded by" check therefore sits right after the literal). The others run only if one of
# their lower-case anchors occurs in the lower-cased text.
_RULES: tuple[tuple[str, str, tuple[str, ...], str, int, float], ...] = (
    ("ANTHROPIC_API_KEY", "secret.anthropic", (), r"sk-ant-(?<![A-Za-z0-9_]sk-ant-)[A-Za-z0-9_-]{32,}+", 0, 1.0),
    ("OPENAI_API_KEY", "secret.openai", (),
     r"sk-(?<![A-Za-z0-9_]sk-)(?!ant-)(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{32,}+", 0, 0.95),
    ("AWS_ACCESS_KEY_ID", "secret.aws.akid", (),
     r"A(?<![A-Za-z0-9]A)(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA)[A-Z2-7]{16}(?![A-Za-z0-9])", 0, 1.0),
    ("AWS_SECRET_ACCESS_KEY", "secret.aws.secret", ("aws_secret", "awssecret"),
     r"aws_?secret_?(?:access_?)?key[\"']?\s{0,3}[:=]\s{0,3}[\"']?([a-z0-9/+]{40})(?![a-z0-9/+])", 1, 1.0),
    ("GITHUB_TOKEN", "secret.github", (), r"gh(?<![A-Za-z0-9]gh)[pousr]_[A-Za-z0-9]{36,255}+\b", 0, 1.0),
    ("GITHUB_TOKEN", "secret.github.pat", (), r"github_pat_[A-Za-z0-9_]{22,255}+", 0, 1.0),
    ("SLACK_TOKEN", "secret.slack", (), r"xox(?<![A-Za-z0-9]xox)[abposr]-[A-Za-z0-9-]{10,250}+", 0, 1.0),
    ("SLACK_WEBHOOK", "secret.slack.webhook", (),
     r"https://hooks\.slack\.com/services/[A-Za-z0-9]{6,}+/[A-Za-z0-9]{6,}+/[A-Za-z0-9]{16,}+", 0, 1.0),
    ("GOOGLE_API_KEY", "secret.google.apikey", (), r"AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])", 0, 1.0),
    ("GOOGLE_OAUTH_SECRET", "secret.google.oauth", (), r"GOCSPX-[A-Za-z0-9_-]{28}", 0, 1.0),
    ("STRIPE_KEY", "secret.stripe", (),
     r"_(?:live|test)_(?<=\b[spr]k_(?:live|test)_)[A-Za-z0-9]{16,}+", 0, 1.0),
    ("STRIPE_KEY", "secret.stripe.webhook", (), r"whsec_[A-Za-z0-9]{24,}+", 0, 1.0),
    ("PRIVATE_KEY", "secret.private_key", (),
     r"-----BEGIN (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----"
     r"(?:[A-Za-z0-9+/=\s:,-]{0,16384}?-----END (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----)?", 0, 1.0),
    ("JWT", "secret.jwt", (),
     r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{8,}+\.eyJ[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]{8,}+", 0, 0.9),
    ("CONNECTION_STRING", "secret.conn_string", (),
     r"://(?<=[A-Za-z0-9+.-]://)[^\s:/@'\"]{0,64}+:([^\s@/'\"]{1,128}+)@[A-Za-z0-9.\[\]:_-]{1,255}+", 1, 0.95),
    ("GITLAB_TOKEN", "secret.gitlab", (), r"glpat-(?<![A-Za-z0-9_]glpat-)[A-Za-z0-9_-]{20,}+", 0, 1.0),
    ("HUGGINGFACE_TOKEN", "secret.huggingface", (), r"hf_(?<![A-Za-z0-9_]hf_)[A-Za-z]{34}(?![A-Za-z0-9_-])", 0, 0.95),
    ("NPM_TOKEN", "secret.npm", (), r"npm_(?<![A-Za-z0-9_]npm_)[A-Za-z0-9]{36}(?![A-Za-z0-9_-])", 0, 1.0),
    ("SENDGRID_API_KEY", "secret.sendgrid", (),
     r"SG\.(?<![A-Za-z0-9_]SG\.)[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])", 0, 1.0),
    ("PYPI_TOKEN", "secret.pypi", (), r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}+", 0, 1.0),
    ("PASSWORD", "secret.assignment", ("passw", "pwd"),
     r"p(?:assword|asswd|wd)[\"']?\s{0,3}[:=]\s{0,3}[\"']?([^\s\"',;]{8,128}+)", 1, 0.7),
)
# Rules with anchors are matched against the lower-cased text (their patterns are lower-case, which lets
# the engine skip ahead on a literal first character); spans are the same when lower() keeps the length.
_LOWER = frozenset(r for _, r, a, _, _, _ in _RULES if a)
# Matches that start after a fixed prefix checked by lookbehind: extend the span back over it.
_BACK = {"secret.stripe": 2}
# Prefixes whose literal is long-tail (a few ASCII letters): a C-speed ``in`` on the original text is cheaper
# than starting the regex, on the hot path where these tokens almost never occur.
_LITERAL = {"secret.gitlab": "glpat-", "secret.huggingface": "hf_", "secret.npm": "npm_", "secret.sendgrid": "SG.",
            "secret.pypi": "pypi-"}
_COMPILED = tuple((t, r, a, re.compile(p), g, s, _LITERAL.get(r, "")) for t, r, a, p, g, s in _RULES)
_COMPILED_ANYCASE = {r: re.compile(p, re.I) for _, r, a, p, _, _ in _RULES if a}
_TOKEN_RE = re.compile(r"[A-Za-z0-9+/_=-]{24,}+")
_PATH_VALUE = re.compile(r"(?:/|~/|[A-Za-z]:\\)")
_PLACEHOLDERS = re.compile(r"(?i)^(?:x+|\*+|\.+|<[^>]*>|\$\{?[A-Z_]+\}?|changeme|password|example\w*|your[_-]?\w*)$")


def shannon_entropy(value: str) -> float:
    """Bits per character of ``value``."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


class SecretsScanner:
    """Provider key formats and credential shapes; optional high-entropy tokens."""

    name = "secrets"
    version = VERSION

    def __init__(self, *, high_entropy: bool = False, entropy_threshold: float = 4.5) -> None:
        self.high_entropy = high_entropy
        self.entropy_threshold = entropy_threshold

    def scan(self, text: str) -> list[Finding]:
        """Return secret findings (the span covers the secret value, not its label)."""
        if not text:
            return []
        if text.isascii():
            return self._scan(text)
        # Zero-width characters or full-width forms inside a key would otherwise hide it.
        norm = normalize(text)
        found = self._scan(norm.text)
        if norm.identity:
            return found
        return [dataclasses.replace(f, start=s, end=e) for f in found
                for s, e in (norm.span_to_original(f.start, f.end),)]

    def _scan(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        low: str | None = None
        for etype, rule, anchors, rx, group, score, literal in _COMPILED:
            if literal and literal not in text:
                continue
            target = text
            if anchors:
                if low is None:
                    low = text.lower()
                if not any(a in low for a in anchors):
                    continue
                if len(low) == len(text):
                    target = low
                else:
                    rx = _COMPILED_ANYCASE[rule]
            for m in rx.finditer(target):
                if group and _PLACEHOLDERS.match(m.group(group) or ""):
                    continue
                if rule == "secret.assignment" and m.group()[:3].lower() == "pwd" and _PATH_VALUE.match(m.group(1)):
                    continue  # PWD / OLDPWD: the working directory (env dumps, shell prompts)
                s, e = m.span(group)
                s -= _BACK.get(rule, 0) if not group else 0
                if any(f.start <= s and e <= f.end for f in out):
                    continue  # inside an earlier, more specific finding (a key inside a PEM block)
                out.append(Finding(etype, s, e, score, rule, self.name))
        if self.high_entropy:
            for m in _TOKEN_RE.finditer(text):
                tok = m.group()
                if any(f.start < m.end() and m.start() < f.end for f in out):
                    continue
                classes = sum((any(c.islower() for c in tok), any(c.isupper() for c in tok),
                               any(c.isdigit() for c in tok)))
                if classes >= 2 and shannon_entropy(tok) >= self.entropy_threshold:
                    out.append(Finding("HIGH_ENTROPY_SECRET", m.start(), m.end(), 0.5,
                                       "secret.entropy", self.name))
        out.sort(key=lambda f: (f.start, f.end))
        return out
