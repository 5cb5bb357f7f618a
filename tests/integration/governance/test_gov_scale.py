"""Population of a year with 1,000 merged pull requests: complete, reconciled, and how long it takes."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import date
from pathlib import Path

import pytest

from soc2ai.governance.changes import changes_population, reconcile
from soc2ai.governance.settings import GovernanceSettings

pytestmark = pytest.mark.slow


def _fast_import(root: Path, merges: int) -> None:
    """One branch commit + one merge per PR, written with `git fast-import` (seconds, not minutes)."""
    out: list[str] = []
    ts, mark = 1767225600, 0  # 2026-01-01T00:00:00Z

    def commit(ref: str, msg: str, files: dict[str, str], parents: list[int], who: str) -> int:
        nonlocal mark
        mark += 1
        data = msg.encode()
        out.append(
            f"commit {ref}\nmark :{mark}\nauthor {who} <{who}@example.com> {ts} +0000\n"
            f"committer {who} <{who}@example.com> {ts} +0000\ndata {len(data)}\n{msg}\n"
        )
        if parents:
            out.append(f"from :{parents[0]}\n" + "".join(f"merge :{p}\n" for p in parents[1:]))
        for path, body in files.items():
            out.append(f"M 100644 inline {path}\ndata {len(body.encode())}\n{body}\n")
        out.append("\n")
        return mark

    head = commit("refs/heads/main", "init", {"src/app.py": "0\n"}, [], "alice")
    for i in range(merges):
        ts += 600
        change = {f"src/m{i % 50}.py": f"{i}\n"}
        branch = commit(f"refs/heads/b{i}", f"change {i}", change, [head], "bob")
        ts += 600
        head = commit(
            "refs/heads/main",
            f"Merge pull request #{i + 1} from acme/ENG-{i + 1}\n\nApproved-by: Carol <carol@example.com>",
            change,
            [head, branch],
            "carol",
        )
    git = shutil.which("git") or "git"
    subprocess.run([git, "init", "-q", "-b", "main", str(root)], check=True)
    subprocess.run([git, "-C", str(root), "fast-import", "--quiet"], input="".join(out).encode(), check=True)


def test_thousand_merges(tmp_path: Path) -> None:
    """1,000 merges: every one is in the population, reviewed, ticketed, and the count reconciles."""
    _fast_import(tmp_path / "big", 1000)
    settings = GovernanceSettings(change_paths=["src/"])
    t0 = time.perf_counter()
    population = changes_population(tmp_path / "big", date(2026, 1, 1), date(2026, 12, 31), settings)
    elapsed = time.perf_counter() - t0
    rec = reconcile(tmp_path / "big", population, date(2026, 1, 1), date(2026, 12, 31), settings)
    print(f"\npopulation of {len(population)} changes in {elapsed:.2f} s")
    assert rec.matches and rec.population == 1001
    merges = [c for c in population if c.kind == "merge"]
    assert len(merges) == 1000 and all(c.reviewed and c.ticket for c in merges)
