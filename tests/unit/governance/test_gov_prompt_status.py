"""Prompt status: each template version joined with git history; unreviewed changes flagged."""

from __future__ import annotations

from pathlib import Path

from soc2ai.governance.checks import FAIL, OK, WARN
from soc2ai.governance.prompt_status import check_prompts, prompt_status
from soc2ai.governance.prompts import PromptRegistry
from soc2ai.governance.settings import GovernanceSettings
from soc2ai.governance.testing import SampleRepo

SETTINGS = GovernanceSettings()


def test_versions_follow_renames_not_copies(sample: SampleRepo) -> None:
    """v2's history crosses the directory rename; v3 (a copy of v2) has only its own commit."""
    reg = PromptRegistry.load(sample.root / "prompts")
    by_ref = {s.ref: s for s in prompt_status(reg, sample.root, SETTINGS, pr_export=sample.pr_export)}
    v2 = by_ref["helpdesk@v2"]
    assert [c.id for c in v2.changes] == [
        sample.shas[k] for k in ("reviewed_merge", "direct_push", "revert", "pr_merge")
    ]
    assert v2.state == "unreviewed" and any(r.startswith("direct_push") for r in v2.reasons)
    assert v2.via() == "PR #7"
    v3 = by_ref["helpdesk@v3"]
    assert [c.id for c in v3.changes] == [sample.shas["squash"]] and v3.state == "reviewed"
    assert by_ref["helpdesk@v1"].state == "unreviewed"  # the initial import went straight to main


def test_uncommitted_edit_is_flagged(sample: SampleRepo, tmp_path: Path) -> None:
    """A template edited in the working copy is reported as uncommitted, then restored."""
    path = sample.root / "prompts" / "helpdesk" / "v3.txt"
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(original + "extra\n", encoding="utf-8")
        reg = PromptRegistry.load(sample.root / "prompts")
        v3 = next(
            s
            for s in prompt_status(reg, sample.root, SETTINGS, pr_export=sample.pr_export)
            if s.ref == "helpdesk@v3"
        )
        assert v3.state == "uncommitted"
    finally:
        path.write_text(original, encoding="utf-8")


def test_check_prompts_flags_every_unreviewed_version(sample: SampleRepo) -> None:
    """The check has one FAIL per unreviewed version and names the reason."""
    results = check_prompts(sample.root / "prompts", SETTINGS, pr_export=sample.pr_export)
    fails = [r for r in results if r.status == FAIL]
    assert results[0].status == OK
    assert sorted(r.message.split(" ", 1)[0] for r in fails) == ["helpdesk@v1", "helpdesk@v2"]
    assert all(r.criterion == "CC8.1" for r in results)


def test_check_prompts_outside_git_and_empty(tmp_path: Path) -> None:
    """Outside git the review evidence is a WARN; an empty prompts dir is a FAIL."""
    (tmp_path / "prompts").mkdir()
    assert [r.status for r in check_prompts(tmp_path / "prompts", SETTINGS)] == [FAIL]
    d = tmp_path / "prompts" / "p"
    d.mkdir()
    (d / "v1.txt").write_text("---\nowner: a\nstatus: current\n---\nhi\n", encoding="utf-8")
    assert [r.status for r in check_prompts(tmp_path / "prompts", SETTINGS)] == [OK, WARN]


def test_version_committed_on_another_branch_is_unmerged(tmp_path: Path) -> None:
    """Main's reviewed history says nothing about a text committed on a feature branch: not reviewed."""
    from soc2ai.governance.testing import BOB, CAROL, RepoBuilder

    tpl = "---\nowner: a@example.com\nstatus: current\nvariables: [q]\n---\nAnswer {{ q }}\n"
    repo = RepoBuilder(tmp_path / "r")
    repo.commit("init ENG-1", {"README.md": "x\n"}, when="2026-01-01T00:00:00Z")
    repo.checkout("ENG-2-prompt", create=True)
    repo.commit("add prompt", {"prompts/p/v1.txt": tpl}, author=BOB, when="2026-01-02T00:00:00Z")
    repo.checkout("main")
    repo.merge(
        "ENG-2-prompt",
        "Merge branch 'ENG-2-prompt'\n\nApproved-by: Carol <carol@example.com>",
        committer=CAROL,
        when="2026-01-03T00:00:00Z",
    )
    prompts = repo.root / "prompts"
    [status] = prompt_status(PromptRegistry.load(prompts), repo.root, SETTINGS)
    assert status.state == "reviewed"
    repo.checkout("ENG-3-rewrite", create=True)
    repo.commit(
        "rewrite",
        {"prompts/p/v1.txt": tpl.replace("Answer", "Just answer")},
        author=BOB,
        when="2026-01-04T00:00:00Z",
    )
    [status] = prompt_status(PromptRegistry.load(prompts), repo.root, SETTINGS)
    assert status.state == "unmerged" and "differs from main" in status.reasons[0]
    fails = [r for r in check_prompts(prompts, SETTINGS) if r.status == FAIL]
    assert len(fails) == 1 and fails[0].message.startswith("p@v1 unmerged")
