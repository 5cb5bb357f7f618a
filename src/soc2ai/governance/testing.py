"""Test helpers: build real git repositories with controlled authors, dates, merges and trailers.

``build_sample_repo`` creates the sample project used by the tests and the docs: reviewed merges, a
direct push to main, a self-approved merge, edits after approval, a revert, a rename and squash merges,
plus a ``gh pr list`` export.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import orjson

from soc2ai.governance.examples import write_examples

ALICE = ("Alice", "alice@example.com")
BOB = ("Bob", "bob@example.com")
CAROL = ("Carol", "carol@example.com")
DAVE = ("Dave", "dave@example.com")
ERIN = ("Erin", "erin@example.com")
GITHUB = ("GitHub", "noreply@github.com")


class RepoBuilder:
    """A git repository whose every commit has an explicit author, committer and date."""

    def __init__(self, root: Path, *, branch: str = "main") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._git = shutil.which("git") or "git"
        self.run("init", "-q", "-b", branch)
        self.run("config", "commit.gpgsign", "false")
        self.run("config", "user.name", ALICE[0])
        self.run("config", "user.email", ALICE[1])

    def run(
        self,
        *args: str,
        author: tuple[str, str] = ALICE,
        committer: tuple[str, str] | None = None,
        when: str = "2026-01-01T00:00:00Z",
    ) -> str:
        """Run git with a clean, explicit environment (no user/system config, fixed identities and dates)."""
        committer = committer or author
        env = {
            "HOME": str(self.root),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(self.root / ".nogit"),
            "GIT_AUTHOR_NAME": author[0],
            "GIT_AUTHOR_EMAIL": author[1],
            "GIT_AUTHOR_DATE": when,
            "GIT_COMMITTER_NAME": committer[0],
            "GIT_COMMITTER_EMAIL": committer[1],
            "GIT_COMMITTER_DATE": when,
            "LC_ALL": "C",
        }
        proc = subprocess.run(  # noqa: S603 - test helper, fixed git executable, no shell
            [self._git, "-C", str(self.root), *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip()

    def write(self, files: dict[str, str | None]) -> None:
        """Write (or, for None, delete) files relative to the root."""
        for rel, text in files.items():
            path = self.root / rel
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")

    def commit(
        self,
        message: str,
        files: dict[str, str | None] | None = None,
        *,
        author: tuple[str, str] = ALICE,
        committer: tuple[str, str] | None = None,
        when: str = "2026-01-01T00:00:00Z",
    ) -> str:
        """Commit the given file changes (or everything already staged/written) and return the sha."""
        if files:
            self.write(files)
        self.run("add", "-A")
        self.run(
            "commit", "-q", "--allow-empty", "-m", message, author=author, committer=committer, when=when
        )
        return self.head()

    def head(self, ref: str = "HEAD") -> str:
        """Full sha of ``ref``."""
        return self.run("rev-parse", ref)

    def checkout(self, branch: str, *, create: bool = False) -> None:
        """Switch (or create and switch) branches."""
        self.run("checkout", "-q", *(["-b"] if create else []), branch)

    def merge(self, branch: str, message: str, *, committer: tuple[str, str], when: str) -> str:
        """``git merge --no-ff`` of ``branch`` into the current branch, with an explicit message."""
        self.run("merge", "-q", "--no-ff", "-m", message, branch, author=committer, when=when)
        return self.head()

    def revert(self, sha: str, *, author: tuple[str, str], when: str) -> str:
        """``git revert`` of ``sha`` (standard message) committed directly."""
        self.run("revert", "--no-edit", sha, author=author, when=when)
        return self.head()

    def mv(self, src: str, dst: str) -> None:
        """Stage a rename."""
        (self.root / dst).parent.mkdir(parents=True, exist_ok=True)
        self.run("mv", src, dst)


def _pr(
    number: int,
    title: str,
    branch: str,
    author: str,
    merged_at: str,
    merge_commit: str,
    reviews: list[tuple[str, str, str, str | None]],
) -> dict[str, object]:
    return {
        "number": number,
        "title": title,
        "url": f"https://github.com/acme/app/pull/{number}",
        "author": {"login": author},
        "mergedAt": merged_at,
        "mergeCommit": {"oid": merge_commit},
        "headRefName": branch,
        "labels": [{"name": "prompt"}] if "prompt" in title.lower() else [],
        "reviews": [
            {
                "author": {"login": who},
                "state": state,
                "submittedAt": at,
                **({"commit": {"oid": oid}} if oid else {}),
            }
            for who, state, at, oid in reviews
        ],
    }


@dataclass
class SampleRepo:
    """The sample repository and the commits of interest by name."""

    root: Path
    shas: dict[str, str] = field(default_factory=dict)
    pr_export: Path | None = None


SAMPLE_TOML = """\
[project]
name = "acme"

[governance]
change_paths = ["prompts/", "registers/", "src/", "soc2ai.toml"]
pr_export = "evidence/prs.json"
"""

_V2 = """\
---
owner: support-team@example.com
status: current
description: Friendlier tone.
variables: [customer_name, question, context]
---
Hi {{ customer_name }}! Using only this context:
{{ context }}
answer: {{ question }}
"""


def build_sample_repo(root: Path) -> SampleRepo:
    """Build the sample project (see module docstring); dates are in 2026, all UTC."""
    repo = RepoBuilder(root)
    write_examples(root, today=date(2026, 1, 5))
    repo.write({"soc2ai.toml": SAMPLE_TOML, "src/app.py": "print('hello')\n", "README.md": "# acme\n"})
    s = SampleRepo(root)
    s.shas["initial"] = repo.commit("Initial import (ENG-1)", author=ALICE, when="2026-01-05T10:00:00Z")

    repo.checkout("feature/ENG-12-tone", create=True)
    repo.commit(
        "Friendlier support prompt",
        {"prompts/support_reply/v2.txt": _V2},
        author=BOB,
        when="2026-02-01T09:00:00Z",
    )
    repo.checkout("main")
    s.shas["reviewed_merge"] = repo.merge(
        "feature/ENG-12-tone",
        "Merge branch 'feature/ENG-12-tone'\n\nReviewed-by: Carol <carol@example.com>\n"
        "Approved-by: Carol <carol@example.com>",
        committer=CAROL,
        when="2026-02-02T12:00:00Z",
    )

    s.shas["direct_push"] = repo.commit(
        "Tweak wording",
        {"prompts/support_reply/v2.txt": _V2.replace("Friendlier", "Warmer")},
        author=ALICE,
        when="2026-02-10T08:00:00Z",
    )

    repo.checkout("fix-typo", create=True)
    repo.commit("Fix typo", {"src/app.py": "print('hello!')\n"}, author=BOB, when="2026-03-01T09:00:00Z")
    repo.checkout("main")
    s.shas["self_approved"] = repo.merge(
        "fix-typo",
        "Merge branch 'fix-typo'\n\nApproved-by: Bob <bob@example.com>",
        committer=BOB,
        when="2026-03-01T10:00:00Z",
    )

    repo.checkout("ENG-30-eval", create=True)
    repo.commit(
        "Update eval thresholds\n\nApproved-by: Erin <erin@example.com>",
        {"src/eval.py": "THRESHOLD = 0.9\n"},
        author=DAVE,
        when="2026-03-09T09:00:00Z",
    )
    repo.commit(
        "One more change after approval",
        {"src/app.py": "print('hi')\n"},
        author=DAVE,
        when="2026-03-09T18:00:00Z",
    )
    repo.checkout("main")
    s.shas["edited_after_trailer"] = repo.merge(
        "ENG-30-eval", "Merge branch 'ENG-30-eval'", committer=ERIN, when="2026-03-10T10:00:00Z"
    )

    s.shas["revert"] = repo.revert(s.shas["direct_push"], author=ALICE, when="2026-04-01T07:00:00Z")

    repo.checkout("ENG-40-rename", create=True)
    repo.mv("prompts/support_reply", "prompts/helpdesk")
    s.shas["rename_branch_head"] = repo.commit(
        "Rename support_reply prompt to helpdesk", author=BOB, when="2026-04-04T09:00:00Z"
    )
    repo.checkout("main")
    s.shas["pr_merge"] = repo.merge(
        "ENG-40-rename",
        "Merge pull request #7 from acme/ENG-40-rename\n\nRename prompt",
        committer=CAROL,
        when="2026-04-05T10:00:00Z",
    )

    s.shas["docs_only"] = repo.commit(
        "Docs", {"docs/notes.md": "notes\n"}, author=ALICE, when="2026-04-06T10:00:00Z"
    )

    v3 = _V2.replace("Friendlier tone.", "Shorter answers.").replace("answer:", "answer briefly:")
    s.shas["squash"] = repo.commit(
        "Add helpdesk prompt v3 (#8)",
        {"prompts/helpdesk/v3.txt": v3},
        author=BOB,
        committer=GITHUB,
        when="2026-04-20T10:00:00Z",
    )

    repo.checkout("ENG-50-retry", create=True)
    s.shas["approved_commit"] = repo.commit(
        "Retry on timeout", {"src/app.py": "print('retry')\n"}, author=BOB, when="2026-05-01T09:00:00Z"
    )
    s.shas["late_commit"] = repo.commit(
        "Also change the prompt", {"src/app.py": "print('retry!')\n"}, author=BOB, when="2026-05-01T15:00:00Z"
    )
    repo.checkout("main")
    s.shas["pr_edited"] = repo.merge(
        "ENG-50-retry",
        "Merge pull request #9 from acme/ENG-50-retry",
        committer=CAROL,
        when="2026-05-02T10:00:00Z",
    )

    export = [
        _pr(
            7,
            "Rename support prompt",
            "ENG-40-rename",
            "bob",
            "2026-04-05T10:00:00Z",
            s.shas["pr_merge"],
            [("carol", "APPROVED", "2026-04-04T12:00:00Z", s.shas["rename_branch_head"])],
        ),
        _pr(
            8,
            "Add helpdesk prompt v3",
            "ENG-41-v3",
            "bob",
            "2026-04-20T10:00:00Z",
            s.shas["squash"],
            [
                ("carol", "COMMENTED", "2026-04-19T10:00:00Z", None),
                ("carol", "APPROVED", "2026-04-19T11:00:00Z", None),
            ],
        ),
        _pr(
            9,
            "Retry on timeout",
            "ENG-50-retry",
            "bob",
            "2026-05-02T10:00:00Z",
            s.shas["pr_edited"],
            [("carol", "APPROVED", "2026-05-01T10:00:00Z", s.shas["approved_commit"])],
        ),
    ]
    s.pr_export = root / "evidence" / "prs.json"
    s.pr_export.parent.mkdir(parents=True, exist_ok=True)
    s.pr_export.write_bytes(orjson.dumps(export, option=orjson.OPT_INDENT_2))
    return s
