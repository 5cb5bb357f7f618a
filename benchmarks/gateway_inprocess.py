#!/usr/bin/env python
"""The gateway's CPU per request on a warm CPU: the app driven in process, no sockets.

    python benchmarks/gateway_inprocess.py                 # writes benchmarks/results/gateway-inprocess.json
    python benchmarks/gateway_inprocess.py --smoke         # seconds, for CI
    PYTHONPATH=/path/to/other/checkout/src python benchmarks/gateway_inprocess.py --out other.json

``gateway_bench.py`` measures what a deployment sees: separate processes on loopback, open-loop load,
and a CPU that goes cold between requests, so 8-second runs of the same code differ by ±0.1 ms per
request on this VM. This script removes most of that noise to compare two commits' request paths. It
drives the app with httpx's ASGI transport (the client, the gateway and the fake upstream's thread all
in one process), back to back, and reports process CPU time per request over several runs: screening
on (soc2ai.scan defaults) and off, with the SQLite ledger and rate limits on. The figures include the
client's and the upstream's work, so read them only against each other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
BODY = {"model": "m", "messages": [
    {"role": "user", "content": "Write a haiku about the sea at dawn, with waves and gulls."}],
    "temperature": 0.2, "max_tokens": 64}


async def measure(scan: bool, requests: int, runs: int, warmup: int) -> list[float]:
    """Process CPU µs per request, one figure per run."""
    import httpx

    from soc2ai.scan import build_pipeline
    from soc2ai.testing.gateway import Harness
    from soc2ai.testing.upstream import FakeUpstream

    with FakeUpstream(name="up") as up, FakeUpstream(name="backup") as backup:
        h = Harness(Path(tempfile.mkdtemp(prefix="gwinproc-")), up, backup)
        # Limits high enough never to answer 429: every request takes the full path.
        cfg = h.config(tables="[gateway.rate_limit]\nrequests_per_minute = 100000000\n"
                              "tokens_per_minute = 1000000000")
        app, log, keys = h.app(cfg, pipeline=build_pipeline(cfg.scan) if scan else None)
        secret, _ = keys.create(role="inference", user_id="bench")
        headers = {"authorization": f"Bearer {secret}"}
        out: list[float] = []
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
                for _ in range(warmup):
                    await c.post("/v1/chat/completions", json=BODY, headers=headers)
                for _ in range(runs):
                    t0 = time.process_time()
                    for _ in range(requests):
                        r = await c.post("/v1/chat/completions", json=BODY, headers=headers)
                        if r.status_code != 200:
                            raise SystemExit(f"request failed: {r.status_code} {r.text[:200]}")
                    out.append(round((time.process_time() - t0) / requests * 1e6, 1))
                await asyncio.sleep(0.05)  # the last audit records are written on the next loop turns
            log.flush(30)
        finally:
            log.close()
        return out


def commit() -> str | None:
    import soc2ai

    src = Path(soc2ai.__file__).resolve().parents[1]
    try:
        return subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--smoke", action="store_true", help="a few hundred requests")
    ap.add_argument("--requests", type=int, default=1000, help="requests per run")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    requests, runs, warmup = (50, 2, 20) if args.smoke else (args.requests, args.runs, 300)
    import soc2ai

    result: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "soc2ai_src": str(Path(soc2ai.__file__).resolve().parents[1]), "git_commit": commit()},
        "method": "process CPU time per request, app driven through httpx.ASGITransport in one process "
                  "(client, gateway and fake upstream thread included); SQLite ledger, rate limits on",
        "requests_per_run": requests, "started": time.time(), "cpu_us_per_request": {}}
    for name, scan in (("scanners", True), ("no_screening", False)):
        per_run = asyncio.run(measure(scan, requests, runs, warmup))
        result["cpu_us_per_request"][name] = {"runs": per_run, "min": min(per_run),
                                              "median": sorted(per_run)[len(per_run) // 2]}
        print(f"{name:13s} CPU µs per request, {runs} runs of {requests}: {per_run} (min {min(per_run)})")
    out = args.out or ROOT / "results" / ("gateway-inprocess-smoke.json" if args.smoke else "gateway-inprocess.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{result['machine']['soc2ai_src']} (commit {result['machine']['git_commit']}); wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
