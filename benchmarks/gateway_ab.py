"""Gateway CPU per request, this checkout against a baseline commit, interleaved in one run.

The VM this project is measured on changes speed by up to 2x over an afternoon, so absolute figures from
different hours cannot say whether a change made the request path slower. This runs two gateways side by
side on one fake upstream: the baseline commit's ``src/`` (extracted with ``git archive``, run with the
same interpreter and dependencies) and this checkout's, and alternates open-loop rounds between them
(A B B A ...), so drift hits both alike. What it reports is the ratio of their CPU per request.

    python benchmarks/gateway_ab.py --baseline a4ac33e                 # 8 rounds x 10 s each at 200 req/s
    python benchmarks/gateway_ab.py --baseline HEAD~3 --rounds 12
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway_bench as gb  # the sibling script: the same client, spawner, setup and VM probe

ROOT = Path(__file__).resolve().parent.parent


def extract_src(rev: str, dest: Path) -> str:
    """``rev``'s ``src/`` under ``dest``; returns the resolved commit."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True,
                            check=True).stdout.strip()
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        tf.extractall(dest, filter="data")
    return commit


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="gwab-"))
    base = extract_src(args.baseline, tmp / "baseline")
    builds = {f"baseline {base}": str(tmp / "baseline" / "src"), "this checkout": str(ROOT / "src")}
    rounds, secs, rate = (2, 2.0, 100.0) if args.smoke else (args.rounds, args.duration, args.rate)
    out: dict[str, Any] = {"machine": gb.machine(), "smoke": args.smoke, "started": time.time(),
                           "baseline": base, "rate": rate, "seconds_per_round": secs, "rounds": rounds,
                           "vm_speed_at_start": gb.vm_speed(0.2 if args.smoke else 1.0)}
    py = sys.executable
    up_port = gb.free_port()
    with contextlib.ExitStack() as stack:
        stack.enter_context(gb.spawn([py, "-m", "soc2ai.testing.upstream", "--port", str(up_port)], up_port))
        targets: dict[str, tuple[gb.Client, int]] = {}
        for i, (name, src) in enumerate(builds.items()):
            cfg, secret = gb.gateway_setup(tmp, up_port, f"g{i}")
            port = gb.free_port()
            proc = stack.enter_context(gb.spawn([py, "-m", "soc2ai", "gateway", "--config", str(cfg),
                                                 "--port", str(port)], port, {"PYTHONPATH": src}))
            targets[name] = (gb.Client("127.0.0.1", port, {"authorization": f"Bearer {secret}"}), proc.pid)
        for client, _ in targets.values():  # warm up
            for _ in range(4):
                await asyncio.gather(*(client.post("/v1/chat/completions", gb.BODY) for _ in range(50)))
        per: dict[str, list[dict[str, Any]]] = {n: [] for n in targets}
        names = list(targets)
        for r in range(rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                client, pid = targets[name]
                rnd = gb.Round(name, rate)
                c0 = gb.cpu_seconds(pid)
                await gb.open_loop(client, "/v1/chat/completions", gb.BODY, rate, secs, rnd)
                cpu = gb.cpu_seconds(pid) - c0
                ok = len(rnd.latencies)
                per[name].append({"cpu_ms_per_request": round(cpu / ok * 1e3, 3) if ok else None, "ok": ok,
                                  "errors": rnd.errors, "p50_ms": round(gb.pct(rnd.latencies, 0.5) * 1e3, 3)})
                await asyncio.sleep(0.3)
        for client, _ in targets.values():
            await client.close()
    out["vm_speed_at_end"] = gb.vm_speed(0.2 if args.smoke else 1.0)
    medians = {n: statistics.median(x["cpu_ms_per_request"] for x in rs if x["cpu_ms_per_request"] is not None)
               for n, rs in per.items()}
    out["builds"] = {n: {"median_cpu_ms_per_request": round(medians[n], 3), "rounds": per[n]} for n in per}
    out["ratio_this_over_baseline"] = round(medians["this checkout"] / medians[f"baseline {base}"], 3)
    out["finished"] = time.time()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--baseline", default="HEAD", help="commit to compare against (default: HEAD)")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per round")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--smoke", action="store_true", help="seconds: 2 rounds of 2 s at 100 req/s")
    ap.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/gateway-ab.json)")
    args = ap.parse_args()
    res = asyncio.run(run(args))
    for name, b in res["builds"].items():
        print(f"{name:24s} CPU per request, median of {res['rounds']} rounds: {b['median_cpu_ms_per_request']} ms "
              f"({', '.join(str(x['cpu_ms_per_request']) for x in b['rounds'])})")
    print(f"ratio this / baseline: {res['ratio_this_over_baseline']}   VM speed (Ed25519 signs/s) "
          f"{res['vm_speed_at_start']['ed25519_sign_per_s']:.0f} -> {res['vm_speed_at_end']['ed25519_sign_per_s']:.0f}")
    out = Path(args.out) if args.out else Path(__file__).resolve().parent / "results" / "gateway-ab.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
