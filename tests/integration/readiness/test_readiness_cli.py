"""`soc2ai check` on the command line: lines, remedies, JSON, exit codes, --notify, readiness record."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from _readiness_project import clone, sink_toml
from typer.testing import CliRunner

from soc2ai.cli import _register, app
from soc2ai.ledger import AuditLog
from soc2ai.testing.receivers import HttpReceiver

LINE = r"^(OK|WARN|FAIL) +[a-z][a-z0-9_.-]+ +(CC|PI|C|A|P)\d+\.\d+ +\S"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compliant project with its inference record written now: `soc2ai check` reads the real clock,
    and the shared template's record dates from collection time, minutes earlier in a full run."""
    from datetime import UTC, datetime

    from _readiness_project import build_template

    root = tmp_path_factory.mktemp("tpl-cli") / "demo"
    build_template(root, datetime.now(UTC).replace(microsecond=0))
    return root


def invoke(root: Path, *args: str) -> tuple[int, str]:
    _register()
    res = CliRunner().invoke(app, ["check", "-c", str(root / "soc2ai.toml"), *args])
    return res.exit_code, res.stdout


def test_all_ok_exits_zero_and_records_the_run(template: Path, tmp_path: Path, receiver: HttpReceiver) -> None:
    """On the compliant demo: exit 0, one line per check in the documented shape, a readiness record."""
    import re

    root = tmp_path / "p"
    config = clone(template, root, extra_toml=sink_toml(receiver.url))
    code, out = invoke(root)
    assert code == 0, out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines and all(re.match(LINE, ln) for ln in lines), out
    with AuditLog.open(config, read_only=True) as log:
        runs = [e.body for e in log.entries(kind="readiness")]
    assert len(runs) == 1 and runs[0] is not None and (runs[0]["warn"], runs[0]["fail"]) == (0, 0)


def test_fail_exits_one_with_remedy_and_json(template: Path, tmp_path: Path, receiver: HttpReceiver) -> None:
    """A broken item: exit 1, the remedy under the line, and the same result in --json."""
    root = tmp_path / "p"
    clone(template, root, extra_toml=sink_toml(receiver.url))
    os.chmod(root / ".soc2ai" / "keys" / "signing.key", 0o640)
    code, out = invoke(root)
    assert code == 1
    assert "FAIL  keys.files" in out and "remedy: chmod 600" in out
    code, out = invoke(root, "--json")
    data = orjson.loads(out)
    assert code == 1 and data["fail"] == 1 and data["warn"] == 0
    assert [r["check_id"] for r in data["results"] if r["status"] != "OK"] == ["keys.files"]


@pytest.mark.parametrize(("flag", "code"), [((), 1), (("--warn-ok",), 0)])
def test_warnings_exit_one_unless_warn_ok(template: Path, tmp_path: Path, flag: tuple[str, ...], code: int) -> None:
    """Warnings only (no sink configured): exit 1, or 0 with --warn-ok."""
    root = tmp_path / "p"
    clone(template, root)
    got, out = invoke(root, *flag)
    assert got == code, out
    assert "WARN  alerts.sinks" in out


def test_notify_sends_warn_and_fail_lines(template: Path, tmp_path: Path, receiver: HttpReceiver) -> None:
    """--notify sends each non-OK line to the sinks (HIGH for FAIL) and nothing for OK lines."""
    root = tmp_path / "p"
    clone(template, root, extra_toml=sink_toml(receiver.url))
    (root / "registers" / "models.yaml").unlink()
    code, _ = invoke(root, "--notify")
    assert code == 1
    bodies = [b for b in receiver.wait(2) if b["kind"] == "readiness"]
    assert [(b["rule"], b["severity"]) for b in bodies] == [("readiness.models.register", "HIGH")]
    assert bodies[0]["message"].startswith("FAIL  models.register  CC8.1")
