"""Every benchmark still runs end to end (its --smoke size) and writes the JSON the README's figures come
from; the timings themselves are not judged here (benchmarks are not tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# script, a key its JSON must hold
CASES = [
    ("ledger_bench.py", "targets"),
    ("gateway_bench.py", "at_200_rps"),
    ("gateway_inprocess.py", "cpu_us_per_request"),
    ("gateway_ab.py", "builds"),
    ("dsar_bench.py", "targets"),
    ("monitor_bench.py", "targets"),
    ("scan_speed.py", "hot_path"),
    ("scan_eval.py", "injection"),
    ("evidence_bench.py", "median_s"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("script", "key"), CASES, ids=[c[0] for c in CASES])
def test_benchmark_smoke_run_writes_its_results(script: str, key: str, tmp_path: Path) -> None:
    """``python benchmarks/SCRIPT --smoke --out F`` exits 0 and F is a JSON object with a non-empty ``key``."""
    if script == "scan_eval.py" and not (ROOT.parent / "shared" / "eval").is_dir():
        pytest.skip("scan_eval.py reads ../shared/eval (the scanner evaluation data), absent beside this checkout")
    out = tmp_path / "result.json"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke", "--out", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert isinstance(doc, dict) and doc.get(key), sorted(doc)
