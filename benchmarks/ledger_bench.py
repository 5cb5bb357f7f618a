#!/usr/bin/env python
"""Ledger performance benchmark (issue 2): the targets, measured next to the machine's physical limits.

    python benchmarks/ledger_bench.py            # full run (~2-3 min), writes benchmarks/results/ledger.json
    python benchmarks/ledger_bench.py --smoke    # < 10 s, tiny sizes, for CI; writes ledger-smoke.json
    python benchmarks/ledger_bench.py --only sqlite-5k --out /tmp/x.json

What is measured (all on this machine, in one run):

- baselines: raw SHA-256 of ~600-byte leaves, HMAC-SHA256 of 2 KB, Ed25519 signatures, canonical JSON
  encoding of a leaf body, and SQLite batched inserts of leaf-shaped rows (executemany, WAL,
  synchronous=FULL, one transaction per 512 rows) into the ledger's own schema;
- caller cost of ``log.log_inference`` (2 KB prompt, 2 KB response, realistic extras), timed with
  ``perf_counter_ns`` around each call while the sealer runs under open-loop paced load;
- call -> durable signed checkpoint: the sealer's own per-record enqueue->commit latencies
  (the sealer's latency record; the enqueue stamp is taken at the end of ``log_inference``, so the
  caller's few µs of hashing are not included), at 5,000 and 10,000 records/s offered;
- sustained throughput: one thread offers N records as fast as it can, then ``flush``;
  records/s = N / (time from the first call until ``flush`` returned);
- ``verify()`` over the log built by the throughput run;
- the same on PostgreSQL (fresh schema, dropped afterwards), including two writer processes.

Records diverted to the dead-letter spool are not in the sealer's latency list; every result reports
``spooled`` so a latency figure is never quoted over a partial sample.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
SECTIONS = ("baselines", "sqlite-5k", "sqlite-10k", "sqlite-throughput", "verify",
            "pg-5k", "pg-throughput", "pg-2proc")

# name -> (result key path, comparison, target, unit)
TARGETS: list[tuple[str, str, str, float, str]] = [
    ("caller p99 (SQLite, 5k/s)", "sqlite-5k.caller_us.p99", "<=", 50, "µs"),
    ("call->checkpoint p99 (SQLite, 5k/s)", "sqlite-5k.seal_ms.p99", "<=", 25, "ms"),
    ("call->checkpoint p99 (SQLite, 10k/s)", "sqlite-10k.seal_ms.p99", "<=", 50, "ms"),
    ("sustained throughput (SQLite)", "sqlite-throughput.records_per_s", ">=", 40_000, "rec/s"),
    ("verify rate", "verify.records_per_s", ">=", 300_000, "rec/s"),
    ("call->checkpoint p99 (PostgreSQL, 5k/s)", "pg-5k.seal_ms.p99", "<=", 50, "ms"),
    ("sustained throughput (PostgreSQL)", "pg-throughput.records_per_s", ">=", 10_000, "rec/s"),
    ("sustained throughput (PostgreSQL, 2 procs)", "pg-2proc.records_per_s", ">=", 10_000, "rec/s"),
    ("call->checkpoint p99 (PostgreSQL, 2 procs, 5k/s)", "pg-2proc.paced.seal_ms.p99", "<=", 50, "ms"),
]

SIZES: dict[str, dict[str, Any]] = {  # full run / smoke run
    "full": {"base_s": 1.0, "sql_rows": 100_000, "paced_s": 10.0, "warm_s": 1.0, "tput_n": 200_000,
             "pg_paced_s": 10.0, "pg_tput_n": 100_000, "pg2_n": 50_000, "pg2_paced_s": 8.0},
    "smoke": {"base_s": 0.05, "sql_rows": 2048, "paced_s": 0.4, "warm_s": 0.1, "tput_n": 3_000,
              "pg_paced_s": 0.4, "pg_tput_n": 1_500, "pg2_n": 600, "pg2_paced_s": 0.3},
}


# -- helpers ----------------------------------------------------------------------------------------
def pct(sorted_vals: list[int] | list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    return float(sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))])


def summary(vals: list[int] | list[float], scale: float = 1.0, nd: int = 2) -> dict[str, Any]:
    s = sorted(vals)
    if not s:
        return {"n": 0}
    return {"n": len(s), "p50": round(pct(s, 0.5) * scale, nd), "p90": round(pct(s, 0.9) * scale, nd),
            "p99": round(pct(s, 0.99) * scale, nd), "p999": round(pct(s, 0.999) * scale, nd),
            "max": round(s[-1] * scale, nd), "mean": round(sum(s) / len(s) * scale, nd)}


def rate_loop(fn: Callable[[int], None], seconds: float, chunk: int = 1000) -> dict[str, Any]:
    """Run fn(chunk) until ``seconds`` have passed; ops/s over the whole time."""
    n = 0
    t0 = time.perf_counter()
    while True:
        fn(chunk)
        n += chunk
        el = time.perf_counter() - t0
        if el >= seconds:
            break
    return {"ops": n, "seconds": round(el, 4), "per_s": round(n / el), "ns_per_op": round(el / n * 1e9)}


def cpu_busy_sample(seconds: float) -> float | None:
    """Fraction of all CPUs busy over ``seconds`` (from /proc/stat), or None off Linux."""
    def read() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            vals = [int(x) for x in fh.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals), idle

    try:
        t1, i1 = read()
        time.sleep(seconds)
        t2, i2 = read()
    except OSError:
        return None
    return round(1 - (i2 - i1) / max(1, t2 - t1), 3)


def machine_info() -> dict[str, Any]:
    import cryptography
    import orjson

    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src/soc2ai/ledger"],
                                    capture_output=True, text=True, timeout=5).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    cpu_model = None
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        cpu_model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), None)
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu_model": cpu_model,
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "sqlite": sqlite3.sqlite_version,
            "orjson": orjson.__version__, "cryptography": cryptography.__version__,
            "switch_interval_s": sys.getswitchinterval(), "git_commit": commit, "ledger_src_dirty": dirty,
            "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def make_content(seed: int = 1) -> tuple[list[str], list[str], list[str]]:
    """64 distinct 2,048-byte prompts and responses, and 100 user ids."""
    rng = random.Random(seed)
    words = ("the of contract refund policy account region data model answer customer ticket please "
             "summarise reset password invoice annual plan latency token support").split()

    def text() -> str:
        out = " ".join(rng.choice(words) for _ in range(500))
        return (out * 2)[:2048]

    return ([text() for _ in range(64)], [text() for _ in range(64)],
            [f"user-{i:03d}@example.com" for i in range(100)])


PROMPTS, RESPONSES, USERS = make_content()


def call(log: Any, i: int) -> None:
    log.log_inference(user_id=USERS[i % 100], model_id="support-bot", prompt=PROMPTS[i % 64],
                      response=RESPONSES[(i * 7) % 64], latency_us=812_345, input_tokens=512,
                      output_tokens=498, flagged=False, model_served="gpt-4o-mini-2024-07-18",
                      provider="openai", endpoint="chat.completions", finish_reason="stop",
                      params={"temperature": "0.2", "max_tokens": 512})


SEALER = "thread"  # --sealer: where the sealer runs ([ledger] sealer)


def open_log(tmp: Path, url: str, name: str = "a", sealer: str | None = None) -> Any:
    from soc2ai.ledger import AuditLog

    return AuditLog.open(url, keys_dir=tmp / "keys", spool_dir=tmp / f"spool-{name}",
                         witness_dir=tmp / "witness", sealer=sealer or SEALER)


def sealer_cpu_s(sealer: Any) -> float | None:
    """CPU seconds of the sealer: its thread's clock, or the whole child process (``sealer = "process"``)."""
    pid = getattr(sealer, "pid", None)
    try:
        if pid is None:
            return time.clock_gettime(time.pthread_getcpuclockid(sealer.ident))
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError, TypeError, ValueError, IndexError):
        return None


# -- baselines --------------------------------------------------------------------------------------
def bench_baselines(tmp: Path, sz: dict[str, Any]) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from soc2ai.ledger.canonical import canonical_json

    secs = sz["base_s"]
    rng = random.Random(2)
    leaves = [rng.randbytes(600) for _ in range(1000)]
    sha = hashlib.sha256

    def sha_chunk(n: int) -> None:
        for leaf in leaves[:n]:
            sha(b"\x00" + leaf).digest()

    key, msg = os.urandom(32), PROMPTS[0].encode()

    def hmac_chunk(n: int) -> None:
        for _ in range(n):
            hmac.digest(key, msg, "sha256")

    sk = Ed25519PrivateKey.generate()
    note = b"soc2ai/0123456789abcdef\n123456789\nq0LhO3ZbhEd0nVwKpqG3yXWmCxkYq8Yd9T2sD+1o0dM=\n"

    def sign_chunk(n: int) -> None:
        for _ in range(n):
            sk.sign(note)

    body = {"v": 1, "kind": "inference", "id": uuid.uuid4().hex, "ts": 1_780_000_000_000_000,
            "subject_ref": os.urandom(32).hex(), "hash_mode": "hmac-sha256", "input_hash": os.urandom(32).hex(),
            "output_hash": os.urandom(32).hex(), "model": "support-bot", "latency_us": 812_345,
            "input_tokens": 512, "output_tokens": 498, "flagged": False, "model_served": "gpt-4o-mini-2024-07-18",
            "provider": "openai", "endpoint": "chat.completions", "finish_reason": "stop",
            "params": {"max_tokens": 512, "temperature": "0.2"}, "idx": 123_456}

    def enc_chunk(n: int) -> None:
        for _ in range(n):
            canonical_json(body)

    out: dict[str, Any] = {
        "sha256_600B": rate_loop(sha_chunk, secs),
        "hmac_sha256_2KB": rate_loop(hmac_chunk, secs),
        "ed25519_sign": rate_loop(sign_chunk, secs, chunk=200),
        "canonical_json_leaf": rate_loop(enc_chunk, secs),
    }
    out["canonical_json_leaf"]["leaf_bytes"] = len(canonical_json(body))

    enc = canonical_json(body)
    n_rows = sz["sql_rows"]
    # The ledger's own schema (from the store module, so it follows schema changes), and the bare table:
    # the difference is what the secondary indexes cost.
    out["sqlite_insert_wal_full_b512"] = sqlite_insert(tmp / "baseline.db", enc, n_rows, indexes=True)
    out["sqlite_insert_wal_full_b512_no_indexes"] = sqlite_insert(tmp / "baseline-noidx.db", enc, n_rows,
                                                                  indexes=False)
    out["fsync_512KB"] = fsync_latency(tmp / "fsync.bin", 40 if sz is SIZES["smoke"] else 200)
    return out


def sqlite_insert(db: Path, enc: bytes, n_rows: int, *, indexes: bool) -> dict[str, Any]:
    """Leaf-shaped rows (100 subjects, uuid4 request ids, as the log writes them), WAL, synchronous=FULL,
    executemany of 512 rows per transaction."""
    from soc2ai.ledger.store.sql import schema

    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    for ddl in schema("BLOB", "INTEGER"):
        if indexes or "CREATE TABLE IF NOT EXISTS ledger_leaves" in ddl:
            conn.execute(ddl)
    subjects = [os.urandom(32) for _ in range(100)]
    rows = [(i, hashlib.sha256(enc + i.to_bytes(8, "big")).digest(), enc, "inference",
             1_780_000_000_000_000 + i * 100, subjects[i % 100], uuid.uuid4().hex) for i in range(n_rows)]
    commits: list[float] = []
    t0 = time.perf_counter()
    for i in range(0, n_rows, 512):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO ledger_leaves (idx, leaf_hash, body, kind, ts, subject_ref, rid) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", rows[i:i + 512])
        c0 = time.perf_counter()
        conn.execute("COMMIT")
        commits.append((time.perf_counter() - c0) * 1000)
    el = time.perf_counter() - t0
    conn.close()
    return {"rows": n_rows, "seconds": round(el, 4), "per_s": round(n_rows / el), "commits": len(commits),
            "row_body_bytes": len(enc), "ms_per_batch": round(el / len(commits) * 1000, 3),
            "commit_ms": summary(commits, 1.0, 3)}


def fsync_latency(path: Path, n: int) -> dict[str, Any]:
    """Append 512 KB and fsync, n times: the disk's durability floor for one sealed batch."""
    lat: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        chunk = os.urandom(512 * 1024)
        for _ in range(n):
            os.write(fd, chunk)
            t0 = time.perf_counter()
            os.fsync(fd)
            lat.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
    return {"n": n, "ms": summary(lat, 1.0, 3)}


# -- paced and throughput runs ------------------------------------------------------------------------
class CpuMeter:
    """CPU seconds used by the calling thread, the sealer thread and the whole process over a phase.

    Unlike wall-clock figures these barely move with other load on the machine, so they say what the
    ledger itself costs per record even on a busy box. Involuntary context switches of the calling
    thread show how often the OS preempted it (a sign of CPU contention, not of ledger work).
    """

    def __init__(self, sealer: Any) -> None:
        self.sealer = sealer
        self.start = self.read()

    def read(self) -> tuple[float, float | None, float, tuple[int, int] | None]:
        sealer_cpu = sealer_cpu_s(self.sealer)
        ivcsw = None
        with contextlib.suppress(ImportError, AttributeError, OSError):
            import resource

            ru = resource.getrusage(resource.RUSAGE_THREAD)
            ivcsw = (ru.ru_nivcsw, ru.ru_minflt)
        return time.thread_time(), sealer_cpu, time.process_time(), ivcsw

    def per_record(self, n: int) -> dict[str, Any]:
        (c0, s0, p0, v0), (c1, s1, p1, v1) = self.start, self.read()
        caller = (c1 - c0) / n * 1e6
        sealer = None if s0 is None or s1 is None else (s1 - s0) / n * 1e6
        child = sealer if hasattr(self.sealer, "pid") and sealer is not None else 0.0
        return {"caller_thread": round(caller, 2), "sealer_thread": None if sealer is None else round(sealer, 2),
                "process": round((p1 - p0) / n * 1e6 + child, 2),
                "caller_involuntary_ctx_switches": None if v0 is None or v1 is None else v1[0] - v0[0],
                "caller_minor_faults": None if v0 is None or v1 is None else v1[1] - v0[1]}


def paced(log: Any, rate: float, seconds: float, start: int = 0) -> dict[str, Any]:
    """Open-loop: call i is due at t0 + i/rate; sleep until due, then call (late calls go at once).

    Each call is bracketed by perf_counter_ns (wall) and, inside that, thread_time_ns (this thread's CPU):
    a wall tail far above the CPU tail is waiting (GIL hand-off or OS preemption), not work.
    """
    pc, tt = time.perf_counter_ns, time.thread_time_ns
    n = int(rate * seconds)
    interval = 1e9 / rate
    caller: list[int] = [0] * n
    caller_cpu: list[int] = [0] * n
    late_max = late_sum = 0
    t0 = pc() + 2_000_000
    for i in range(n):
        due = t0 + int(i * interval)
        ahead = due - pc()
        if ahead > 0:
            # Sleep, never spin: a spinning Python thread holds the GIL and would starve the sealer (it
            # only gets the GIL back at the 5 ms switch interval). A real caller waits in I/O instead.
            # Sleep overshoots by ~0.1 ms; the schedule is absolute, so the lag does not accumulate.
            time.sleep(ahead / 1e9)
        late = pc() - due
        late_sum += late
        late_max = max(late_max, late)
        c0 = pc()
        u0 = tt()
        call(log, start + i)
        u1 = tt()
        caller[i] = pc() - c0
        caller_cpu[i] = u1 - u0
    el = (pc() - t0) / 1e9
    return {"n": n, "caller_ns": caller, "caller_cpu_ns": caller_cpu, "offered_per_s": round(n / el),
            "late_max_ms": round(late_max / 1e6, 2), "late_mean_ms": round(late_sum / max(1, n) / 1e6, 3)}


def seal_phase(log: Any, rate: float, seconds: float, warm_s: float) -> dict[str, Any]:
    """Warm up (all subjects minted), reset the sealer's latency record, then a measured paced run."""
    sealer = log._sealer
    w = paced(log, rate, warm_s)
    log.flush(timeout=60)
    spooled0 = log.stats()["spooled_total"]
    sealer.clear_latencies()
    snap0 = sealer.snapshot()
    b0, r0 = snap0["sealed_batches"], snap0["sealed_records"]
    cpu = CpuMeter(sealer)
    run = paced(log, rate, seconds, start=w["n"])
    log.flush(timeout=120)
    cpu_us = cpu.per_record(run["n"])
    snap = sealer.snapshot(latencies=True)
    lat = snap["latencies_us"]
    st = log.stats()
    batches = snap["sealed_batches"] - b0
    return {
        "rate_offered": rate, "seconds": seconds, "records": run["n"], "offered_per_s": run["offered_per_s"],
        "pacing_late_max_ms": run["late_max_ms"], "pacing_late_mean_ms": run["late_mean_ms"],
        "caller_us": summary(run["caller_ns"], 1e-3),
        "caller_cpu_us": summary(run["caller_cpu_ns"], 1e-3),
        "cpu_us_per_record": cpu_us,
        "seal_ms": summary(lat, 1e-3),
        "seal_samples": len(lat),
        "stats_seal_latency_us": st["seal_latency_us"],
        "batches": batches, "mean_batch": round((snap["sealed_records"] - r0) / max(1, batches), 1),
        "spooled": st["spooled_total"] - spooled0, "caller_errors": st["caller_errors"],
        "store_errors": st["store_errors"],
    }


def throughput(log: Any, n: int) -> dict[str, Any]:
    sealer = log._sealer
    spooled0 = log.stats()["spooled_total"]
    size0 = log.size()
    cpu = CpuMeter(sealer)
    t0 = time.perf_counter()
    for i in range(n):
        call(log, i)
    t_offer = time.perf_counter() - t0
    durable = log.flush(timeout=600)
    el = time.perf_counter() - t0
    cpu_us = cpu.per_record(n)
    st = log.stats()
    return {"records": n, "seconds": round(el, 3), "records_per_s": round(n / el),
            "offer_seconds": round(t_offer, 3), "offer_per_s": round(n / t_offer),
            "durable_new": durable - size0, "cpu_us_per_record": cpu_us,
            # if all of it ran serially on one core (the GIL makes most of it serial)
            "one_core_equivalent_per_s": round(1e6 / cpu_us["process"]) if cpu_us["process"] else None,
            "spooled": st["spooled_total"] - spooled0,
            "sealed_batches": st["sealed_batches"], "caller_errors": st["caller_errors"],
            "store_errors": st["store_errors"]}


def bench_verify(log: Any, runs: int = 3) -> dict[str, Any]:
    """``runs`` full verifications; the median is reported (one run varies by +-15% on this VM)."""
    size = log.size()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        rep = log.verify()
        times.append(time.perf_counter() - t0)
    el = statistics.median(times)
    return {"records": rep.size, "log_size": size, "checkpoints": rep.checkpoints, "seconds": round(el, 3),
            "records_per_s": round(rep.size / el), "runs_records_per_s": [round(rep.size / t) for t in times],
            "report_elapsed_s": round(rep.elapsed_s, 3)}


def leaf_bytes(log: Any) -> float | None:
    rows = log.store._fetchall("SELECT AVG(LENGTH(body)) FROM ledger_leaves WHERE kind = 'inference'")
    return None if rows[0][0] is None else round(float(rows[0][0]), 1)


# -- PostgreSQL -------------------------------------------------------------------------------------
@contextlib.contextmanager
def pg_schema(base: str) -> Iterator[str]:
    import psycopg

    name = "bench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def pg_available(base: str) -> str | None:
    try:
        import psycopg

        with psycopg.connect(base, autocommit=True, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def pg_worker(url: str, tmp: str, name: str, phases: list[tuple[int, float]], barrier: Any, out: Any,
              sealer: str) -> None:
    """One writer process with its own AuditLog on the shared log. Each phase offers n records (paced at
    ``rate`` if > 0, else as fast as possible) after both processes reached the barrier, then flushes."""
    log = open_log(Path(tmp), url, name, sealer)
    try:
        for n, rate in phases:
            st0 = log.stats()
            log._sealer.clear_latencies()
            barrier.wait(timeout=120)
            t0 = time.perf_counter()
            if rate > 0:
                caller = paced(log, rate, n / rate)["caller_ns"]
            else:
                caller = []
                for i in range(n):
                    call(log, i)
            log.flush(timeout=600)
            t1 = time.perf_counter()
            st = log.stats()
            out.send({"t0": t0, "t1": t1, "n": n, "lat_us": log._sealer.snapshot(latencies=True)["latencies_us"],
                      "caller_ns": caller,
                      **{k: st[k] - st0[k] for k in ("spooled_total", "caller_errors", "store_errors",
                                                     "sealed_batches")}})
    finally:
        log.close()


def two_procs(url: str, tmp: Path, phases: list[tuple[int, float]]) -> list[dict[str, Any]]:
    """Two spawned writer processes run ``phases`` in lock step; one result per phase."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    pipes, procs = [], []
    for name in ("p1", "p2"):
        rx, tx = ctx.Pipe(duplex=False)
        p = ctx.Process(target=pg_worker, args=(url, str(tmp), name, phases, barrier, tx, SEALER))
        p.start()
        pipes.append(rx)
        procs.append(p)
    results = []
    for _, rate in phases:
        res = [rx.recv() for rx in pipes]
        t0, t1 = min(r["t0"] for r in res), max(r["t1"] for r in res)
        total = sum(r["n"] for r in res)
        out: dict[str, Any] = {
            "processes": 2, "records": total, "seconds": round(t1 - t0, 3), "records_per_s": round(total / (t1 - t0)),
            "spooled": sum(r["spooled_total"] for r in res), "caller_errors": sum(r["caller_errors"] for r in res),
            "store_errors": sum(r["store_errors"] for r in res), "batches": sum(r["sealed_batches"] for r in res),
            "seal_ms": summary([x for r in res for x in r["lat_us"]], 1e-3)}
        if rate > 0:
            out["rate_offered"] = rate * 2
            out["caller_us"] = summary([x for r in res for x in r["caller_ns"]], 1e-3)
        results.append(out)
    for p in procs:
        p.join(60)
    return results


def bench_pg(base: str, tmp: Path, sz: dict[str, Any], only: str | None) -> dict[str, Any]:
    res: dict[str, Any] = {}
    def want(section: str) -> bool:
        return only in (None, section)

    if want("pg-5k"):
        with pg_schema(base) as url:
            log = open_log(tmp, url, "pg5k")
            try:
                t0 = time.perf_counter()
                res["pg-5k"] = seal_phase(log, 5000, sz["pg_paced_s"], sz["warm_s"])
                res["pg-5k"]["section_s"] = round(time.perf_counter() - t0, 2)
                res["pg-5k"]["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
            finally:
                log.close()
    if want("pg-throughput"):
        with pg_schema(base) as url:
            log = open_log(tmp, url, "pgtput")
            try:
                call(log, 0)
                log.flush(timeout=30)
                res["pg-throughput"] = throughput(log, sz["pg_tput_n"])
                res["pg-throughput"]["section_s"] = res["pg-throughput"]["seconds"]
                res["pg-throughput"]["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
            finally:
                log.close()
    if want("pg-2proc"):
        with pg_schema(base) as url:
            t0 = time.perf_counter()
            open_log(tmp, url, "pg2init").close()  # create the tables once, before the race
            r, r["paced"] = two_procs(url, tmp, [(sz["pg2_n"], 0), (int(2500 * sz["pg2_paced_s"]), 2500)])
            r["section_s"] = round(time.perf_counter() - t0, 2)
            r["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
            res["pg-2proc"] = r
    return res


# -- driver -----------------------------------------------------------------------------------------
def lookup(results: dict[str, Any], path: str) -> float | None:
    cur: Any = results
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return float(cur) if isinstance(cur, (int, float)) else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    sz = SIZES["smoke" if args.smoke else "full"]
    only = args.only

    def want(section: str) -> bool:
        return only in (None, section)

    load_before = os.getloadavg()
    busy = cpu_busy_sample(0.2 if args.smoke else 1.0)
    doc: dict[str, Any] = {
        "benchmark": "ledger", "smoke": args.smoke, "only": only, "sealer": SEALER, "machine": machine_info(),
        "load": {"loadavg_before": [round(x, 2) for x in load_before], "cpu_busy_before": busy,
                 # "other load": more than ~a quarter of a core busy before we started
                 "other_load": load_before[0] > 0.5 or (busy is not None and busy > 0.15)},
        "method": {
            "prompt_bytes": len(PROMPTS[0].encode()), "response_bytes": len(RESPONSES[0].encode()),
            "subjects": len(USERS), "pacing": "open loop: call i due at t0 + i/rate; sleep until due (no spinning: it would hold the GIL)",
            "caller_cost": "perf_counter_ns around each log_inference call, during the paced run",
            "seal_latency": "sealer's enqueue->commit per record (the sealer's latency record), after warm-up",
            "throughput": "N calls from one thread as fast as possible, then flush; N / time to flush",
        },
        "results": {},
    }
    results: dict[str, Any] = doc["results"]
    tmp = Path(tempfile.mkdtemp(prefix="ledger-bench-", dir=args.tmp))
    t_start = time.perf_counter()
    try:
        from soc2ai.ledger.keys import generate_keys

        generate_keys(tmp / "keys", "bench")
        if want("baselines"):
            t0 = time.perf_counter()
            results["baselines"] = bench_baselines(tmp, sz)
            results["baselines"]["section_s"] = round(time.perf_counter() - t0, 2)
            results["baselines"]["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
        for name, rate in (("sqlite-5k", 5000), ("sqlite-10k", 10_000)):
            if not want(name):
                continue
            # --repeat: the caller's p99 varies from run to run on this VM; repeat the section (a fresh
            # store each time) and keep every run's figures. The first run is the section's result.
            runs = []
            for r in range(args.repeat if name == "sqlite-5k" else 1):
                log = open_log(tmp, f"sqlite:///{tmp}/{name}-{r}.db", f"{name}-{r}")
                try:
                    t0 = time.perf_counter()
                    res = seal_phase(log, rate, sz["paced_s"], sz["warm_s"])
                    res["section_s"] = round(time.perf_counter() - t0, 2)
                    res["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
                    res["leaf_bytes_avg"] = leaf_bytes(log)
                finally:
                    log.close()
                runs.append(res)
            results[name] = runs[0]
            if len(runs) > 1:
                p99s = [x["caller_us"]["p99"] for x in runs]
                results[f"{name}-runs"] = {
                    "runs": len(runs), "caller_p50_us": [x["caller_us"]["p50"] for x in runs],
                    "caller_p99_us": p99s, "seal_p99_ms": [x["seal_ms"]["p99"] for x in runs],
                    "median_caller_p99_us": statistics.median(p99s),
                    "runs_with_caller_p99_le_50_us": sum(1 for v in p99s if v <= 50)}
        if want("sqlite-throughput") or want("verify"):
            log = open_log(tmp, f"sqlite:///{tmp}/tput.db", "tput")
            try:
                call(log, 0)  # open the store, mint the first subject, outside the clock
                log.flush(timeout=30)
                tp = throughput(log, sz["tput_n"])
                tp["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
                if want("sqlite-throughput"):
                    results["sqlite-throughput"] = tp
            finally:
                log.close()
            if want("verify"):
                # As an auditor or `soc2ai log verify` does: a read-only log, no sealer thread running.
                from soc2ai.ledger import AuditLog

                reader = AuditLog.open(f"sqlite:///{tmp}/tput.db", keys_dir=tmp / "keys", read_only=True,
                                       spool_dir=tmp / "spool-tput", witness_dir=tmp / "witness")
                try:
                    results["verify"] = bench_verify(reader)
                    results["verify"]["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
                finally:
                    reader.close()
        if any(want(s) for s in SECTIONS if s.startswith("pg-")):
            why = pg_available(args.pg_url)
            if why is None:
                results.update(bench_pg(args.pg_url, tmp, sz, only))
            else:
                doc["postgres_skipped"] = why
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    doc["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    doc["load"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    doc["targets"] = []
    for label, path, op, target, unit in TARGETS:
        val = lookup(results, path)
        if val is None:
            continue
        met = val <= target if op == "<=" else val >= target
        doc["targets"].append({"name": label, "value": val, "op": op, "target": target, "unit": unit,
                               "met": met})
    return doc


def fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    if unit in {"rec/s", "/s"} or abs(v) >= 1000:
        return f"{v:,.0f}{(' ' + unit) if unit else ''}"
    return f"{v:.2f}{(' ' + unit) if unit else ''}" if unit else f"{v:.2f}"


def print_table(doc: dict[str, Any]) -> None:
    r = doc["results"]
    lines = ["| measurement | p50 | p99 | value | target |", "|---|---|---|---|---|"]
    b = r.get("baselines")
    if b:
        lines += [
            f"| baseline: SHA-256 of 600-byte leaves | | | {fmt(b['sha256_600B']['per_s'], '/s')} | |",
            f"| baseline: HMAC-SHA256 of 2 KB | | | {fmt(b['hmac_sha256_2KB']['per_s'], '/s')} | |",
            f"| baseline: Ed25519 sign | | | {fmt(b['ed25519_sign']['per_s'], '/s')} | |",
            f"| baseline: canonical JSON of a {b['canonical_json_leaf']['leaf_bytes']}-byte leaf | | | "
            f"{fmt(b['canonical_json_leaf']['per_s'], '/s')} | |",
            f"| baseline: SQLite insert, ledger schema (WAL, sync=FULL, 512/txn) | | | "
            f"{fmt(b['sqlite_insert_wal_full_b512']['per_s'], 'rows/s')} "
            f"(commit p50 {b['sqlite_insert_wal_full_b512']['commit_ms']['p50']} ms) | |",
            f"| baseline: same, bare table without secondary indexes | | | "
            f"{fmt(b['sqlite_insert_wal_full_b512_no_indexes']['per_s'], 'rows/s')} "
            f"(commit p50 {b['sqlite_insert_wal_full_b512_no_indexes']['commit_ms']['p50']} ms) | |",
            f"| baseline: append 512 KB + fsync (ms) | {b['fsync_512KB']['ms']['p50']} | "
            f"{b['fsync_512KB']['ms']['p99']} | | |",
        ]
    tgt = {t["name"]: t for t in doc["targets"]}

    def mark(name: str) -> str:
        t = tgt.get(name)
        if t is None:
            return ""
        return f"{t['op']} {t['target']:,.0f} {t['unit']} {'OK' if t['met'] else 'MISSED'}"

    for key, label in (("sqlite-5k", "SQLite 5,000/s"), ("sqlite-10k", "SQLite 10,000/s"),
                       ("pg-5k", "PostgreSQL 5,000/s")):
        x = r.get(key)
        if not x:
            continue
        c, s = x["caller_us"], x["seal_ms"]
        lines.append(f"| {label}: caller cost of log_inference (µs) | {c['p50']} | {c['p99']} | "
                     f"max {c['max']}; own CPU p50/p99 {x['caller_cpu_us']['p50']}/{x['caller_cpu_us']['p99']} | {mark('caller p99 (SQLite, 5k/s)') if key == 'sqlite-5k' else ''} |")
        tname = {"sqlite-5k": "call->checkpoint p99 (SQLite, 5k/s)", "sqlite-10k": "call->checkpoint p99 (SQLite, 10k/s)",
                 "pg-5k": "call->checkpoint p99 (PostgreSQL, 5k/s)"}[key]
        lines.append(f"| {label}: call -> durable checkpoint (ms) | {s.get('p50')} | {s.get('p99')} | "
                     f"max {s.get('max')}, batch {x['mean_batch']}, spooled {x['spooled']} | {mark(tname)} |")
    for key, label, tname in (("sqlite-throughput", "SQLite sustained throughput", "sustained throughput (SQLite)"),
                              ("verify", "verify()", "verify rate"),
                              ("pg-throughput", "PostgreSQL sustained throughput",
                               "sustained throughput (PostgreSQL)"),
                              ("pg-2proc", "PostgreSQL 2 processes throughput",
                               "sustained throughput (PostgreSQL, 2 procs)")):
        x = r.get(key)
        if not x:
            continue
        extra = f" ({x['records']:,} records" + (f", spooled {x['spooled']}" if "spooled" in x else "")
        cpu = x.get("cpu_us_per_record")
        if cpu:
            extra += f"; CPU µs/record caller {cpu['caller_thread']} + sealer {cpu['sealer_thread']}"
        extra += ")"
        lines.append(f"| {label} | | | {fmt(x['records_per_s'], 'rec/s')}{extra} | {mark(tname)} |")
    p2 = (r.get("pg-2proc") or {}).get("paced")
    if p2:
        s = p2["seal_ms"]
        lines.append(f"| PostgreSQL 2 processes x 2,500/s: call -> checkpoint (ms) | {s.get('p50')} | "
                     f"{s.get('p99')} | spooled {p2['spooled']} | "
                     f"{mark('call->checkpoint p99 (PostgreSQL, 2 procs, 5k/s)')} |")
    ld = doc["load"]
    lines.append("")
    lines.append(f"load average before {ld['loadavg_before']}, after {ld['loadavg_after']}; CPU busy before "
                 f"start {ld['cpu_busy_before']}; other load on the machine: {ld['other_load']}")
    if doc.get("postgres_skipped"):
        lines.append(f"PostgreSQL skipped: {doc['postgres_skipped']}")
    m = doc["machine"]
    runs = r.get("sqlite-5k-runs")
    if runs:
        lines.append(f"caller p99 at 5,000/s over {runs['runs']} runs: {runs['caller_p99_us']} µs "
                     f"(median {runs['median_caller_p99_us']}; {runs['runs_with_caller_p99_le_50_us']} at or under 50)")
    lines.append(f"{m['platform']}, {m['cpu_count']} CPUs ({m['cpu_model']}), Python {m['python']}, "
                 f"SQLite {m['sqlite']}, commit {m['git_commit']}{' (ledger dirty)' if m['ledger_src_dirty'] else ''}, "
                 f"{m['date_utc']}, {doc['elapsed_s']} s")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (< 10 s), for CI")
    ap.add_argument("--only", choices=SECTIONS, help="run one section")
    ap.add_argument("--out", type=Path, help="JSON output (default benchmarks/results/ledger.json, "
                                             "ledger-smoke.json with --smoke)")
    ap.add_argument("--pg-url", default=os.environ.get("SOC2AI_TEST_PG_URL", DEFAULT_PG),
                    help="PostgreSQL database to create a scratch schema in")
    ap.add_argument("--tmp", default=None, help="directory for scratch databases (default: system temp)")
    ap.add_argument("--repeat", type=int, default=1, help="run the sqlite-5k section this many times")
    ap.add_argument("--sealer", choices=("thread", "process"), default="thread",
                    help="where the sealer runs ([ledger] sealer); default thread")
    args = ap.parse_args(argv)
    global SEALER
    SEALER = args.sealer
    doc = run(args)
    out = args.out or ROOT / "benchmarks" / "results" / ("ledger-smoke.json" if args.smoke else "ledger.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print_table(doc)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
