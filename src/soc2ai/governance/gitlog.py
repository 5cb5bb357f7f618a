"""Reading change evidence from git (the ``git`` CLI) and from an exported list of merged pull requests.

Only read-only git commands are run, with an argument list (never a shell), on the user's own repository.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from soc2ai.errors import ConfigError

_FS, _RS = "\x1f", "\x1e"
_FORMAT = _FS.join(["%H", "%P", "%an", "%ae", "%aI", "%cn", "%ce", "%cI", "%G?", "%B"]) + _RS
_TRAILER = re.compile(
    r"^(Reviewed-by|Approved-by|Co-authored-by|Signed-off-by)\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE
)
_PERSON = re.compile(r"^(?P<name>.*?)\s*<(?P<email>[^>]+)>$")
_REVERT = re.compile(r"This reverts commit ([0-9a-f]{7,40})")


@dataclass(frozen=True, slots=True)
class Person:
    """Someone named by git (name + email) or by the PR export (login)."""

    name: str = ""
    email: str = ""
    login: str = ""

    @classmethod
    def parse(cls, text: str) -> Person:
        """``"Alice <alice@example.com>"``, ``"alice@example.com"`` or ``"@alice"``/``"alice"``."""
        text = text.strip()
        m = _PERSON.match(text)
        if m:
            return cls(name=m.group("name").strip(), email=m.group("email").strip())
        if "@" in text and not text.startswith("@"):
            return cls(email=text)
        return cls(name=text.lstrip("@"), login=text.lstrip("@"))

    def label(self) -> str:
        """Short display form."""
        return self.login or self.email or self.name

    def _keys(self) -> set[str]:
        keys = {k.casefold() for k in (self.name, self.email, self.login) if k}
        if self.email:
            local, _, domain = self.email.casefold().partition("@")
            keys.add(local)
            if domain == "users.noreply.github.com":
                # GitHub's private commit address is "<id>+<login>@users.noreply.github.com": the part
                # after "+" is the GitHub login that reviews and approves in the PR export.
                keys.add(local.rpartition("+")[2])
        return keys

    def same_as(self, other: Person) -> bool:
        """Heuristic identity match across git and GitHub (email, local part, name or login)."""
        return bool(self._keys() & other._keys())


@dataclass(frozen=True, slots=True)
class Commit:
    """One git commit as read from ``git log``."""

    sha: str
    parents: tuple[str, ...]
    author: Person
    authored_at: datetime
    committer: Person
    committed_at: datetime
    signature: (
        str  # %G?: G good, U good/unknown validity, N none, B bad, E cannot check, X/Y expired, R revoked
    )
    message: str

    @property
    def is_merge(self) -> bool:
        """More than one parent."""
        return len(self.parents) > 1

    @property
    def subject(self) -> str:
        """First line of the message."""
        return self.message.split("\n", 1)[0].strip()

    @property
    def signed(self) -> bool:
        """Carries a signature (verified or not)."""
        return self.signature not in ("N", "")

    def trailers(self, key: str) -> list[Person]:
        """People named in ``key:`` trailers (case-insensitive key)."""
        return [Person.parse(v) for k, v in _TRAILER.findall(self.message) if k.lower() == key.lower()]

    @property
    def revert_of(self) -> str | None:
        """The commit this one reverts, from git's standard revert message."""
        m = _REVERT.search(self.message)
        return m.group(1) if m else None


def _git_exe() -> str:
    exe = shutil.which("git")
    if exe is None:
        raise ConfigError("the git command-line tool is required for change evidence and was not found")
    return exe


def git(repo: Path, *args: str, check: bool = True) -> str:
    """Run a read-only git command in ``repo`` and return stdout; failures raise ConfigError."""
    proc = subprocess.run(  # noqa: S603 - fixed executable, argument list, no shell
        [_git_exe(), "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=False,
        encoding="utf-8",
        errors="replace",
    )
    if check and proc.returncode != 0:
        raise ConfigError(f"git {' '.join(args[:2])} failed: {proc.stderr.strip()}", file=str(repo))
    return proc.stdout


def repo_root(path: Path) -> Path:
    """Top level of the git work tree containing ``path``."""
    if not is_repo(path):
        raise ConfigError("not a git repository: change evidence is read from git history", file=str(path))
    return Path(git(path, "rev-parse", "--show-toplevel").strip())


def is_repo(path: Path) -> bool:
    """Whether ``path`` is inside a git work tree."""
    if not path.exists():
        return False
    return git(path, "rev-parse", "--is-inside-work-tree", check=False).strip() == "true"


def verify_branch(repo: Path, branch: str) -> str:
    """Full sha of ``branch``; a missing branch is a config error naming ``governance.main_branch``."""
    out = git(repo, "rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}", check=False).strip()
    if not out:
        if not git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).strip():
            # Right after `git init` + `soc2ai init` nothing is wrong with the config: say so.
            raise ConfigError("the repository has no commits yet: commit the project first", file=str(repo))
        # The setting lives in soc2ai.toml; without a file name the message read "<config>: ...".
        raise ConfigError(
            f"branch {branch!r} not found in {repo}", file="soc2ai.toml", field="governance.main_branch"
        )
    return out


def log(repo: Path, *args: str) -> list[Commit]:
    """Commits from ``git log <args>`` (newest first)."""
    out = git(repo, "log", f"--format={_FORMAT}", *args)
    commits = []
    for raw in out.split(_RS):
        raw = raw.lstrip("\n")
        if not raw:
            continue
        parts = raw.split(_FS)
        if len(parts) != 10:
            raise ConfigError(f"unexpected git log output for {raw[:40]!r}", file=str(repo))
        sha, parents, an, ae, ai, cn, ce, ci, sig, msg = parts
        commits.append(
            Commit(
                sha=sha,
                parents=tuple(parents.split()),
                author=Person(an, ae),
                committer=Person(cn, ce),
                authored_at=datetime.fromisoformat(ai),
                committed_at=datetime.fromisoformat(ci),
                signature=sig,
                message=msg.strip(),
            )
        )
    return commits


def changed_files(repo: Path, commit: Commit) -> list[str]:
    """Paths changed by ``commit`` relative to its first parent (renames give old and new path)."""
    return sorted({p for _status, paths in _name_status(repo, commit) for p in paths})


def _name_status(repo: Path, commit: Commit) -> list[tuple[str, list[str]]]:
    base = [commit.parents[0]] if commit.parents else ["--root"]
    out = git(repo, "diff-tree", "-r", "-M", "-z", "--name-status", "--no-commit-id", *base, commit.sha)
    tokens = out.split("\0")
    entries: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(tokens):
        status = tokens[i]
        if not status:
            i += 1
            continue
        # Renames and copies carry two paths; other statuses one.
        n = 2 if status[0] in "RC" else 1
        entries.append((status, [t for t in tokens[i + 1 : i + 1 + n] if t]))
        i += 1 + n
    return entries


def first_parent_files(repo: Path, branch: str) -> dict[str, list[str]]:
    """Changed paths of every first-parent commit of ``branch`` (vs its first parent), in one git call."""
    out = git(
        repo,
        "log",
        "--first-parent",
        "--root",
        "--diff-merges=first-parent",
        "-M",
        "--name-status",
        "-z",
        "--format=%x1e%H",
        branch,
    )
    files: dict[str, list[str]] = {}
    for chunk in out.split("\x1e"):
        if not chunk:
            continue
        tokens = chunk.split("\0")
        sha, rest = tokens[0].strip(), [t.lstrip("\n") for t in tokens[1:]]
        paths: set[str] = set()
        i = 0
        while i < len(rest):
            status = rest[i]
            if not status:
                i += 1
                continue
            n = 2 if status[0] in "RC" else 1
            paths.update(t for t in rest[i + 1 : i + 1 + n] if t)
            i += 1 + n
        files[sha] = sorted(paths)
    return files


def branch_commits(repo: Path, branch: str) -> dict[str, list[Commit]]:
    """For each merge on ``branch``'s first-parent chain: the commits it brought in, newest first.

    One ``git log`` of the whole history, then a walk of the chain oldest first: everything seen so far
    is exactly the ancestry of the merge's first parent, so what is reachable from its other parents and
    not yet seen is ``git log M^1..M^2`` — without one git call per merge.
    """
    every = {c.sha: c for c in log(repo, branch)}
    chain: list[str] = []
    head = every.get(verify_branch(repo, branch))
    while head is not None:
        chain.append(head.sha)
        head = every.get(head.parents[0]) if head.parents else None
    seen: set[str] = set()
    out: dict[str, list[Commit]] = {}
    for sha in reversed(chain):
        commit = every[sha]
        if commit.is_merge:
            found: list[Commit] = []
            stack = [p for p in commit.parents[1:] if p not in seen]
            while stack:
                current = stack.pop()
                if current in seen or current not in every:
                    continue
                seen.add(current)
                found.append(every[current])
                stack.extend(p for p in every[current].parents if p not in seen)
            found.sort(key=lambda c: (c.sha != commit.parents[-1], -c.committed_at.timestamp()))
            out[sha] = found
        seen.add(sha)
    return out


def file_history(repo: Path, branch: str, path: str) -> list[Commit]:
    """First-parent commits of ``branch`` that changed ``path``, newest first, following true renames.

    Not ``git log --follow``: that also follows *copies*, so a new ``v3`` copied from ``v2`` would
    inherit v2's history.
    """
    out: list[Commit] = []
    upto = branch
    for _ in range(1000):  # bounded: one step per rename
        commits = log(repo, "--first-parent", upto, "--", path)
        if not commits:
            break
        out.extend(commits)
        oldest = commits[-1]
        if not oldest.parents:
            break
        source = next(
            (
                paths[0]
                for status, paths in _name_status(repo, oldest)
                if status.startswith("R") and len(paths) == 2 and paths[1] == path
            ),
            None,
        )
        if source is None:
            break
        path, upto = source, oldest.parents[0]
    return out


def show_bytes(repo: Path, sha: str, path: str) -> bytes | None:
    """The content of ``path`` at ``sha`` (None when it does not exist there)."""
    proc = subprocess.run(  # noqa: S603 - fixed executable, argument list, no shell
        [_git_exe(), "-C", str(repo), "show", f"{sha}:{path}"], capture_output=True, check=False
    )
    return proc.stdout if proc.returncode == 0 else None


@dataclass(frozen=True, slots=True)
class Review:
    """A review from the PR export."""

    reviewer: Person
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING
    submitted_at: datetime | None
    commit: str | None


@dataclass(frozen=True, slots=True)
class PullRequest:
    """A merged pull request from ``gh pr list --state merged --json ...``."""

    number: int
    title: str
    url: str
    author: Person
    merged_at: datetime | None
    merge_commit: str | None
    head_ref: str = ""
    labels: tuple[str, ...] = ()
    reviews: tuple[Review, ...] = field(default=())


def _dt(value: Any, where: str, file: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ConfigError("expected an ISO 8601 timestamp", file=file, field=where)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"invalid timestamp {value!r}", file=file, field=where) from exc


def _login(value: Any, where: str, file: str) -> Person:
    if isinstance(value, dict) and isinstance(value.get("login"), str):
        return Person(login=value["login"], name=str(value.get("name") or ""))
    raise ConfigError("expected an object with a 'login' string", file=file, field=where)


def load_pr_export(path: Path) -> dict[str, PullRequest]:
    """Read the PR export JSON; index by merge commit sha. Bad shape -> ConfigError naming the field."""
    file = str(path)
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read PR export: {exc}", file=file, field="governance.pr_export") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc}", file=file) from exc
    if not isinstance(data, list):
        raise ConfigError("expected a JSON array of pull requests", file=file)
    out: dict[str, PullRequest] = {}
    for i, item in enumerate(data):
        where = f"[{i}]"
        if not isinstance(item, dict):
            raise ConfigError("expected an object", file=file, field=where)
        number = item.get("number")
        if not isinstance(number, int) or isinstance(number, bool):
            raise ConfigError("missing or non-integer 'number'", file=file, field=f"{where}.number")
        mc = item.get("mergeCommit")
        merge_sha = mc.get("oid") if isinstance(mc, dict) else None
        reviews = []
        raw_reviews = item.get("reviews") or []
        if not isinstance(raw_reviews, list):
            raise ConfigError("expected a list", file=file, field=f"{where}.reviews")
        for j, r in enumerate(raw_reviews):
            rw = f"{where}.reviews[{j}]"
            if not isinstance(r, dict) or not isinstance(r.get("state"), str):
                raise ConfigError("expected an object with a 'state'", file=file, field=rw)
            commit = r.get("commit")
            reviews.append(
                Review(
                    reviewer=_login(r.get("author"), f"{rw}.author", file),
                    state=r["state"].upper(),
                    submitted_at=_dt(r.get("submittedAt"), f"{rw}.submittedAt", file),
                    commit=commit.get("oid") if isinstance(commit, dict) else None,
                )
            )
        labels = tuple(lb.get("name", "") for lb in item.get("labels") or [] if isinstance(lb, dict))
        pr = PullRequest(
            number=number,
            title=str(item.get("title") or ""),
            url=str(item.get("url") or ""),
            author=_login(item.get("author"), f"{where}.author", file),
            merged_at=_dt(item.get("mergedAt"), f"{where}.mergedAt", file),
            merge_commit=merge_sha,
            head_ref=str(item.get("headRefName") or ""),
            labels=labels,
            reviews=tuple(reviews),
        )
        if merge_sha:
            out[merge_sha] = pr
    return out
