"""``prompts status``: each template version joined with its git history and review evidence (CC8.1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from soc2ai.errors import ConfigError
from soc2ai.governance import gitlog
from soc2ai.governance.changes import UNREVIEWED_FLAGS, Change, evaluate
from soc2ai.governance.checks import FAIL, OK, WARN, CheckResult
from soc2ai.governance.prompts import PromptRegistry
from soc2ai.governance.settings import GovernanceSettings


@dataclass(frozen=True, slots=True)
class VersionStatus:
    """Review evidence for one template version."""

    ref: str
    path: str
    template_status: str
    state: str  # reviewed | unreviewed | uncommitted | unmerged
    reasons: tuple[str, ...]
    changes: tuple[Change, ...]

    @property
    def last(self) -> Change | None:
        """The latest change to the file on the main branch."""
        return self.changes[-1] if self.changes else None

    @property
    def changed_at(self) -> datetime | None:
        """When the file last changed on the main branch."""
        return self.last.date if self.last else None

    def via(self) -> str:
        """How the last change landed: PR number, merge commit, or direct push."""
        last = self.last
        if last is None:
            return ""
        if last.pr:
            return f"PR #{last.pr}"
        return f"{last.kind} {last.id[:10]}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "ref": self.ref,
            "path": self.path,
            "template_status": self.template_status,
            "state": self.state,
            "reasons": list(self.reasons),
            "via": self.via(),
            "changes": [c.to_dict() for c in self.changes],
        }


def prompt_status(
    registry: PromptRegistry, repo: Path, settings: GovernanceSettings, *, pr_export: Path | None = None
) -> list[VersionStatus]:
    """For each version: every main-branch change to its file (following renames, not copies) and its evidence."""
    root = gitlog.repo_root(repo)
    gitlog.verify_branch(root, settings.main_branch)
    prs = gitlog.load_pr_export(pr_export) if pr_export else {}
    cache: dict[str, Change] = {}
    out: list[VersionStatus] = []
    for tpl in registry.list():
        try:
            rel = tpl.path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError as exc:
            raise ConfigError("prompt file is outside the git repository", file=str(tpl.path)) from exc
        commits = gitlog.file_history(root, settings.main_branch, rel)
        changes: list[Change] = []
        for commit in reversed(commits):  # oldest first
            if commit.sha not in cache:
                cache[commit.sha] = evaluate(root, commit, gitlog.changed_files(root, commit), prs, settings)
            changes.append(cache[commit.sha])
        dirty = gitlog.git(root, "status", "--porcelain", "--", rel).strip()
        # Committed is not merged: on another branch the file can differ from main, whose history
        # (reviewed or not) says nothing about this text.
        off_main = not dirty and bool(
            gitlog.git(root, "diff", "--name-only", settings.main_branch, "--", rel).strip()
        )
        reasons = [
            f"{flag} ({change.id[:10]})"
            for change in changes
            for flag in change.flags
            if flag in UNREVIEWED_FLAGS
        ]
        if dirty:
            state = "uncommitted"
            reasons.append("working copy differs from git")
        elif not changes:
            state = "unmerged"
            reasons.append(f"not on {settings.main_branch}")
        elif off_main:
            state = "unmerged"
            reasons.append(f"differs from {settings.main_branch} (committed on another branch)")
        else:
            state = "unreviewed" if reasons else "reviewed"
        out.append(
            VersionStatus(
                ref=tpl.ref,
                path=rel,
                template_status=tpl.status,
                state=state,
                reasons=tuple(reasons),
                changes=tuple(changes),
            )
        )
    return out


def check_prompts(
    prompts_dir: Path,
    settings: GovernanceSettings,
    *,
    repo: Path | None = None,
    pr_export: Path | None = None,
) -> list[CheckResult]:
    """Registry loads and is non-empty, each template has a current version, every change was reviewed."""
    try:
        registry = PromptRegistry.load(prompts_dir)
    except ConfigError as exc:
        return [
            CheckResult("prompts.registry", "CC8.1", FAIL, str(exc), "fix the file, or run `soc2ai init`")
        ]
    if not registry.list():
        return [
            CheckResult(
                "prompts.registry",
                "CC8.1",
                FAIL,
                f"no prompt templates in {prompts_dir}",
                "add prompts/<name>/v1.txt with a header, or run `soc2ai init`",
            )
        ]
    results = [
        CheckResult(
            "prompts.registry",
            "CC8.1",
            OK,
            f"{len(registry.list())} template versions in {len(registry.names())} prompts",
        )
    ]
    results.extend(
        CheckResult(
            "prompts.current",
            "CC8.1",
            WARN,
            f"{name}: every version is deprecated",
            "mark one version `status: current` or remove the prompt",
        )
        for name in registry.names()
        if registry.current(name) is None
    )
    where = repo or prompts_dir
    if not gitlog.is_repo(where):
        results.append(
            CheckResult(
                "prompts.review",
                "CC8.1",
                WARN,
                "prompts are not in a git repository: change review cannot be shown",
                "keep prompts/ in git and merge changes through reviewed pull requests",
            )
        )
        return results
    statuses = prompt_status(registry, where, settings, pr_export=pr_export)
    bad = [s for s in statuses if s.state != "reviewed"]
    results.extend(
        CheckResult(
            "prompts.review",
            "CC8.1",
            FAIL,
            f"{s.ref} {s.state}: {'; '.join(s.reasons)}",
            "merge prompt changes through a reviewed pull request (independent approval)",
        )
        for s in bad
    )
    if not bad:
        results.append(
            CheckResult(
                "prompts.review",
                "CC8.1",
                OK,
                f"all {len(statuses)} template versions reached {settings.main_branch} "
                "through an independent review",
            )
        )
    return results
