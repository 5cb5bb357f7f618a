"""config_change records for register and prompt changes, in a real ledger, and linked to changes."""

from __future__ import annotations

import shutil
from datetime import date

import yaml

from soc2ai.config import Config, load_config
from soc2ai.governance.audit import config_change_index, record_register_changes, snapshot
from soc2ai.governance.changes import changes_population
from soc2ai.governance.prompts import PromptRegistry
from soc2ai.governance.testing import RepoBuilder
from soc2ai.ledger import AuditLog
from soc2ai.ledger.keys import generate_keys


def _open(config: Config) -> AuditLog:
    keys = config.path(config.ledger.keys_dir)
    if not (keys / "signing.key").exists():
        generate_keys(keys, "test")
    return AuditLog.open(config)


def _bodies(config: Config) -> list[dict[str, object]]:
    with AuditLog.open(config, read_only=True) as log:
        return [e.body for e in log.entries(kind="config_change") if isinstance(e.body, dict)]


def test_first_run_records_everything_then_only_changes(project: Config) -> None:
    """The first call records every register and template; later calls only what changed."""
    with _open(project) as log:
        first = record_register_changes(log, project, actor="ci@example.com")
        assert record_register_changes(log, project) == []
        path = project.root / "registers" / "models.yaml"
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["models"][0]["parameters"]["temperature"] = 0.5
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        second = record_register_changes(log, project)
        log.flush()
    assert len(first) == 4 and len(second) == 1
    bodies = _bodies(project)
    targets = sorted(str(b["target"]) for b in bodies[:4])
    assert targets == [
        "prompt:support_reply@v1",
        "register:data_sources.yaml",
        "register:models.yaml",
        "register:vendors.yaml",
    ]
    last = bodies[-1]
    assert last["action"] == "modify" and last["summary"] == "changed: support-chat"
    assert last["previous_hash"] != last["content_hash"]
    tpl = PromptRegistry.load(project.root / "prompts").get("support_reply")
    prompt_rec = next(b for b in bodies if b["target"] == "prompt:support_reply@v1")
    assert prompt_rec["content_hash"] == tpl.content_hash and prompt_rec["actor"] == "ci@example.com"


def test_removed_prompt_is_recorded(project: Config) -> None:
    """Deleting a template version appends a `remove` record with the previous hash."""
    with _open(project) as log:
        record_register_changes(log, project)
        shutil.rmtree(project.root / "prompts" / "support_reply")
        ids = record_register_changes(log, project)
        log.flush()
    rec = _bodies(project)[-1]
    assert len(ids) == 1 and rec["action"] == "remove" and rec["content_hash"] is None
    assert "prompt:support_reply@v1" not in snapshot(project)


def test_population_links_config_change_record(tmp_path: object) -> None:
    """A change whose file hash was recorded by a config_change shows when it went live."""
    from pathlib import Path

    root = Path(str(tmp_path)) / "repo"
    repo = RepoBuilder(root)
    from soc2ai.governance.examples import write_examples

    write_examples(root, today=date(2026, 1, 1))
    (root / "soc2ai.toml").write_text(
        '[governance]\nchange_paths = ["registers/", "prompts/"]\n', encoding="utf-8"
    )
    (root / ".gitignore").write_text(".soc2ai/\n", encoding="utf-8")
    sha = repo.commit("Initial (ENG-1)", when="2026-01-02T00:00:00Z")
    config = load_config(root / "soc2ai.toml")
    with _open(config) as log:
        record_register_changes(log, config)
        log.flush()
        index = config_change_index(log.entries(kind="config_change"))
    changes = changes_population(
        root, date(2026, 1, 1), date(2026, 1, 31), config.governance, config_changes=index
    )
    assert len(changes) == 1 and changes[0].id == sha
    assert changes[0].config_change is not None and changes[0].live_at is not None


def test_register_with_impossible_date_is_still_recorded(project: Config) -> None:
    """A leap-day typo (2025-02-29) in a register must not crash the go-live recording at gateway start."""
    path = project.root / "registers" / "vendors.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("dpa: {signed: ", "dpa: {signed: 2025-02-29, was: ", 1), encoding="utf-8")
    with _open(project) as log:
        ids = record_register_changes(log, project)
        log.flush()
    assert len(ids) == 4
    vendors = next(b for b in _bodies(project) if b["target"] == "register:vendors.yaml")
    assert vendors["action"] == "add"
