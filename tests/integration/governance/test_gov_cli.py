"""The auditor's requests answered from the command line on the sample repository."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from soc2ai.cli import changes, incidents, models, prompts, sources, vendors
from soc2ai.governance.testing import SampleRepo, build_sample_repo

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    for name, module in (
        ("prompts", prompts),
        ("models", models),
        ("vendors", vendors),
        ("sources", sources),
        ("incidents", incidents),
        ("changes", changes),
    ):
        app.add_typer(module.app, name=name)
    return app


APP = _app()


@pytest.fixture
def repo(tmp_path: Path) -> SampleRepo:
    """A fresh sample repository per test (tests write registers and incidents)."""
    return build_sample_repo(tmp_path / "acme")


def _run(repo: SampleRepo, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(APP, [*args, "--config", str(repo.root / "soc2ai.toml")])
    return result.exit_code, result.stdout, result.stderr


def test_change_population_and_sample(repo: SampleRepo, tmp_path: Path) -> None:
    """Two commands: the complete population (reconciled with git) and a reproducible sample with exceptions."""
    out = tmp_path / "population.csv"
    code, stdout, _ = _run(
        repo, "changes", "population", "--since", "2026-01-01", "--until", "2026-12-31", "--out", str(out)
    )
    assert code == 0
    assert "reconciled: population 9 = 9" in " ".join(stdout.split())
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 9
    by_id = {r["id"]: r for r in rows}
    assert by_id[repo.shas["direct_push"]]["flags"] == "direct_push; missing_review; missing_ticket"
    assert by_id[repo.shas["pr_merge"]]["pr"] == "7" and by_id[repo.shas["pr_merge"]]["ticket"] == "ENG-40"

    args = (
        "changes",
        "sample",
        "-n",
        "5",
        "--since",
        "2026-01-01",
        "--until",
        "2026-12-31",
        "--seed",
        "FY26",
        "--json",
    )
    code, stdout, _ = _run(repo, *args)
    assert code == 1  # the sample contains exceptions
    data = orjson.loads(stdout)
    assert data["population"] == 9 and len(data["changes"]) == 5 and data["reconciliation"]["matches"]
    assert all(set(c) >= {"ticket", "reviewers", "approvals", "flags"} for c in data["changes"])
    again = orjson.loads(_run(repo, *args)[1])
    assert [c["id"] for c in again["changes"]] == [c["id"] for c in data["changes"]]


def test_sample_table_output(repo: SampleRepo) -> None:
    """The human view prints one row per sampled change and the reconciliation line."""
    code, stdout, _ = _run(
        repo, "changes", "sample", "-n", "9", "--since", "2026-01-01", "--until", "2026-12-31", "--seed", "1"
    )
    text = " ".join(stdout.split())
    assert code == 1 and "sampled 9 of 9" in text and "6 with exceptions" in text and "reconciled" in text


def test_vendor_review(repo: SampleRepo) -> None:
    """Two commands: the check flags stale reports and unmanaged SDKs; the report is the review table."""
    (repo.root / "requirements.txt").write_text("openai>=1\ncohere>=5\n", encoding="utf-8")
    code, stdout, _ = _run(repo, "vendors", "check", "--today", "2027-02-01", "--json")
    assert code == 1
    messages = [r["message"] for r in orjson.loads(stdout)["results"] if r["status"] == "WARN"]
    assert "OpenAI: SOC 2 report dated 2025-12-06 is older than 365 days" in messages
    assert any(m.startswith("Anthropic: SOC 2 report period ended") for m in messages)
    assert "unmanaged vendor: cohere (cohere) in requirements.txt has no register entry" in messages
    code, stdout, _ = _run(repo, "vendors", "report", "--format", "csv", "--today", "2027-02-01")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert [r["vendor"] for r in rows] == ["OpenAI", "Anthropic"]
    assert "SOC 2 report dated" in rows[0]["findings"]


def test_vendor_check_clean_on_fresh_register(repo: SampleRepo) -> None:
    """On the day the register was written, the vendor check passes (exit 0)."""
    code, stdout, _ = _run(repo, "vendors", "check", "--today", "2026-01-05")
    assert code == 0 and "OK" in stdout


def test_prompt_status_flags_unreviewed(repo: SampleRepo) -> None:
    """`prompts status` exits 1 and names each unreviewed version; v3 came through a reviewed PR."""
    code, stdout, _ = _run(repo, "prompts", "status", "--json")
    assert code == 1
    data = orjson.loads(stdout)
    states = {v["ref"]: v["state"] for v in data["versions"]}
    assert states == {"helpdesk@v1": "unreviewed", "helpdesk@v2": "unreviewed", "helpdesk@v3": "reviewed"}


def test_prompt_list_show_render_diff(repo: SampleRepo) -> None:
    """Listing, showing, rendering and diffing templates from the command line."""
    code, stdout, _ = _run(repo, "prompts", "list", "--json")
    assert code == 0 and [p["ref"] for p in orjson.loads(stdout)] == [
        "helpdesk@v1",
        "helpdesk@v2",
        "helpdesk@v3",
    ]
    code, stdout, _ = _run(repo, "prompts", "show", "helpdesk@v2")
    assert code == 0 and "{{ customer_name }}" in stdout
    code, stdout, _ = _run(
        repo,
        "prompts",
        "render",
        "helpdesk",
        "--var",
        "customer_name=Ada",
        "--var",
        "question=Where is my order?",
        "--var",
        "context=Orders ship in 2 days.",
    )
    assert code == 0 and stdout.startswith("Hi Ada!") and "answer briefly: Where is my order?" in stdout
    code, _, stderr = _run(repo, "prompts", "render", "helpdesk", "--var", "customer_name=Ada")
    assert code == 2 and "missing variables" in stderr
    code, stdout, _ = _run(repo, "prompts", "diff", "helpdesk@v2", "helpdesk@v3")
    assert code == 0 and "+answer briefly:" in stdout


def test_bad_prompt_reference_is_a_usage_error(repo: SampleRepo) -> None:
    """A malformed reference on the command line names the reference, not a `<config>` file (exit 2)."""
    for args in (("show", "Helpdesk@latest"), ("render", "Helpdesk@latest"), ("diff", "helpdesk@v2", "Helpdesk@latest")):
        code, _, stderr = _run(repo, "prompts", *args)
        err = " ".join(stderr.split())
        assert code == 2 and "invalid prompt reference 'Helpdesk@latest'" in err, err
        assert "<config>" not in err and "Traceback" not in err


def test_models_check_catches_renamed_prompt(repo: SampleRepo) -> None:
    """The model register still points at the pre-rename prompt: `models check` fails on it."""
    code, stdout, _ = _run(repo, "models", "check", "--today", "2026-06-01", "--json")
    assert code == 1
    fails = [r for r in orjson.loads(stdout)["results"] if r["status"] == "FAIL"]
    assert [r["check_id"] for r in fails] == ["models.prompt"]
    code, _, _ = _run(repo, "sources", "check", "--today", "2026-06-01")
    assert code == 0


def test_incident_lifecycle(repo: SampleRepo) -> None:
    """new -> update -> close -> show, with the timeline and root cause kept in the register file."""
    code, stdout, _ = _run(
        repo,
        "incidents",
        "new",
        "--title",
        "PII in model output",
        "--severity",
        "high",
        "--source",
        "alert:pii-output:42",
        "--description",
        "Email address in a reply",
        "--record",
        "abc123",
        "--actor",
        "oncall@example.com",
        "--json",
    )
    assert code == 0
    inc = orjson.loads(stdout)["id"]
    assert (
        _run(
            repo,
            "incidents",
            "update",
            inc,
            "--action",
            "Redaction rule tightened",
            "--status",
            "contained",
            "--actor",
            "oncall@example.com",
        )[0]
        == 0
    )
    code, _, stderr = _run(repo, "incidents", "close", inc, "--root-cause", "", "--remediation", "x")
    assert code == 2 and "root cause" in stderr
    assert (
        _run(
            repo,
            "incidents",
            "close",
            inc,
            "--root-cause",
            "Output post-scan was in flag mode",
            "--remediation",
            "Switched to redact; regression test added",
            "--actor",
            "lead@example.com",
        )[0]
        == 0
    )
    code, stdout, _ = _run(repo, "incidents", "show", inc, "--json")
    data = orjson.loads(stdout)
    assert code == 0 and data["status"] == "closed" and data["records"] == ["abc123"]
    assert [t["actor"] for t in data["timeline"]] == [
        "oncall@example.com",
        "oncall@example.com",
        "lead@example.com",
    ]
    code, stdout, _ = _run(repo, "incidents", "list", "--json")
    assert code == 0 and orjson.loads(stdout)[0]["overdue"] is False


def test_register_error_exits_2_with_location(repo: SampleRepo) -> None:
    """A broken register stops the report with exit 2 and file:line: field on stderr."""
    path = repo.root / "registers" / "vendors.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("owner: security", "onwer: security", 1), encoding="utf-8"
    )
    code, _, stderr = _run(repo, "vendors", "report")
    flat = stderr.replace("\n", "")  # rich wraps long lines at the terminal width
    assert code == 2
    assert "vendors.yaml:15: vendors[0].onwer: unknown field" in flat


def test_record_config_changes_and_go_live(repo: SampleRepo) -> None:
    """`changes record` appends config_change records; the population then shows when changes went live."""
    from soc2ai.config import load_config
    from soc2ai.ledger.keys import generate_keys

    config = load_config(repo.root / "soc2ai.toml")
    generate_keys(config.path(config.ledger.keys_dir), "acme")
    code, stdout, _ = _run(repo, "changes", "record", "--json")
    assert code == 0 and len(orjson.loads(stdout)["records"]) == 6  # 3 registers + 3 template versions
    assert orjson.loads(_run(repo, "changes", "record", "--json")[1])["records"] == []
    code, stdout, _ = _run(
        repo, "changes", "population", "--since", "2026-01-01", "--until", "2026-12-31", "--json"
    )
    assert code == 0
    live = {c["id"]: c["config_change"] for c in orjson.loads(stdout)["changes"]}
    assert live[repo.shas["initial"]] is not None  # registers unchanged since the initial import
    assert live[repo.shas["squash"]] is not None  # helpdesk@v3 as committed is what is recorded
