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
