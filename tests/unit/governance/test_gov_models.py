"""Model registry: classification enforcement and `models check` failures."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import yaml

from soc2ai.config import Config
from soc2ai.governance.checks import FAIL, OK, WARN
from soc2ai.governance.models import ModelRegistry, check_models

TODAY = date(2026, 6, 1)


def _models_file(project: Config) -> Path:
    return project.root / "registers" / "models.yaml"


def _edit(project: Config, **changes: object) -> None:
    path = _models_file(project)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    entry = doc["models"][0]
    for key, value in changes.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def _failing(project: Config, **kwargs: object) -> list[str]:
    results = check_models(project, today=TODAY, **kwargs)  # type: ignore[arg-type]
    return [r.check_id for r in results if r.status == FAIL]


def test_example_register_passes(project: Config) -> None:
    """The scaffolded register passes with the example gateway alias."""
    results = check_models(project, gateway_models=["support-chat"], today=TODAY)
    assert [r.status for r in results] == [OK]


def test_allows_enforces_data_classes(project: Config) -> None:
    """A model may receive only its listed data classes; unknown aliases receive nothing."""
    reg = ModelRegistry.load(_models_file(project), today=TODAY)
    assert reg.allows("support-chat", "confidential")
    assert not reg.allows("support-chat", "restricted")
    assert not reg.allows("no-such-model", "public")
    entry = reg.get("support-chat")
    assert entry is not None and entry.system_prompt == "support_reply@v1"


def test_missing_ticket_eval_approval_fail(project: Config) -> None:
    """A production model without ticket, evaluation or approval fails each check."""
    _edit(project, ticket=None, eval=None, approval=None)
    assert set(_failing(project, gateway_models=[])) == {"models.ticket", "models.eval", "models.approval"}


def test_non_production_model_needs_no_approval(project: Config) -> None:
    """Staging models are registered but not held to production evidence."""
    _edit(project, ticket=None, eval=None, approval=None, environment="staging")
    assert _failing(project, gateway_models=[]) == []


def test_eval_file_changed_fails(project: Config) -> None:
    """Editing the evaluation results after they were recorded breaks the hash and fails."""
    (project.root / "evals" / "support-chat.json").write_text(
        '{"metrics": {"accuracy": 0.99}}', encoding="utf-8"
    )
    assert _failing(project, gateway_models=[]) == ["models.eval_hash"]


def test_eval_without_metrics_fails(project: Config) -> None:
    """An eval file that records no metrics is not evaluation evidence."""
    data = b"{}"
    (project.root / "evals" / "support-chat.json").write_bytes(data)
    _edit(project, eval={"file": "evals/support-chat.json", "sha256": hashlib.sha256(data).hexdigest()})
    assert _failing(project, gateway_models=[]) == ["models.eval"]


def test_unregistered_gateway_alias_fails(project: Config) -> None:
    """An alias served by the gateway but absent from the registry fails."""
    results = check_models(project, gateway_models=["support-chat", "shadow-model"], today=TODAY)
    fails = [r for r in results if r.status == FAIL]
    assert len(fails) == 1 and "shadow-model" in fails[0].message


def test_unknown_system_prompt_fails(project: Config) -> None:
    """A system prompt reference that is not in the prompt registry fails."""
    _edit(project, system_prompt="support_reply@v9")
    assert _failing(project, gateway_models=[]) == ["models.prompt"]


def _fine_tune(project: Config, scan_record: str | None, approved_by: str | None = "cto@example.com") -> str:
    data = b'{"prompt": "q", "completion": "a"}\n'
    (project.root / "train.jsonl").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    ds: dict[str, object] = {"file": "train.jsonl", "sha256": digest}
    if scan_record:
        ds["scan_record"] = scan_record
    ft: dict[str, object] = {
        "base_model": "gpt-4o-mini",
        "datasets": [ds],
        "launched_by": "ml@example.com",
        "hyperparameters": {"epochs": 3},
    }
    if approved_by:
        ft["approved_by"] = approved_by
    _edit(project, fine_tune=ft)
    return digest


def test_fine_tune_without_scan_fails(project: Config) -> None:
    """A fine-tune whose dataset has no scan receipt fails."""
    _fine_tune(project, None)
    assert _failing(project, gateway_models=[]) == ["models.dataset_scan"]


def test_fine_tune_scan_verified_against_ledger(project: Config) -> None:
    """The receipt must exist, have passed, and be for the same dataset hash."""
    digest = _fine_tune(project, "rec1")
    good = {"rec1": {"id": "rec1", "passed": True, "dataset_hash": f"sha256:{digest}"}}
    assert _failing(project, gateway_models=[], scan_records=good) == []
    failed = {"rec1": {"id": "rec1", "passed": False, "dataset_hash": digest}}
    assert _failing(project, gateway_models=[], scan_records=failed) == ["models.dataset_scan"]
    other = {"rec1": {"id": "rec1", "passed": True, "dataset_hash": "0" * 64}}
    assert _failing(project, gateway_models=[], scan_records=other) == ["models.dataset_scan"]
    assert _failing(project, gateway_models=[], scan_records={}) == ["models.dataset_scan"]
    unverified = check_models(project, gateway_models=[], today=TODAY)
    assert [r.status for r in unverified] == [OK, WARN]


def test_fine_tune_self_approved_fails(project: Config) -> None:
    """The person who launched a fine-tune cannot approve it."""
    digest = _fine_tune(project, "rec1", approved_by="ML@example.com")
    scans = {"rec1": {"passed": True, "dataset_hash": digest}}
    assert _failing(project, gateway_models=[], scan_records=scans) == ["models.finetune_approval"]


def test_fine_tune_dataset_changed_fails(project: Config) -> None:
    """A training dataset edited after training no longer matches its recorded hash."""
    digest = _fine_tune(project, "rec1")
    (project.root / "train.jsonl").write_text("changed\n", encoding="utf-8")
    scans = {"rec1": {"passed": True, "dataset_hash": digest}}
    assert _failing(project, gateway_models=[], scan_records=scans) == ["models.dataset_hash"]


def test_fine_tune_self_approved_under_another_form_fails(project: Config) -> None:
    """The launcher approving as "Name <email>" or by the bare name is still self-approval."""
    for approver in ("ML Team <ml@example.com>", "ml"):
        digest = _fine_tune(project, "rec1", approved_by=approver)
        scans = {"rec1": {"passed": True, "dataset_hash": digest}}
        assert _failing(project, gateway_models=[], scan_records=scans) == ["models.finetune_approval"], (
            approver
        )


def _eval_file(project: Config, name: str, data: bytes) -> None:
    (project.root / "evals" / name).write_bytes(data)
    _edit(project, eval={"file": f"evals/{name}", "sha256": hashlib.sha256(data).hexdigest()})


def test_eval_with_labels_but_no_results_fails(project: Config) -> None:
    """Names, notes and empty rows are not evaluation results: a production model needs a number."""
    for name, data in (
        ("e.json", b'{"model": "support-chat", "dataset": "evals/q-v1", "notes": "TODO"}'),
        ("e.json", b'{"metrics": {"accuracy": null}}'),
        ("e.json", b"[{}]"),
        ("e.csv", b"metric,value\n,\n"),
        ("e.csv", b"metric,value\naccuracy,\xff\xfe\n"),
    ):
        _eval_file(project, name, data)
        assert _failing(project, gateway_models=[]) == ["models.eval"], data
    for name, data in (
        ("e.json", b'{"metrics": {"accuracy": 0.91}}'),
        ("e.json", b'{"accuracy": 0.91}'),
        ("e.json", b'[{"metric": "accuracy", "value": 0.91}]'),
        ("e.csv", b"metric,value\naccuracy,0.91\n"),
    ):
        _eval_file(project, name, data)
        assert _failing(project, gateway_models=[]) == [], data


def test_broken_prompt_registry_fails_system_prompt_check(project: Config) -> None:
    """`models check` alone must not pass a system_prompt it could not check against the registry."""
    header = project.root / "prompts" / "support_reply" / "v1.txt"
    header.write_text(header.read_text(encoding="utf-8").replace("status: current", "status: live"), encoding="utf-8")
    results = check_models(project, today=TODAY, gateway_models=[])
    bad = [r for r in results if r.status == FAIL]
    assert [r.check_id for r in bad] == ["models.prompt"]
    assert "cannot be verified" in bad[0].message and "v1.txt:3: status" in bad[0].message
