"""Change-evidence population and sampling (CC8.1).

A *production change* is a commit on the main branch's first-parent history (a merge, a squash/rebase
merge of a pull request, or a direct push) that touches the configured paths. For each one the evidence
an auditor samples is derived from git and, when given, the PR export: ticket, reviewers, approvals,
and flags for what is missing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from soc2ai.governance import gitlog
from soc2ai.governance.gitlog import Commit, Person, PullRequest
from soc2ai.governance.settings import GovernanceSettings

# Flags that make a change "unreviewed" for CC8.1.
UNREVIEWED_FLAGS = frozenset(
    {"direct_push", "missing_review", "missing_approval", "self_approval", "edited_after_approval"}
)
_GH_MERGE = re.compile(r"^Merge pull request #(\d+) from (\S+)")
_SQUASH = re.compile(r"\s*\(#(\d+)\)\s*$")
_BRANCH = re.compile(r"^Merge (?:remote-tracking )?branch '([^']+)'")


@dataclass(frozen=True, slots=True)
class Change:
    """One production change and its evidence."""

    id: str
    date: datetime
    kind: str  # "merge" | "pr" (squash/rebase merge found in the PR export) | "direct"
    title: str
    author: str
    authors: tuple[str, ...]
    committer: str
    files: tuple[str, ...]
    tickets: tuple[str, ...] = ()
    branch: str = ""
    pr: int | None = None
    pr_url: str = ""
    reviewers: tuple[str, ...] = ()
    approvals: tuple[str, ...] = ()
    signature: str = "N"
    revert_of: str | None = None
    config_change: str | None = None
    live_at: datetime | None = None
    flags: tuple[str, ...] = field(default=())

    @property
    def ticket(self) -> str | None:
        """The first ticket reference found, if any."""
        return self.tickets[0] if self.tickets else None

    @property
    def reviewed(self) -> bool:
        """No review-related flag."""
        return not UNREVIEWED_FLAGS.intersection(self.flags)

    def to_dict(self) -> dict[str, Any]:
        """JSON/CSV-ready dict."""
        out = asdict(self)
        out["ticket"] = self.ticket
        out["reviewed"] = self.reviewed
        return out


def find_tickets(texts: Iterable[str], settings: GovernanceSettings) -> tuple[str, ...]:
    """Ticket references in ``texts`` in order of appearance, de-duplicated, ignoring non-ticket keys."""
    patterns = [re.compile(p) for p in settings.ticket_patterns]
    ignore = {i.upper() for i in settings.ticket_ignore}
    found: list[str] = []
    for text in texts:
        hits: list[tuple[int, str]] = []
        taken: list[tuple[int, int]] = []
        for pattern in patterns:
            for m in pattern.finditer(text):
                # A key inside an already matched URL is the same ticket.
                if any(s <= m.start() < e for s, e in taken):
                    continue
                token = m.group(0)
                if "://" not in token and "-" in token and token.split("-", 1)[0].upper() in ignore:
                    continue
                hits.append((m.start(), token))
                taken.append((m.start(), m.end()))
        for _, token in sorted(hits):
            if token not in found:
                found.append(token)
    return tuple(found)


def path_matcher(paths: Sequence[str]) -> Callable[[str], bool]:
    """Match repository paths against git-pathspec-like prefixes/globs (empty = everything)."""
    cleaned = [p.strip().rstrip("/") for p in paths if p.strip()]
    if not cleaned or any(p in (".", "") for p in cleaned):
        return lambda _path: True

    def match(path: str) -> bool:
        for p in cleaned:
            if any(c in p for c in "*?["):
                if fnmatch.fnmatchcase(path, p):
                    return True
            elif path == p or path.startswith(p + "/"):
                return True
        return False

    return match


def _pr_reviews(
    pr: PullRequest,
) -> tuple[list[Person], list[Person], list[tuple[Person, str | None, datetime | None]]]:
    """Reviewers, approvers (latest decisive state per reviewer) and the approvals' commit/time."""
    reviewers: list[Person] = []
    latest: dict[str, tuple[str, str | None, datetime | None, Person]] = {}
    for r in sorted(pr.reviews, key=lambda r: r.submitted_at or datetime.min.replace(tzinfo=UTC)):
        if r.reviewer not in reviewers:
            reviewers.append(r.reviewer)
        if r.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[r.reviewer.login.casefold()] = (r.state, r.commit, r.submitted_at, r.reviewer)
    approvals = [(p, c, t) for state, c, t, p in latest.values() if state == "APPROVED"]
    return reviewers, [a[0] for a in approvals], approvals


def _dedupe(people: Iterable[Person]) -> list[Person]:
    out: list[Person] = []
    for p in people:
        if not any(p.same_as(q) for q in out):
            out.append(p)
    return out


def evaluate(
    repo: Path,
    commit: Commit,
    files: Sequence[str],
    prs: dict[str, PullRequest],
    settings: GovernanceSettings,
    *,
    merged: Sequence[Commit] | None = None,
) -> Change:
    """Derive the evidence for one first-parent commit of the main branch.

    ``merged``: the commits a merge brought in, newest (head) first, when already known.
    """
    pr = prs.get(commit.sha)
    if not commit.is_merge:
        branch_commits: Sequence[Commit] = []
    elif merged is not None:
        branch_commits = merged
    else:
        branch_commits = gitlog.log(repo, *commit.parents[1:], f"^{commit.parents[0]}")
    # Co-authors (git's and GitHub's squash "Co-authored-by:" trailers) wrote the change too: their
    # approval is not independent.
    authors = _dedupe(
        [
            *(p for c in (branch_commits or [commit]) for p in (c.author, *c.trailers("Co-authored-by"))),
            *(commit.trailers("Co-authored-by") if branch_commits else []),
        ]
    )
    if pr is not None:
        authors = _dedupe([pr.author, *authors])
    flags: list[str] = []
    texts = [commit.message]
    branch = ""
    pr_number: int | None = pr.number if pr else None
    m = _GH_MERGE.match(commit.subject)
    if m:
        pr_number = pr_number or int(m.group(1))
        branch = m.group(2).split("/", 1)[-1] if "/" in m.group(2) else m.group(2)
        texts[0] = commit.message[m.end() :]  # the PR number is not a ticket
    elif (b := _BRANCH.match(commit.subject)) is not None:
        branch = b.group(1)
    squash = _SQUASH.search(commit.subject)
    if squash and not commit.is_merge:
        # GitHub squash/rebase merges end the subject with "(#<PR>)": a PR number, not a ticket.
        pr_number = pr_number or int(squash.group(1))
        texts[0] = texts[0].replace(squash.group(0), "", 1)
    if pr is not None:
        branch = pr.head_ref or branch
        texts.append(_SQUASH.sub("", pr.title))
    texts.append(branch)

    reviewers = [*commit.trailers("Reviewed-by")]
    approvers = [*commit.trailers("Approved-by")]
    edited_after = False
    if branch_commits:
        # Trailers on branch commits count too, but later commits after an approval are edits after it.
        approved_at = [pos for pos, bc in enumerate(branch_commits) if bc.trailers("Approved-by")]
        for bc in branch_commits:
            reviewers.extend(bc.trailers("Reviewed-by"))
            approvers.extend(bc.trailers("Approved-by"))
        # branch_commits is newest first: an approval not on the head was followed by more commits,
        # unless the merge itself carries an independent approval (an author's own does not count).
        merge_approved = any(not any(p.same_as(a) for a in authors) for p in commit.trailers("Approved-by"))
        if approved_at and approved_at[0] > 0 and not merge_approved:
            edited_after = True
    if pr is not None:
        pr_reviewers, pr_approvers, approvals = _pr_reviews(pr)
        reviewers.extend(pr_reviewers)
        approvers.extend(pr_approvers)
        head = commit.parents[-1] if commit.is_merge else None
        head_time = branch_commits[0].committed_at if branch_commits else None
        for _person, oid, when in approvals:
            if head and oid and oid != head:
                edited_after = True
            elif head_time and not oid and when and when < head_time:
                edited_after = True

    reviewers, approvers = _dedupe(reviewers), _dedupe(approvers)
    independent = [p for p in [*reviewers, *approvers] if not any(p.same_as(a) for a in authors)]
    self_approvals = [p for p in approvers if any(p.same_as(a) for a in authors)]
    independent_approvals = [p for p in approvers if not any(p.same_as(a) for a in authors)]
    kind = "merge" if commit.is_merge else "pr" if pr is not None else "direct"
    if kind == "direct":
        flags.append("direct_push")
    if not independent:
        flags.append("missing_review")
    elif pr is not None and not independent_approvals:
        # The PR platform records approvals explicitly: comments alone are not an approval.
        flags.append("missing_approval")
    if self_approvals and not independent_approvals:
        flags.append("self_approval")
    if edited_after:
        flags.append("edited_after_approval")
    if settings.require_signed and commit.signature != "G":
        flags.append("unsigned")
    tickets = find_tickets(texts, settings)
    if not tickets:
        flags.append("missing_ticket")
    if commit.revert_of:
        flags.append("revert")
    return Change(
        id=commit.sha,
        date=commit.committed_at,
        kind=kind,
        title=pr.title if pr else commit.subject,
        author=authors[0].label(),
        authors=tuple(a.label() for a in authors),
        committer=commit.committer.label(),
        files=tuple(files),
        tickets=tickets,
        branch=branch,
        pr=pr_number,
        pr_url=pr.url if pr else "",
        reviewers=tuple(p.label() for p in reviewers),
        approvals=tuple(p.label() for p in approvers),
        signature=commit.signature,
        revert_of=commit.revert_of,
        flags=tuple(flags),
    )


def _bounds(since: date | datetime, until: date | datetime) -> tuple[datetime, datetime]:
    """Inclusive UTC bounds: a date means the whole day."""
    lo = since if isinstance(since, datetime) else datetime.combine(since, time.min, UTC)
    hi = (
        until
        if isinstance(until, datetime)
        else datetime.combine(until, time.max.replace(microsecond=0), UTC)
    )
    lo = lo if lo.tzinfo else lo.replace(tzinfo=UTC)
    hi = hi if hi.tzinfo else hi.replace(tzinfo=UTC)
    if hi < lo:
        raise ValueError(f"--until ({hi.date()}) is before --since ({lo.date()})")
    return lo, hi


def content_hash(path: str, data: bytes, settings: GovernanceSettings) -> str:
    """The hash a config_change record carries for this file (prompt body for templates)."""
    from soc2ai.governance.prompts import body_hash_of_file

    prompts_prefix = settings.prompts_dir.strip("/") + "/"
    if path.startswith(prompts_prefix):
        hashed = body_hash_of_file(data)
        if hashed:
            return hashed
    return "sha256:" + hashlib.sha256(data).hexdigest()


def changes_population(
    repo: Path,
    since: date | datetime,
    until: date | datetime,
    settings: GovernanceSettings,
    *,
    pr_export: Path | None = None,
    config_changes: dict[str, tuple[str, int]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Change]:
    """Every production change on the main branch in [since, until] (committer time, UTC), oldest first.

    ``config_changes`` maps a content hash to (ledger record id, ts_us) of ``config_change`` records,
    so each change can show when it went live.
    """
    lo, hi = _bounds(since, until)
    gitlog.verify_branch(repo, settings.main_branch)
    prs = gitlog.load_pr_export(pr_export) if pr_export else {}
    match = path_matcher(settings.change_paths)
    commits = [
        c for c in gitlog.log(repo, "--first-parent", settings.main_branch) if lo <= c.committed_at <= hi
    ]
    all_files = gitlog.first_parent_files(repo, settings.main_branch)
    merged = gitlog.branch_commits(repo, settings.main_branch) if any(c.is_merge for c in commits) else {}
    out: list[Change] = []
    for i, commit in enumerate(commits):
        files = all_files.get(commit.sha)
        if files is None:  # not expected: git log lists every first-parent commit
            files = gitlog.changed_files(repo, commit)
        if any(match(f) for f in files):
            change = evaluate(repo, commit, files, prs, settings, merged=merged.get(commit.sha))
            if config_changes:
                change = _link_config_change(repo, change, config_changes, settings)
            out.append(change)
        if progress:
            progress(i + 1, len(commits))
    out.sort(key=lambda c: (c.date, c.id))
    return out


def _link_config_change(
    repo: Path, change: Change, index: dict[str, tuple[str, int]], settings: GovernanceSettings
) -> Change:
    for path in change.files:
        data = gitlog.show_bytes(repo, change.id, path)
        if data is None:
            continue
        hit = index.get(content_hash(path, data, settings))
        if hit:
            rid, ts = hit
            return replace(change, config_change=rid, live_at=datetime.fromtimestamp(ts / 1e6, UTC))
    return change


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """How the population count compares with ``git rev-list`` over the same range and paths."""

    commits_in_range: int
    population: int
    rev_list: int
    command: str

    @property
    def matches(self) -> bool:
        """Counts agree."""
        return self.population == self.rev_list

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {**asdict(self), "matches": self.matches}


def reconcile(
    repo: Path,
    population: Sequence[Change],
    since: date | datetime,
    until: date | datetime,
    settings: GovernanceSettings,
) -> Reconciliation:
    """Count the same range and paths with ``git rev-list`` (independent of how the population was built)."""
    lo, hi = _bounds(since, until)
    base = [
        "rev-list",
        "--count",
        "--first-parent",
        f"--since={lo.isoformat()}",
        f"--until={hi.isoformat()}",
        settings.main_branch,
    ]
    # No paths configured means the whole tree: "." rather than no pathspec, so a commit that changes no
    # file (an empty root commit, `commit --allow-empty`) is left out here as it is from the population.
    paths = [p for p in settings.change_paths if p.strip()] or ["."]
    args = [*base, "--", *paths]
    count = int(gitlog.git(repo, *args).strip() or 0)
    total = int(gitlog.git(repo, *base).strip() or 0)
    return Reconciliation(
        commits_in_range=total, population=len(population), rev_list=count, command="git " + " ".join(args)
    )


def sample(population: Sequence[Change], n: int, seed: int | str) -> list[Change]:
    """A reproducible random sample of ``n`` changes (all of them when fewer), in date order."""
    if n < 0:
        raise ValueError("sample size must be >= 0")
    ordered = sorted(population, key=lambda c: (c.date, c.id))
    picked = random.Random(str(seed)).sample(ordered, min(n, len(ordered)))  # noqa: S311 - audit sampling, not crypto
    return sorted(picked, key=lambda c: (c.date, c.id))
