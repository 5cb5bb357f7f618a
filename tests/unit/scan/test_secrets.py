"""Secret formats."""

from __future__ import annotations

import time

import pytest

from soc2ai.scan.secrets import SecretsScanner, shannon_entropy

SC = SecretsScanner()


@pytest.mark.parametrize(("text", "etype", "secret"), [
    ("key=sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD", "OPENAI_API_KEY",
     "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD"),
    ("ANTHROPIC_API_KEY=sk-ant-api03-" + "x" * 40, "ANTHROPIC_API_KEY", "sk-ant-api03-" + "x" * 40),
    ("id AKIAIOSFODNN7EXAMPLE", "AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AWS_SECRET_ACCESS_KEY",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("token ghp_" + "A1b2" * 9, "GITHUB_TOKEN", "ghp_" + "A1b2" * 9),
    ("xoxb-123456789012-abcdefghijkl", "SLACK_TOKEN", "xoxb-123456789012-abcdefghijkl"),
    ("AIza" + "Sy" + "B" * 33, "GOOGLE_API_KEY", "AIza" + "Sy" + "B" * 33),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "STRIPE_KEY", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijk_lmnop", "JWT",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijk_lmnop"),
    ("DATABASE_URL=postgres://app:Sup3rS3cret@db.internal:5432/app", "CONNECTION_STRING", "Sup3rS3cret"),
    ("redis://:pw12345678@localhost:6379/0", "CONNECTION_STRING", "pw12345678"),
    ('password: "correct-horse-battery"', "PASSWORD", "correct-horse-battery"),
])
def test_detects(text: str, etype: str, secret: str) -> None:
    """Each provider format is found and the span covers the secret value."""
    found = [(f.entity_type, text[f.start : f.end]) for f in SC.scan(text)]
    assert (etype, secret) in found


def test_private_key_block_is_one_finding() -> None:
    """A PEM private key block is reported once, covering the whole block."""
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc+/=\n-----END RSA PRIVATE KEY-----"
    found = SC.scan("here: " + pem)
    assert [f.entity_type for f in found] == ["PRIVATE_KEY"]
    assert found[0].end - found[0].start == len(pem)


@pytest.mark.parametrize("text", [
    "use sk-short here", "password: <your-password>", "password=${DB_PASSWORD}", "https://example.com/path",
    "postgres://localhost:5432/app", "the task-ask-risk is low", "Ask the sk- team",
])
def test_negatives(text: str) -> None:
    """Short look-alikes, placeholders and URLs without credentials are not secrets."""
    assert SC.scan(text) == []


def test_high_entropy_is_opt_in() -> None:
    """Random-looking tokens are only reported when high-entropy detection is enabled."""
    tok = "Zq8vN3xR7tL2mK9pW4sY6bH1cJ5dF0gA"
    assert SC.scan(f"token {tok}") == []
    found = SecretsScanner(high_entropy=True).scan(f"token {tok}")
    assert [f.entity_type for f in found] == ["HIGH_ENTROPY_SECRET"]
    assert shannon_entropy("aaaa") == 0.0


@pytest.mark.parametrize("text", ["sk-" * 70_000, "-----BEGIN PRIVATE KEY-----" + "A" * 200_000,
                                  "eyJ" + "a." * 100_000, "password=" * 20_000, "x://" * 50_000 + "@"])
def test_adversarial_inputs_finish_fast(text: str) -> None:
    """Pathological inputs finish within a time bound."""
    t0 = time.perf_counter()
    SC.scan(text)
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize("text", [
    "key sk-proj-\u200babcdefghijklmnopqrstuvwxyz0123456789ABCD done",   # zero-width space inside
    "key gh\u2060p_" + "A1b2" * 9 + " done",                              # word joiner inside
    "key " + "".join(chr(ord(c) + 0xFEE0) for c in "sk-proj-") + "abcdefghijklmnopqrstuvwxyz0123456789ABCD done",
])
def test_hidden_or_lookalike_characters_do_not_hide_a_key(text: str) -> None:
    """Invisible characters or full-width forms inside a key still yield a finding that covers the whole
    key in the original text (so redaction removes all of it)."""
    found = SC.scan(text)
    assert len(found) == 1
    f = found[0]
    assert text[: f.start] == "key " and text[f.end :] == " done"


@pytest.mark.parametrize("text", [
    "PWD=/home/alice/projects/app", "OLDPWD=/usr/local/bin", "pwd: ~/src/service-api", "cwd/pwd = C:\\Users\\bob\\app",
])
def test_working_directory_is_not_a_password(text: str) -> None:
    """``PWD``/``OLDPWD`` in pasted ``env`` output or shell sessions hold a directory, not a password;
    only path values are excluded, a ``pwd=`` credential is still reported."""
    assert SC.scan(text) == []
    assert [f.entity_type for f in SC.scan("db_pwd=Tr0ub4dor&3xyz")] == ["PASSWORD"]


@pytest.mark.parametrize(("text", "etype", "secret", "near_miss"), [
    ("GITLAB_TOKEN=glpat-PtYgjmUhBel31iEl2hpC", "GITLAB_TOKEN", "glpat-PtYgjmUhBel31iEl2hpC", "glpat-short"),
    ("token: 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", "HUGGINGFACE_TOKEN", "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",
     "def shf_abcdefghijklmnopqrstuvwxyzABCDEFGH(): see hf_hub_download"),
    ("//registry.npmjs.org/:_authToken=npm_NnFRIBXuDL7DxtpYlSXpfKtHF4vUCsMehGAk", "NPM_TOKEN",
     "npm_NnFRIBXuDL7DxtpYlSXpfKtHF4vUCsMehGAk", "npm_config_cache=/tmp/npm"),
    ("SENDGRID_API_KEY='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'", "SENDGRID_API_KEY",
     "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", "SG.Fixture.test"),
    ("password = pypi-AgEIcHlwaS5vcmcg6YYZYn9ZhyiA4uoRgnatmUdjAWtGSU8po_799NksnRH9ucAUsdMlHUvTCQC", "PYPI_TOKEN",
     "pypi-AgEIcHlwaS5vcmcg6YYZYn9ZhyiA4uoRgnatmUdjAWtGSU8po_799NksnRH9ucAUsdMlHUvTCQC", "pip install pypi-simple"),
])
def test_common_registry_and_platform_tokens(text: str, etype: str, secret: str, near_miss: str) -> None:
    """GitLab, Hugging Face, npm, SendGrid and PyPI tokens are found (and count as secrets for the policy);
    identifiers that merely share the prefix are not."""
    from soc2ai.scan.classify import category_of

    found = [(f.entity_type, text[f.start : f.end]) for f in SC.scan(text)]
    assert (etype, secret) in found and category_of(etype) == "secret"
    assert SC.scan(near_miss) == []
