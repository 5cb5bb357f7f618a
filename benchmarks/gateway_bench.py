"""Gateway overhead benchmark: added latency, CPU per request, max sustained rate, streaming TTFB.

Processes on loopback: the fake upstream (``soc2ai.testing.upstream``), the gateway(s) (``soc2ai gateway``),
optionally LiteLLM's proxy (from a separate venv), and this load generator. Load is open-loop: request
``i`` starts at ``t0 + i / rate`` whether or not earlier ones finished, and its latency is measured from
that scheduled time (no coordinated omission). Rounds alternate direct-to-upstream and via-proxy so drift
on the shared machine hits both alike.

    python benchmarks/gateway_bench.py --smoke          # seconds
    python benchmarks/gateway_bench.py                  # full run, writes benchmarks/results/gateway.json
    python benchmarks/gateway_bench.py --litellm        # plus LiteLLM 1.108.7 as the baseline
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
LITELLM_VENV = ROOT / ".cache" / "litellm-venv"
# Extra [ledger] settings for the gateways under test (e.g. "batch_ms = 50"); default: the defaults.
LEDGER_EXTRA = os.environ.get("GATEWAY_BENCH_LEDGER", "")
BODY = json.dumps({"model": "m", "messages": [
    {"role": "user", "content": "Write a haiku about the sea at dawn, with waves and gulls."}],
    "temperature": 0.2, "max_tokens": 64}).encode()
STREAM_BODY = json.dumps({"model": "m", "stream": True, "messages": [
    {"role": "user", "content": "Write a haiku about the sea at dawn, with waves and gulls."}]}).encode()


# --- a minimal keep-alive HTTP/1.1 client (cheap, so the load generator is not the bottleneck) ---------
class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w = reader, writer
        self.used = time.monotonic()


class Client:
    """A pool of keep-alive connections to one host:port."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.idle: list[Conn] = []
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())

    async def _conn(self) -> Conn:
        while self.idle:
            c = self.idle.pop()
            if time.monotonic() - c.used < 2.0:  # servers drop idle keep-alive connections (uvicorn: 5 s)
                return c
            c.w.close()
        r, w = await asyncio.open_connection(self.host, self.port)
        return Conn(r, w)

    async def post(self, path: str, body: bytes, *, stream: bool = False) -> tuple[int, float]:
        """(status, seconds to first body byte after sending) — the whole body is read."""
        c = await self._conn()
        head = (f"POST {path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\n{self.extra}\r\n").encode()
        c.w.write(head + body)
        t_sent = time.perf_counter()
        try:
            status_line = await c.r.readline()
            status = int(status_line.split()[1])
            length, chunked = 0, False
            while True:
                line = await c.r.readline()
                if line in (b"\r\n", b""):
                    break
                k, _, v = line.decode("latin-1").partition(":")
                k = k.strip().lower()
                if k == "content-length":
                    length = int(v)
                elif k == "transfer-encoding" and "chunked" in v:
                    chunked = True
            ttfb = 0.0
            if chunked:
                first = True
                while True:
                    size = int((await c.r.readline()).strip() or b"0", 16)
                    if first:
                        ttfb, first = time.perf_counter() - t_sent, False
                    if size == 0:
                        await c.r.readline()
                        break
                    await c.r.readexactly(size + 2)
            else:
                await c.r.readexactly(length)
                ttfb = time.perf_counter() - t_sent
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            c.w.close()
            return 599, 0.0
        c.used = time.monotonic()
        self.idle.append(c)
        return status, ttfb

    async def close(self) -> None:
        for c in self.idle:
            c.w.close()
        self.idle.clear()


@dataclass
class Round:
    target: str
    rate: float
    latencies: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    errors: int = 0
    sent: int = 0
    duration: float = 0.0
    cpu_s: float = 0.0
    cpu_own_s: float = 0.0  # the proxy's own process only (without a sealer child)


async def open_loop(client: Client, path: str, body: bytes, rate: float, duration: float, rnd: Round,
                    stream: bool = False) -> None:
    """Start requests on schedule for ``duration`` seconds; latency from the scheduled start."""
    n = int(rate * duration)
    t0 = time.perf_counter() + 0.05
    tasks = []

    async def one(i: int) -> None:
        sched = t0 + i / rate
        status, ttfb = await client.post(path, body, stream=stream)
        end = time.perf_counter()
        if status != 200:
            rnd.errors += 1
            return
        rnd.latencies.append(end - sched)
        rnd.ttfb.append(ttfb)

    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    rnd.sent = n
    await asyncio.gather(*tasks)
    rnd.duration = time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = [int(x) for x in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
        for k in kids:
            out += [k, *_descendants(k)]
    return out


def cpu_seconds(pid: int, *, tree: bool = True) -> float:
    """utime + stime of a process and its reaped children, from /proc; with ``tree``, plus its live
    descendants (a ledger sealer process, ``[ledger] sealer = "process"``, counts against the gateway)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in [pid, *(_descendants(pid) if tree else [])]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / ticks
    return total


# --- processes ---------------------------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.args})")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/healthz")
            c.getresponse().read()
            c.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no answer on port {port}")


@contextlib.contextmanager
def spawn(args: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        wait_http(port, proc)
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def gateway_setup(tmp: Path, up_port: int, name: str, extra: str = "") -> tuple[Path, str]:
    """A config dir with ledger keys, an API key; returns (config path, secret)."""
    from soc2ai.config import parse_config
    from soc2ai.gateway.keys import KeyStore
    from soc2ai.ledger.keys import generate_keys

    d = tmp / name
    d.mkdir()
    text = (f'[project]\nname = "bench"\n[ledger]\nstore = "sqlite:///{d}/audit.db"\nkeys_dir = "{d}/keys"\n'
            f'spool_dir = "{d}/spool"\n{LEDGER_EXTRA}\n[gateway]\nkeys_db = "{d}/keys.db"\n{extra}\n'
            f'[gateway.providers.up]\nkind = "openai_compatible"\nbase_url = "http://127.0.0.1:{up_port}/v1"\n'
            f'[gateway.models]\nm = ["up:model-a"]\n[gateway.rate_limit]\nrequests_per_minute = 100000000\n'
            f"tokens_per_minute = 100000000000\n")
    (d / "soc2ai.toml").write_text(text)
    parse_config(text, root=d)
    generate_keys(d / "keys", "bench")
    ks = KeyStore(d / "keys.db")
    secret, _ = ks.create(role="inference", user_id="bench-user")
    ks.close()
    return d / "soc2ai.toml", secret


def litellm_cmd(tmp: Path, up_port: int, port: int) -> list[str] | None:
    exe = LITELLM_VENV / "bin" / "litellm"
    if not exe.exists():
        return None
    cfg = tmp / "litellm.yaml"
    cfg.write_text("model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/model-a\n"
                   f"      api_base: http://127.0.0.1:{up_port}/v1\n      api_key: x\n")
    return [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]


# --- measurement -------------------------------------------------------------------------------------
async def interleaved(targets: dict[str, tuple[Client, str, int | None]], rate: float, duration: float,
                      rounds: int, body: bytes = BODY, stream: bool = False) -> dict[str, list[Round]]:
    out: dict[str, list[Round]] = {name: [] for name in targets}
    names = list(targets)
    for r in range(rounds):
        order = names if r % 2 == 0 else list(reversed(names))
        for name in order:
            client, path, pid = targets[name]
            rnd = Round(name, rate)
            c0 = cpu_seconds(pid) if pid else 0.0
            o0 = cpu_seconds(pid, tree=False) if pid else 0.0
            await open_loop(client, path, body, rate, duration, rnd, stream=stream)
            rnd.cpu_s = (cpu_seconds(pid) - c0) if pid else 0.0
            rnd.cpu_own_s = (cpu_seconds(pid, tree=False) - o0) if pid else 0.0
            out[name].append(rnd)
            await asyncio.sleep(0.3)
    return out


def summarize(rounds: list[Round]) -> dict[str, Any]:
    lat = [x for r in rounds for x in r.latencies]
    ttfb = [x for r in rounds for x in r.ttfb]
    sent = sum(r.sent for r in rounds)
    ok = len(lat)
    dur = sum(r.duration for r in rounds)
    cpu = sum(r.cpu_s for r in rounds)
    own = sum(r.cpu_own_s for r in rounds)
    return {"requests": sent, "ok": ok, "errors": sum(r.errors for r in rounds),
            "achieved_rps": round(ok / dur, 1) if dur else 0,
            "p50_ms": round(pct(lat, 0.50) * 1e3, 3), "p99_ms": round(pct(lat, 0.99) * 1e3, 3),
            "mean_ms": round(statistics.fmean(lat) * 1e3, 3) if lat else None,
            "ttfb_p50_ms": round(pct(ttfb, 0.50) * 1e3, 3), "ttfb_p99_ms": round(pct(ttfb, 0.99) * 1e3, 3),
            "cpu_ms_per_request": round(cpu / ok * 1e3, 3) if ok and cpu else None,
            "cpu_ms_per_request_own_process": round(own / ok * 1e3, 3) if ok and own else None}


def added(res: dict[str, dict[str, Any]], via: str, direct: str = "direct") -> dict[str, Any]:
    a, d = res[via], res[direct]
    return {"added_p50_ms": round(a["p50_ms"] - d["p50_ms"], 3), "added_p99_ms": round(a["p99_ms"] - d["p99_ms"], 3),
            "added_ttfb_p50_ms": round(a["ttfb_p50_ms"] - d["ttfb_p50_ms"], 3),
            "cpu_ms_per_request": a["cpu_ms_per_request"],
            "cpu_ms_per_request_own_process": a["cpu_ms_per_request_own_process"]}


async def max_sustained(targets: dict[str, tuple[Client, str, int | None]], via: str, rates: list[float],
                        duration: float) -> dict[str, Any]:
    """Highest offered rate with no errors, >= 95% achieved and p99 added < 50 ms."""
    best, steps = 0.0, []
    for rate in rates:
        ok = False
        for _attempt in range(2):  # a failed step is retried once: the machine may be shared
            res = await interleaved({"direct": targets["direct"], via: targets[via]}, rate, duration, 1)
            s = {k: summarize(v) for k, v in res.items()}
            ok = (s[via]["errors"] == 0 and s[via]["achieved_rps"] >= 0.95 * rate
                  and s[via]["p99_ms"] - s["direct"]["p99_ms"] < 50)
            steps.append({"rate": rate, "ok": ok, via: s[via], "direct": s["direct"]})
            if ok:
                break
        if not ok:
            break
        best = rate
    return {"max_sustained_rps": best, "steps": steps}


def vm_speed(secs: float) -> dict[str, float]:
    """Compute-bound rates, to read this run's figures against the VM's speed at the time (it varies 2x)."""
    import hmac

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key, msg, sk = os.urandom(32), os.urandom(2048), Ed25519PrivateKey.generate()

    def rate(fn: Any) -> float:
        n, t0 = 0, time.perf_counter()
        while (el := time.perf_counter() - t0) < secs:
            for _ in range(100):
                fn()
            n += 100
        return round(n / el)

    return {"hmac_sha256_2KB_per_s": rate(lambda: hmac.digest(key, msg, "sha256")),
            "ed25519_sign_per_s": rate(lambda: sk.sign(msg[:64]))}


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform(),
                            "cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg()}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, subprocess.SubprocessError):  # which code was measured
        git = ["git", "-C", str(ROOT.parent)]
        info["git_commit"] = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                                            text=True, timeout=5).stdout.strip() or None
        info["src_dirty"] = bool(subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True,
                                                text=True, timeout=5).stdout.strip())
    return info


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="gwbench-"))
    up_port = free_port()
    py = sys.executable
    result: dict[str, Any] = {
        "machine": machine(), "smoke": args.smoke, "started": time.time(), "shared_machine": args.shared,
        "setup": {
            "gateway": "soc2ai gateway, one uvicorn process: auth, rate limits, default soc2ai.scan screening "
                       "(pre+post), audit ledger on SQLite ([ledger] settings: ledger_extra), "
                       "stream_mode=buffer",
            "gateway_noscan": "the same with screening = false",
            "gateway_passthrough": "the same with stream_mode = passthrough (streaming TTFB only)",
            "litellm": "LiteLLM proxy 1.108.7, one worker, master key set, same fake upstream",
            "ledger_extra": LEDGER_EXTRA or "(defaults)",
            "load": "open-loop from the benchmark process, keep-alive connections, latency from the scheduled "
                    "start; rounds interleaved direct / via proxy",
            "cpu_ms_per_request": "utime+stime of the proxy process and its live descendants (a ledger "
                                  "sealer process) during its rounds / successful requests",
            "cpu_ms_per_request_own_process": "the same for the proxy process alone",
            "direct cpu_ms_per_request": "the fake upstream's CPU per direct request: a same-run baseline",
            "vm_speed": "HMAC-SHA256 of 2 KB and Ed25519 signatures per second, one core, before and after",
        },
        "vm_speed_at_start": vm_speed(0.2 if args.smoke else 1.0)}
    dur = 2.0 if args.smoke else args.duration
    rounds = 2 if args.smoke else args.rounds
    with contextlib.ExitStack() as stack:
        up = stack.enter_context(spawn([py, "-m", "soc2ai.testing.upstream", "--port", str(up_port)], up_port))
        # The upstream has no /healthz; wait_http treats any HTTP answer as up.
        procs: dict[str, tuple[int, str, int]] = {}  # name -> (port, secret, pid)
        variants = {"gateway": "", "gateway_noscan": "screening = false",
                    "gateway_passthrough": 'stream_mode = "passthrough"'}
        if args.smoke:
            variants.pop("gateway_noscan")
        for name, extra in variants.items():
            cfg, secret = gateway_setup(tmp, up_port, name, extra)
            port = free_port()
            p = stack.enter_context(spawn([py, "-m", "soc2ai", "gateway", "--config", str(cfg), "--port", str(port)],
                                          port))
            procs[name] = (port, secret, p.pid)
        targets: dict[str, tuple[Client, str, int | None]] = {
            # The upstream's own CPU per direct request is a same-run baseline for this VM's speed at
            # syscall-heavy HTTP work (the kind that slows most in its slow spells).
            "direct": (Client("127.0.0.1", up_port, {}), "/v1/chat/completions", up.pid)}
        for name in variants:
            port, secret, pid = procs[name]
            targets[name] = (Client("127.0.0.1", port, {"authorization": f"Bearer {secret}"}),
                             "/v1/chat/completions", pid)
        if args.litellm:
            lport = free_port()
            cmd = litellm_cmd(tmp, up_port, lport)
            if cmd is None:
                result["litellm"] = {"skipped": f"no venv at {LITELLM_VENV}"}
            else:
                # LiteLLM refuses to start without a master key; with it, its auth is on like ours.
                master = "sk-" + os.urandom(16).hex()
                lp = stack.enter_context(spawn(cmd, lport, {"LITELLM_LOCAL_MODEL_COST_MAP": "True",
                                                             "LITELLM_LOG": "ERROR", "LITELLM_MASTER_KEY": master}))
                targets["litellm"] = (Client("127.0.0.1", lport, {"authorization": f"Bearer {master}"}),
                                      "/v1/chat/completions", lp.pid)

        # Warm up every target (connections, caches, JIT-less Python warm paths).
        for client, path, _ in targets.values():
            await asyncio.gather(*(client.post(path, BODY) for _ in range(50)))

        rate = args.rate
        main = {k: v for k, v in targets.items() if k != "gateway_passthrough"}
        if "litellm" in main:
            main.pop("litellm")
        res = await interleaved(main, rate, dur, rounds)
        s = {k: summarize(v) for k, v in res.items()}
        result[f"at_{int(rate)}_rps"] = {"raw": s, **{k: added(s, k) for k in s if k != "direct"}}

        if "litellm" in targets:
            lrate = 50.0
            lres = await interleaved({"direct": targets["direct"], "litellm": targets["litellm"],
                                      "gateway": targets["gateway"]}, lrate, dur, rounds)
            ls = {k: summarize(v) for k, v in lres.items()}
            result["at_50_rps_with_litellm"] = {"raw": ls, "litellm": added(ls, "litellm"),
                                                "gateway": added(ls, "gateway")}
            result["litellm_max"] = await max_sustained(targets, "litellm",
                                                        [25, 50, 75, 100, 125, 150, 200, 300], dur)

        # Streaming: time to first byte, buffer mode (default) and pass-through.
        sres = await interleaved({"direct": targets["direct"], "gateway": targets["gateway"],
                                  "gateway_passthrough": targets["gateway_passthrough"]},
                                 50.0, dur, rounds, body=STREAM_BODY, stream=True)
        ss = {k: summarize(v) for k, v in sres.items()}
        result["streaming_50_rps"] = {"raw": ss, "buffer": added(ss, "gateway"),
                                      "passthrough": added(ss, "gateway_passthrough")}

        steps = [200, 400] if args.smoke else [250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2500]
        for via in ("gateway", "gateway_noscan"):
            if via in targets:
                result[f"max_{via}"] = await max_sustained(targets, via, [float(x) for x in steps], dur)
        for client, _, _ in targets.values():
            await client.close()
    result["finished"] = time.time()
    result["loadavg_at_end"] = os.getloadavg()
    result["vm_speed_at_end"] = vm_speed(0.2 if args.smoke else 1.0)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--smoke", action="store_true", help="a few seconds, small rates")
    ap.add_argument("--litellm", action="store_true", help="include LiteLLM's proxy (separate venv)")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per round")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--shared", action="store_true", help="note in the result that the machine was shared")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    try:
        import uvloop

        result = uvloop.run(run(args))
    except ImportError:
        result = asyncio.run(run(args))
    out = args.out or ROOT / "results" / ("gateway_smoke.json" if args.smoke else "gateway.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1)[:6000])
    print(f"written to {out}")


if __name__ == "__main__":
    main()
