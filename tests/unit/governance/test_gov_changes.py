"""Change evidence from real git repositories: population, flags, reconciliation, sampling, PR export."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from soc2ai.errors import ConfigError
from soc2ai.governance.changes import Change, changes_population, find_tickets, path_matcher, reconcile
from soc2ai.governance.changes import sample as draw
from soc2ai.governance.gitlog import Person, load_pr_export
from soc2ai.governance.settings import GovernanceSettings
from soc2ai.governance.testing import ALICE, BOB, DAVE, ERIN, RepoBuilder, SampleRepo

SETTINGS = GovernanceSettings(change_paths=["prompts/", "registers/", "src/", "soc2ai.toml"])
YEAR = (date(2026, 1, 1), date(2026, 12, 31))


def _population(sample_repo: SampleRepo, since: date = YEAR[0], until: date = YEAR[1]) -> dict[str, Change]:
    changes = changes_population(sample_repo.root, since, until, SETTINGS, pr_export=sample_repo.pr_export)
    by_sha = {v: k for k, v in sample_repo.shas.items()}
    return {by_sha.get(c.id, c.id): c for c in changes}


def test_population_is_complete_and_reconciles(sample: SampleRepo) -> None:
    """Every first-parent change touching the paths is listed; the count matches git rev-list."""
    pop = _population(sample)
    assert list(pop) == [
        "initial",
        "reviewed_merge",
        "direct_push",
        "self_approved",
        "edited_after_trailer",
        "revert",
        "pr_merge",
        "squash",
        "pr_edited",
    ]
    rec = reconcile(sample.root, list(pop.values()), *YEAR, SETTINGS)
    assert rec.matches and rec.rev_list == 9 and rec.commits_in_range == 10
    assert "--first-parent" in rec.command and rec.command.endswith("-- prompts/ registers/ src/ soc2ai.toml")


def test_all_paths_includes_docs_commit(sample: SampleRepo) -> None:
    """With no path filter every first-parent commit is a change, and it still reconciles."""
    settings = GovernanceSettings()
    changes = changes_population(sample.root, *YEAR, settings)
    rec = reconcile(sample.root, changes, *YEAR, settings)
    assert len(changes) == 10 and rec.matches


def test_empty_commits_are_neither_changes_nor_counted_by_the_reconciliation(tmp_path: Path) -> None:
    """A commit that changes no file (an empty root commit, ``commit --allow-empty``; `soc2ai demo` starts
    its repository with one) is not a change, and the independent ``git rev-list`` count leaves it out too,
    with or without configured paths: the population reconciles."""
    repo = RepoBuilder(tmp_path / "r")
    repo.commit("root", when="2026-02-01T00:00:00Z")
    repo.commit("add config", {"soc2ai.toml": "[project]\n"}, when="2026-02-02T00:00:00Z")
    repo.commit("empty marker", when="2026-02-03T00:00:00Z")
    for settings in (GovernanceSettings(), SETTINGS):
        changes = changes_population(repo.root, *YEAR, settings)
        rec = reconcile(repo.root, changes, *YEAR, settings)
        assert len(changes) == 1 and rec.rev_list == 1 and rec.matches, (settings.change_paths, rec)


def test_period_bounds_are_inclusive_days(sample: SampleRepo) -> None:
    """--since/--until cover whole UTC days, inclusive, on the merge (committer) time."""
    pop = _population(sample, date(2026, 2, 2), date(2026, 3, 1))
    assert list(pop) == ["reviewed_merge", "direct_push", "self_approved"]
    rec = reconcile(sample.root, list(pop.values()), date(2026, 2, 2), date(2026, 3, 1), SETTINGS)
    assert rec.matches and rec.population == 3


def test_reviewed_merge_with_trailers(sample: SampleRepo) -> None:
    """A merge with an independent Reviewed-by/Approved-by and a ticket branch has no flags."""
    c = _population(sample)["reviewed_merge"]
    assert c.kind == "merge" and c.flags == () and c.reviewed
    assert c.ticket == "ENG-12" and c.branch == "feature/ENG-12-tone"
    assert c.author == "bob@example.com" and c.approvals == ("carol@example.com",)


def test_direct_push_is_flagged(sample: SampleRepo) -> None:
    """A commit straight to main is unreviewed and, without a ticket, flagged for both."""
    c = _population(sample)["direct_push"]
    assert c.kind == "direct" and not c.reviewed
    assert set(c.flags) == {"direct_push", "missing_review", "missing_ticket"}


def test_self_approval_is_flagged(sample: SampleRepo) -> None:
    """An Approved-by trailer naming the change's own author is self-approval."""
    c = _population(sample)["self_approved"]
    assert "self_approval" in c.flags and "missing_review" in c.flags


def test_edit_after_trailer_approval(sample: SampleRepo) -> None:
    """A branch commit approved by trailer, followed by more commits, is edited after approval."""
    c = _population(sample)["edited_after_trailer"]
    assert "edited_after_approval" in c.flags and c.approvals == ("erin@example.com",)
    assert c.ticket == "ENG-30"


def test_revert_is_recognised(sample: SampleRepo) -> None:
    """git's standard revert message links the reverted commit."""
    c = _population(sample)["revert"]
    assert c.revert_of == sample.shas["direct_push"] and "revert" in c.flags and "direct_push" in c.flags


def test_pr_export_review_and_rename(sample: SampleRepo) -> None:
    """A PR merge approved on its head commit is reviewed; the rename lists old and new paths."""
    c = _population(sample)["pr_merge"]
    assert c.pr == 7 and c.pr_url.endswith("/pull/7") and c.reviewed and c.flags == ()
    assert c.reviewers == ("carol",) and c.ticket == "ENG-40"
    assert "prompts/support_reply/v1.txt" in c.files and "prompts/helpdesk/v1.txt" in c.files


def test_squash_merge_from_export(sample: SampleRepo) -> None:
    """A non-merge commit found in the PR export is a PR change; '(#8)' is its PR, not its ticket."""
    c = _population(sample)["squash"]
    assert c.kind == "pr" and c.pr == 8 and c.flags == ()
    assert c.ticket == "ENG-41" and c.committer == "noreply@github.com"


def test_approval_on_older_commit_is_edited_after(sample: SampleRepo) -> None:
    """An approval whose commit is not the merged head means the code changed after approval."""
    c = _population(sample)["pr_edited"]
    assert c.flags == ("edited_after_approval",) and not c.reviewed


def test_without_export_pr_number_comes_from_message(sample: SampleRepo) -> None:
    """Without the export, the PR number is read from GitHub's merge message but review is missing."""
    changes = changes_population(sample.root, date(2026, 4, 5), date(2026, 4, 5), SETTINGS)
    assert len(changes) == 1 and changes[0].pr == 7 and "missing_review" in changes[0].flags


def test_sample_is_reproducible(sample: SampleRepo) -> None:
    """The same seed draws the same changes; the sample is a subset in date order."""
    pop = list(_population(sample).values())
    first = [c.id for c in draw(pop, 4, 42)]
    sample_ids = first
    assert [c.id for c in draw(list(reversed(pop)), 4, 42)] == first
    assert len(set(sample_ids)) == 4 and set(sample_ids) <= {c.id for c in pop}
    dates = [c.date for c in draw(pop, 4, 42)]
    assert dates == sorted(dates)
    draws = {tuple(c.id for c in draw(pop, 4, s)) for s in range(10)}
    assert len(draws) > 1
    assert len(draw(pop, 50, 1)) == len(pop)
    with pytest.raises(ValueError):
        draw(pop, -1, 1)


def test_ticket_patterns() -> None:
    """Jira/Linear keys, #refs and URLs are found; standards and model names are not tickets."""
    s = GovernanceSettings()
    assert find_tickets(["Fix UTF-8 handling per RFC-9162 and GPT-4 output, see ENG-42"], s) == ("ENG-42",)
    assert find_tickets(["closes #17", "https://linear.app/acme/issue/OPS-9/x"], s) == (
        "#17",
        "https://linear.app/acme/issue/OPS-9/x",
    )
    assert find_tickets(["https://acme.atlassian.net/browse/SEC-3 and SEC-3"], s) == (
        "https://acme.atlassian.net/browse/SEC-3",
        "SEC-3",
    )
    assert find_tickets(["nothing here", "a&#39;s"], s) == ()
    custom = GovernanceSettings(ticket_patterns=[r"\bT\d+\b"])
    assert find_tickets(["T12 and ENG-1"], custom) == ("T12",)


def test_path_matcher() -> None:
    """Prefixes match whole path components; globs match anywhere; empty matches all."""
    m = path_matcher(["src/", "*.toml"])
    assert m("src/a.py") and m("soc2ai.toml") and not m("srcx/a.py") and not m("docs/a.md")
    assert path_matcher([])("anything")


def test_missing_branch_is_config_error(sample: SampleRepo) -> None:
    """A main branch that does not exist names the setting."""
    with pytest.raises(ConfigError) as exc:
        changes_population(sample.root, *YEAR, GovernanceSettings(main_branch="trunk"))
    assert exc.value.field == "governance.main_branch"


def test_pr_export_errors(tmp_path: Path) -> None:
    """A malformed PR export is rejected naming the file and the field."""
    path = tmp_path / "prs.json"
    path.write_bytes(b"{}")
    with pytest.raises(ConfigError, match="JSON array"):
        load_pr_export(path)
    path.write_bytes(orjson.dumps([{"number": "7"}]))
    with pytest.raises(ConfigError) as exc:
        load_pr_export(path)
    assert exc.value.field == "[0].number"
    path.write_bytes(
        orjson.dumps(
            [
                {
                    "number": 7,
                    "author": {"login": "a"},
                    "mergeCommit": {"oid": "ab"},
                    "reviews": [{"state": "APPROVED", "author": "carol"}],
                }
            ]
        )
    )
    with pytest.raises(ConfigError) as exc:
        load_pr_export(path)
    assert exc.value.field == "[0].reviews[0].author"
    path.write_bytes(b"[nope")
    with pytest.raises(ConfigError, match="invalid JSON"):
        load_pr_export(path)


def test_changes_requested_after_approval_withdraws_it(tmp_path: Path) -> None:
    """A reviewer's later CHANGES_REQUESTED replaces their earlier approval: merged without approval."""
    repo = RepoBuilder(tmp_path / "r")
    repo.commit("init", {"src/a.py": "1\n"}, author=ALICE, when="2026-01-01T00:00:00Z")
    repo.checkout("ENG-5-x", create=True)
    head = repo.commit("change", {"src/a.py": "2\n"}, author=BOB, when="2026-01-02T00:00:00Z")
    repo.checkout("main")
    merge = repo.merge(
        "ENG-5-x", "Merge pull request #5 from acme/ENG-5-x", committer=BOB, when="2026-01-03T00:00:00Z"
    )
    export = tmp_path / "prs.json"
    export.write_bytes(
        orjson.dumps(
            [
                {
                    "number": 5,
                    "title": "x",
                    "url": "u",
                    "author": {"login": "bob"},
                    "mergedAt": "2026-01-03T00:00:00Z",
                    "mergeCommit": {"oid": merge},
                    "labels": [],
                    "reviews": [
                        {
                            "author": {"login": "carol"},
                            "state": "APPROVED",
                            "submittedAt": "2026-01-02T01:00:00Z",
                            "commit": {"oid": head},
                        },
                        {
                            "author": {"login": "carol"},
                            "state": "CHANGES_REQUESTED",
                            "submittedAt": "2026-01-02T02:00:00Z",
                            "commit": {"oid": head},
                        },
                    ],
                }
            ]
        )
    )
    changes = changes_population(
        repo.root, date(2026, 1, 3), date(2026, 1, 3), GovernanceSettings(), pr_export=export
    )
    assert changes[0].approvals == () and changes[0].reviewers == ("carol",)
    assert changes[0].flags == ("missing_approval",) and not changes[0].reviewed


def test_person_matching() -> None:
    """Identities match across email, local part, login and name, case-insensitively."""
    assert Person.parse("Bob <Bob@Example.com>").same_as(Person(login="bob"))
    assert Person.parse("@carol").same_as(Person.parse("carol@example.com"))
    assert not Person.parse("Alice <alice@example.com>").same_as(Person(login="bob"))


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed")
def test_signed_commits(tmp_path: Path) -> None:
    """A good SSH signature reads as 'G'; with require_signed an unsigned main commit is flagged."""
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed"
    allowed.write_text(f"alice@example.com {(tmp_path / 'id.pub').read_text().strip()}\n", encoding="utf-8")
    repo = RepoBuilder(tmp_path / "r")
    for k, v in (
        ("gpg.format", "ssh"),
        ("user.signingkey", str(key)),
        ("gpg.ssh.allowedSignersFile", str(allowed)),
    ):
        repo.run("config", k, v)
    repo.write({"src/a.py": "1\n"})
    repo.run("add", "-A")
    repo.run("commit", "-q", "-S", "-m", "signed ENG-1", author=ALICE, when="2026-01-01T00:00:00Z")
    signed = repo.head()
    unsigned = repo.commit("unsigned ENG-2", {"src/a.py": "2\n"}, author=ALICE, when="2026-01-02T00:00:00Z")
    changes = {
        c.id: c
        for c in changes_population(
            repo.root, date(2026, 1, 1), date(2026, 1, 2), GovernanceSettings(require_signed=True)
        )
    }
    assert changes[signed].signature == "G" and "unsigned" not in changes[signed].flags
    assert changes[unsigned].signature == "N" and "unsigned" in changes[unsigned].flags


@given(
    st.lists(st.integers(min_value=0, max_value=10**6), unique=True, max_size=40),
    st.integers(min_value=0, max_value=50),
    st.text(max_size=8),
)
def test_sample_properties(stamps: list[int], n: int, seed: str) -> None:
    """For any population: deterministic, order-independent, size min(n, len), a subset in date order."""
    from datetime import UTC, datetime

    pop = [
        Change(
            id=f"{s:040x}",
            date=datetime.fromtimestamp(1.7e9 + s, UTC),
            kind="merge",
            title="t",
            author="a",
            authors=("a",),
            committer="c",
            files=("f",),
        )
        for s in stamps
    ]
    picked = draw(pop, n, seed)
    assert picked == draw(list(reversed(pop)), n, seed)
    assert len(picked) == min(n, len(pop)) and {c.id for c in picked} <= {c.id for c in pop}
    assert [c.date for c in picked] == sorted(c.date for c in picked)


def test_bulk_history_matches_per_commit_git(sample: SampleRepo, tmp_path: Path) -> None:
    """The one-call helpers agree with per-commit git (back-merges and branches of branches included)."""
    from soc2ai.governance import gitlog

    repo = RepoBuilder(tmp_path / "r")
    repo.commit("init", {"src/a.py": "0\n"}, when="2026-01-01T00:00:00Z")
    repo.checkout("c", create=True)
    repo.commit("c1", {"src/c.py": "1\n"}, author=BOB, when="2026-01-02T00:00:00Z")
    repo.checkout("b", create=True)  # branched from c before c is merged
    repo.commit("b1", {"src/b.py": "1\n"}, author=BOB, when="2026-01-03T00:00:00Z")
    repo.checkout("main")
    repo.merge("c", "Merge branch 'c'", committer=ALICE, when="2026-01-04T00:00:00Z")
    repo.commit("main work", {"src/a.py": "1\n"}, when="2026-01-05T00:00:00Z")
    repo.checkout("b")
    repo.merge("main", "Merge branch 'main' into b", committer=BOB, when="2026-01-06T00:00:00Z")
    repo.commit("b2", {"src/b.py": "2\n"}, author=BOB, when="2026-01-07T00:00:00Z")
    repo.checkout("main")
    repo.merge("b", "Merge branch 'b'", committer=ALICE, when="2026-01-08T00:00:00Z")
    for root in (repo.root, sample.root):
        chain = gitlog.log(root, "--first-parent", "main")
        files = gitlog.first_parent_files(root, "main")
        merged = gitlog.branch_commits(root, "main")
        for commit in chain:
            assert files[commit.sha] == gitlog.changed_files(root, commit), commit.subject
            if commit.is_merge:
                expected = gitlog.log(root, *commit.parents[1:], f"^{commit.parents[0]}")
                assert {c.sha for c in merged[commit.sha]} == {c.sha for c in expected}, commit.subject
                assert merged[commit.sha][0].sha == commit.parents[-1]
    b_merge = gitlog.log(repo.root, "-1", "main")[0]
    assert sorted(c.subject for c in gitlog.branch_commits(repo.root, "main")[b_merge.sha]) == [
        "Merge branch 'main' into b",
        "b1",
        "b2",
    ]


def _export(path: Path, number: int, merge: str, reviews: list[dict[str, object]]) -> Path:
    path.write_bytes(
        orjson.dumps(
            [
                {
                    "number": number,
                    "title": f"Change ENG-{number}",
                    "url": f"https://github.com/acme/app/pull/{number}",
                    "author": {"login": "bob"},
                    "mergedAt": "2026-01-03T00:00:00Z",
                    "mergeCommit": {"oid": merge},
                    "reviews": reviews,
                }
            ]
        )
    )
    return path


JAN = (date(2026, 1, 1), date(2026, 1, 31))


def test_co_author_approving_a_squash_merge_is_self_approval(tmp_path: Path) -> None:
    """GitHub's squash message names co-authors; a co-author's approval is not independent."""
    from soc2ai.governance.testing import GITHUB

    repo = RepoBuilder(tmp_path / "r")
    repo.commit("init", {"src/a.py": "0\n"}, when="2026-01-01T00:00:00Z")
    sq = repo.commit(
        "Tune retries (#12)\n\n* retry\n\nCo-authored-by: Carol <carol@example.com>",
        {"src/a.py": "1\n"},
        author=BOB,
        committer=GITHUB,
        when="2026-01-03T00:00:00Z",
    )
    approve = {"author": {"login": "carol"}, "state": "APPROVED", "submittedAt": "2026-01-02T00:00:00Z"}
    export = _export(tmp_path / "prs.json", 12, sq, [approve])
    [_, c] = changes_population(repo.root, *JAN, GovernanceSettings(), pr_export=export)
    assert c.kind == "pr" and "carol@example.com" in c.authors
    assert {"missing_review", "self_approval"} <= set(c.flags) and not c.reviewed


def test_co_author_approving_a_merge_by_trailer_is_self_approval(tmp_path: Path) -> None:
    """A branch commit co-authored by the approver: the merge's Approved-by is not independent."""
    from soc2ai.governance.testing import CAROL

    repo = RepoBuilder(tmp_path / "r")
    repo.commit("init", {"src/a.py": "0\n"}, when="2026-01-01T00:00:00Z")
    repo.checkout("ENG-3-x", create=True)
    repo.commit(
        "pair work\n\nCo-authored-by: Carol <carol@example.com>",
        {"src/a.py": "1\n"},
        author=BOB,
        when="2026-01-02T00:00:00Z",
    )
    repo.checkout("main")
    merge = repo.merge(
        "ENG-3-x",
        "Merge branch 'ENG-3-x'\n\nApproved-by: Carol <carol@example.com>",
        committer=CAROL,
        when="2026-01-03T00:00:00Z",
    )
    c = next(c for c in changes_population(repo.root, *JAN, GovernanceSettings()) if c.id == merge)
    assert c.authors == ("bob@example.com", "carol@example.com")
    assert "self_approval" in c.flags and not c.reviewed


def _approved_then_edited(repo: RepoBuilder, branch: str, day: int, merger: tuple[str, str], approval: str) -> str:
    """Dave's branch: a first commit Erin approved by trailer, a follow-up, then a merge by ``merger``
    carrying ``approval``. The merge sha."""
    repo.checkout(branch, create=True)
    repo.commit("first\n\nApproved-by: Erin <erin@example.com>", {"src/a.py": f"{day}\n"}, author=DAVE,
                when=f"2026-01-{day:02d}T00:00:00Z")
    repo.commit("follow-up", {"src/a.py": f"{day}b\n"}, author=DAVE, when=f"2026-01-{day:02d}T05:00:00Z")
    repo.checkout("main")
    return repo.merge(branch, f"Merge branch '{branch}'\n\nApproved-by: {approval}", committer=merger,
                      when=f"2026-01-{day + 1:02d}T00:00:00Z")


def test_trailer_approval_then_edits_not_excused_by_authors_own_merge_approval(tmp_path: Path) -> None:
    """Erin approved the first commit; more commits followed; the author's own merge trailer covers nothing,
    an independent approval on the merge itself does."""
    repo = RepoBuilder(tmp_path / "r")
    repo.commit("init", {"src/a.py": "0\n"}, when="2026-01-01T00:00:00Z")
    own = _approved_then_edited(repo, "ENG-4-x", 2, DAVE, "Dave <dave@example.com>")
    independent = _approved_then_edited(repo, "ENG-5-y", 4, ERIN, "Erin <erin@example.com>")
    by_id = {c.id: c for c in changes_population(repo.root, *JAN, GovernanceSettings())}
    assert "edited_after_approval" in by_id[own].flags and not by_id[own].reviewed
    assert by_id[independent].flags == () and by_id[independent].reviewed


def test_github_noreply_author_matches_their_login(tmp_path: Path) -> None:
    """A commit pushed as <id>+carol-s@users.noreply.github.com makes login carol-s an author."""
    repo = RepoBuilder(tmp_path / "r")
    repo.commit("init", {"src/a.py": "0\n"}, when="2026-01-01T00:00:00Z")
    repo.checkout("ENG-5-x", create=True)
    repo.commit("bob's change", {"src/a.py": "1\n"}, author=BOB, when="2026-01-02T00:00:00Z")
    head = repo.commit(
        "edit from the web UI",
        {"src/a.py": "2\n"},
        author=("Carol Smith", "4242+carol-s@users.noreply.github.com"),
        when="2026-01-02T03:00:00Z",
    )
    repo.checkout("main")
    merge = repo.merge(
        "ENG-5-x", "Merge pull request #5 from acme/ENG-5-x", committer=BOB, when="2026-01-03T00:00:00Z"
    )
    approve = {
        "author": {"login": "carol-s"},
        "state": "APPROVED",
        "submittedAt": "2026-01-02T04:00:00Z",
        "commit": {"oid": head},
    }
    export = _export(tmp_path / "prs.json", 5, merge, [approve])
    c = next(
        c
        for c in changes_population(repo.root, *JAN, GovernanceSettings(), pr_export=export)
        if c.id == merge
    )
    assert "self_approval" in c.flags and not c.reviewed
    assert Person.parse("4242+carol-s@users.noreply.github.com").same_as(Person(login="Carol-S"))
    assert not Person.parse("4242+carol-s@example.com").same_as(Person(login="carol-s"))


def test_missing_main_branch_names_the_config_file(tmp_path: Path) -> None:
    """A wrong `main_branch` names soc2ai.toml and the field; a repo with no commits says just that."""
    from soc2ai.governance import gitlog

    gitlog.git(tmp_path, "init", "-q", "-b", "main")
    with pytest.raises(ConfigError) as exc:
        gitlog.verify_branch(tmp_path, "main")
    assert "no commits yet" in exc.value.reason and exc.value.field is None
    (tmp_path / "f").write_text("x", encoding="utf-8")
    gitlog.git(tmp_path, "add", "f")
    gitlog.git(tmp_path, "-c", "user.email=a@example.com", "-c", "user.name=A", "commit", "-qm", "c")
    with pytest.raises(ConfigError) as exc:
        gitlog.verify_branch(tmp_path, "trunk")
    assert (exc.value.file, exc.value.field) == ("soc2ai.toml", "governance.main_branch")
