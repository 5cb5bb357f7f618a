"""Evidence bundle: how long `soc2ai evidence export` and the auditor's check of it take on a large period.

Builds a SQLite ledger of N inference records spread over 30 days (one sealed batch a day, the first three
days' bodies pruned by retention), then, R times each and interleaved: the log's own full verification
(`AuditLog.verify`, the same-run baseline: what `soc2ai log verify` does), the export of days 4-27, and the
auditor's standalone check of that bundle (`auditor/verify_proof.py --evidence`, in-process).

    python benchmarks/evidence_bench.py --smoke          # seconds
    python benchmarks/evidence_bench.py                  # 200k records, writes benchmarks/results/evidence.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
import gateway_bench as gb  # noqa: E402 - the sibling script: machine() and vm_speed()

DAY0 = date(2026, 3, 1)


def _auditor() -> Any:
    spec = importlib.util.spec_from_file_location("auditor_verify_proof", ROOT.parent / "auditor" / "verify_proof.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build(base: Path, n: int) -> Any:
    from soc2ai.config import parse_config
    from soc2ai.ledger import AuditLog
    from soc2ai.ledger.keys import generate_keys

    generate_keys(base / "keys", "bench")
    cfg = parse_config(f'[project]\nname = "bench"\n[ledger]\nstore = "sqlite:///{base}/audit.db"\n'
                       f'keys_dir = "{base}/keys"\nspool_dir = "{base}/spool"\nwitness_dir = "{base}/witness"\n',
                       root=base)
    now = [0]
    per_day = n // 30
    with AuditLog.open(cfg, clock=lambda: now[0]) as log:
        for d in range(30):
            start = int(datetime.combine(DAY0 + timedelta(days=d), datetime.min.time(), UTC).timestamp() * 1e6)
            for i in range(per_day):
                now[0] = start + i * 1000
                log.log_inference(user_id=f"user-{i % 500}", model_id="gpt-4o", prompt=f"question {d}-{i}",
                                  response=f"answer {i}", latency_us=1200 + i % 700, input_tokens=40,
                                  output_tokens=120, flagged=i % 97 == 0, provider="openai", status=200)
            log.flush(600)
        log.prune(int(datetime.combine(DAY0 + timedelta(days=3), datetime.min.time(), UTC).timestamp() * 1e6),
                        ["inference"])
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--smoke", action="store_true", help="2,000 records, one repetition")
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "results" / "evidence.json"))
    args = ap.parse_args()
    n, reps = (2_000, 1) if args.smoke else (args.records, args.repeat)

    from soc2ai.evidence import export_evidence
    from soc2ai.ledger import AuditLog

    auditor = _auditor()
    tmp = Path(tempfile.mkdtemp(prefix="evbench-"))
    result: dict[str, Any] = {"machine": gb.machine(), "smoke": args.smoke, "records": n, "repeat": reps,
                              "vm_speed_at_start": gb.vm_speed(0.2 if args.smoke else 1.0)}
    t0 = time.perf_counter()
    cfg = build(tmp / "ledger", n)
    result["build_s"] = round(time.perf_counter() - t0, 2)
    keys = [auditor.parse_key((tmp / "ledger" / "keys" / "signing.pub").read_text())]
    since, until = DAY0 + timedelta(days=3), DAY0 + timedelta(days=26)
    runs: dict[str, list[float]] = {"log_verify_s": [], "export_s": [], "auditor_verify_s": []}
    segment = bundle_bytes = 0
    for r in range(reps):
        t0 = time.perf_counter()
        with AuditLog.open(cfg, read_only=True) as log:
            log.verify()
        runs["log_verify_s"].append(time.perf_counter() - t0)
        out = tmp / f"bundle-{r}"
        t0 = time.perf_counter()
        bundle = export_evidence(cfg, since, until, out, readiness=False)
        runs["export_s"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        line = auditor.verify_evidence(out, keys)
        runs["auditor_verify_s"].append(time.perf_counter() - t0)
        assert line.startswith("OK evidence"), line
        segment = bundle.manifest["ledger"]["records"]
        bundle_bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        shutil.rmtree(out)
    med = {k: round(statistics.median(v), 3) for k, v in runs.items()}
    result.update({
        "period": {"since": since.isoformat(), "until": until.isoformat()}, "segment_records": segment,
        "bundle_mb": round(bundle_bytes / 1e6, 1), "runs_s": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "median_s": med, "max_s": {k: round(max(v), 3) for k, v in runs.items()},
        "records_per_s": {"export": round(segment / med["export_s"]), "auditor_verify": round(segment / med["auditor_verify_s"]),
                          "log_verify (whole log)": round(n / med["log_verify_s"])},
        "vm_speed_at_end": gb.vm_speed(0.2 if args.smoke else 1.0),
    })
    shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{n} records over 30 days; period {since}..{until}: {segment} records in the segment, bundle "
          f"{result['bundle_mb']} MB")
    for k, v in med.items():
        print(f"  {k:18s} median {v:8.3f} s  (runs: {', '.join(f'{x:.3f}' for x in runs[k])})")
    print(f"  records/s: {result['records_per_s']}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
