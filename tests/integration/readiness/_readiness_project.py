"""A compliant demo project for readiness tests: `soc2ai init`, reviewed git history, fresh records."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from soc2ai.cli import _register, app
from soc2ai.config import Config, load_config
from soc2ai.ledger import AuditLog

ALICE = ["-c", "user.name=alice", "-c", "user.email=alice@example.com"]
BOB = ["-c", "user.name=bob", "-c", "user.email=bob@example.com"]


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def build_template(root: Path, now: datetime) -> None:
    """Scaffold with `soc2ai init`, commit through a reviewed merge, write one inference record at ``now``."""
    _register()
    res = CliRunner().invoke(app, ["init", str(root), "--name", "demo"])
    assert res.exit_code == 0, res.output
    # These tests configure their own sinks: drop the default file sinks that `init` writes.
    cfg = root / "soc2ai.toml"
    text = cfg.read_text()
    cfg.write_text(text[: text.index("# Alert sinks")])
    git(root, "init", "-q", "-b", "main")
    git(root, *ALICE, "commit", "-q", "--allow-empty", "-m", "root")
    git(root, "checkout", "-q", "-b", "PROJ-1-setup")
    git(root, "add", "-A")
    git(root, *ALICE, "commit", "-q", "-m", "PROJ-1 add registers and prompts")
    git(root, "checkout", "-q", "main")
    git(root, *BOB, "merge", "-q", "--no-ff", "PROJ-1-setup", "-m", "Merge pull request #1 from acme/PROJ-1-setup",
        "-m", "Approved-by: Bob <bob@example.com>")
    with AuditLog.open(load_config(root / "soc2ai.toml")) as log:
        log.log_inference(user_id="u1", model_id="gpt-4o-mini", prompt="hi", response="hello",
                          input_tokens=1, output_tokens=1, ts=int(now.timestamp() * 1_000_000))
        log.flush()


def clone(template: Path, dest: Path, *, extra_toml: str = "") -> Config:
    """A private copy of the template project (with extra config appended)."""
    shutil.copytree(template, dest, symlinks=True)
    if extra_toml:
        with (dest / "soc2ai.toml").open("a") as fh:
            fh.write("\n" + extra_toml)
    return load_config(dest / "soc2ai.toml")


def sink_toml(url: str) -> str:
    return f'[[monitor.sinks]]\nname = "oncall"\ntype = "webhook"\nurl = "{url}"\n'


NOW = datetime.now(UTC).replace(microsecond=0)
