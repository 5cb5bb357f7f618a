"""The governance surface other packages call: every exported name resolves; importing stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import soc2ai.governance as governance
from soc2ai.governance.checks import CheckResult, worst


def test_every_exported_name_resolves() -> None:
    """Each name in __all__ is importable from soc2ai.governance (lazily)."""
    assert "PromptRegistry" in governance.__all__ and "CheckResult" in governance.__all__
    for name in governance.__all__:
        assert getattr(governance, name) is not None, name
    with pytest.raises(AttributeError):
        _ = governance.not_a_name


def test_import_is_light() -> None:
    """`import soc2ai.governance` does not load jinja2 or yaml (templates and registers load lazily)."""
    code = "import sys, soc2ai.governance; print(','.join(m for m in ('jinja2', 'yaml') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_check_result_is_strict_and_frozen() -> None:
    """Statuses are limited to OK/WARN/FAIL; results are immutable; worst() ranks them."""
    r = CheckResult("x.y", "CC8.1", "OK", "fine")
    with pytest.raises(ValueError):
        CheckResult("x.y", "CC8.1", "PASS", "no")
    with pytest.raises(AttributeError):
        r.status = "FAIL"  # type: ignore[misc]
    assert r.to_dict() == {
        "check_id": "x.y",
        "criterion": "CC8.1",
        "status": "OK",
        "message": "fine",
        "remedy": "",
    }
    assert worst([r, CheckResult("a", "b", "WARN", "m")]) == "WARN"
    assert worst([]) == "OK"
