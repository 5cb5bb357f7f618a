"""`soc2ai log ...` given a wrong argument or run outside a project: a usage/config error (exit 2) that says
what is valid, never an empty answer (exit 0) or a failed check (exit 1)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from soc2ai.cli import _register, app
from soc2ai.config import load_config
from soc2ai.data.settings import INFERENCE_FLOOR_DAYS, RetentionSettings
from soc2ai.ledger import AuditLog

_register()
runner = CliRunner()
DAY_US = 86_400 * 1_000_000


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project scaffolded by `soc2ai init` (its ledger holds the init record)."""
    root = tmp_path / "p"
    result = runner.invoke(app, ["init", str(root), "--name", "p"])
    assert result.exit_code == 0, result.output
    return root


def _cfg(project: Path) -> list[str]:
    return ["-c", str(project / "soc2ai.toml")]


def _flat(text: str) -> str:
    """Console output with the panel borders and line wrapping taken out."""
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("command", [["tail"], ["prune", "--days", "400"]])
def test_unknown_record_kind_is_a_usage_error_listing_the_kinds(project: Path, command: list[str]) -> None:
    """`--kind config-change` (a typo for config_change) exits 2 naming the valid kinds, instead of an empty
    table or a prune of nothing with a receipt appended."""
    with AuditLog.open(load_config(project / "soc2ai.toml"), read_only=True) as log:
        size = log.size()
    result = runner.invoke(app, ["log", *command, "--kind", "config-change", *_cfg(project)])
    assert result.exit_code == 2, result.output
    out = _flat(result.output)
    assert "'config-change'" in out and "inference, access, config_change, dsar" in out
    with AuditLog.open(load_config(project / "soc2ai.toml"), read_only=True) as log:
        assert log.size() == size  # no prune receipt
    ok = runner.invoke(app, ["log", "tail", "--kind", "config_change", "--json", *_cfg(project)])
    assert ok.exit_code == 0 and "config_change" in ok.output


def test_prune_days_below_the_retention_floor_is_refused(project: Path) -> None:
    """`log prune --days 10` leaves a 50-day-old inference body in place and exits 2 naming the minimum,
    the same floor the config holds data.retention.ledger_days to."""
    with pytest.raises(ValidationError):
        RetentionSettings(ledger_days=INFERENCE_FLOOR_DAYS - 1)
    RetentionSettings(ledger_days=INFERENCE_FLOOR_DAYS)
    cfg = load_config(project / "soc2ai.toml")
    with AuditLog.open(cfg) as log:
        rid = log.log_inference(user_id="u", model_id="m", prompt="p", response="r",
                                ts=int(time.time() * 1e6) - 50 * DAY_US)
        log.flush()
        idx = log.find(rid)
    assert idx is not None
    for days in ("10", str(INFERENCE_FLOOR_DAYS - 1)):
        result = runner.invoke(app, ["log", "prune", "--days", days, *_cfg(project)])
        assert result.exit_code == 2, result.output
        assert f"minimum retention of {INFERENCE_FLOOR_DAYS} days" in _flat(result.output)
    with AuditLog.open(cfg, read_only=True) as log:
        assert log.entry(idx).body is not None
    result = runner.invoke(app, ["log", "prune", "--days", str(INFERENCE_FLOOR_DAYS), *_cfg(project)])
    assert result.exit_code == 0, result.output


def test_consistency_from_a_size_without_checkpoint_is_a_usage_error(project: Path) -> None:
    """A size no signed checkpoint has (inside or beyond the log) exits 2 naming the nearest checkpoint
    sizes; a checkpointed size still exports its proof."""
    with AuditLog.open(load_config(project / "soc2ai.toml")) as log:
        for _ in range(2):
            for i in range(5):
                log.log_inference(user_id="u", model_id="m", prompt=f"p{i}", response="r")
            log.flush()
        sizes = [s for s, _ in log.store.checkpoints()]
    gap = next(s for s in range(sizes[0] + 1, sizes[-1]) if s not in sizes)
    below, above = max(s for s in sizes if s < gap), min(s for s in sizes if s > gap)
    for size, near in ((gap, f"{below} and {above}"), (sizes[-1] + 100, str(sizes[-1]))):
        result = runner.invoke(app, ["log", "consistency", str(size), *_cfg(project)])
        assert result.exit_code == 2, result.output
        assert f"no signed checkpoint at size {size} (nearest checkpoint sizes: {near})" in _flat(result.output)
    ok = runner.invoke(app, ["log", "consistency", str(sizes[0]), *_cfg(project)])
    assert ok.exit_code == 0, ok.output


def test_match_beyond_the_log_is_a_usage_error(project: Path, tmp_path: Path) -> None:
    """`log match 99` on a shorter log exits 2 (no such record), not 1 (content differs)."""
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("p")
    result = runner.invoke(app, ["log", "match", "99", "--prompt-file", str(prompt), *_cfg(project)])
    assert result.exit_code == 2, result.output
    assert "no record at index 99" in _flat(result.output)


def test_log_commands_outside_a_project_are_a_config_error(project: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """With no soc2ai.toml (and no ledger) here, `log stats` exits 2 saying so; a project whose own
    ledger is missing still fails (exit 1): that is a finding, not a usage error."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("SOC2AI_CONFIG", raising=False)
    monkeypatch.delenv("SOC2AI_STORE", raising=False)
    result = runner.invoke(app, ["log", "stats"])
    assert result.exit_code == 2, result.output
    assert "no soc2ai.toml here" in _flat(result.output)
    (project / ".soc2ai" / "audit.db").unlink()
    assert runner.invoke(app, ["log", "stats", *_cfg(project)]).exit_code == 1
