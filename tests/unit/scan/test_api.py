"""The public surface of soc2ai.scan: names resolve, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import soc2ai.scan


def test_every_exported_name_resolves() -> None:
    """Each name in __all__ is importable (lazily) from soc2ai.scan."""
    for name in soc2ai.scan.__all__:
        assert getattr(soc2ai.scan, name) is not None, name
    with pytest.raises(AttributeError):
        getattr(soc2ai.scan, "NoSuchThing")  # noqa: B009


def test_import_does_not_load_numpy_or_spacy() -> None:
    """`import soc2ai.scan` loads neither numpy (the model) nor spaCy."""
    code = "import sys, soc2ai.scan; print([m for m in ('numpy', 'spacy', 'phonenumbers') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("first", ["build_pipeline", "PiiScanner", "scan_dataset"])
def test_redact_and_normalize_are_the_functions_after_other_imports(first: str) -> None:
    """`from soc2ai.scan import redact` / `normalize` give the documented functions even after another name
    was imported first (its module imports the submodules of the same name)."""
    code = (f"from soc2ai.scan import {first}\n"
            "from soc2ai.scan import redact, normalize, Finding\n"
            "f = Finding('EMAIL_ADDRESS', 5, 16, 1.0, 'pii.email', 'pii')\n"
            "print(redact('mail a@b.example', [f], 'tag'), normalize('x').text)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "mail <EMAIL_ADDRESS> x"


def test_gateway_contract() -> None:
    """The call the gateway makes: build_pipeline(settings).run(text, stage, redact_key=...)."""
    from soc2ai.scan import Action, PipelineResult, ScanSettings, Stage, build_pipeline

    res = build_pipeline(ScanSettings()).run("hello there", Stage.PRE, redact_key=None)
    assert isinstance(res, PipelineResult) and res.action is Action.ALLOW and res.decisions == []
    assert isinstance(res.elapsed_us, int) and res.text == "hello there"
