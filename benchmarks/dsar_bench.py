#!/usr/bin/env python
"""DSAR benchmark (issue 6): `dsar find` and `dsar delete` (with its proving re-scan) across real stores.

    python benchmarks/dsar_bench.py --smoke                      # seconds; writes results/dsar-smoke.json
    python benchmarks/dsar_bench.py --sizes 10000,100000,1000000 --chroma-max 100000
    python benchmarks/dsar_bench.py --sizes 1000000 --build-only  # build the cache (e.g. under `nice -n 19`)

Per size S the stores are: the ledger (SQLite, S inference records), a PostgreSQL embeddings table in the
pgvector layout (S rows, float8[] vectors), a Chroma collection (min(S, --chroma-max) vectors, our own
embeddings), a JSONL dataset (S lines) and Redis cached completions in the gateway's layout (S/10 keys).
Several bench subjects are planted, each owning ~1,000 items spread over the stores (some only as
untracked copies of their e-mail in text, found by the discovery scan). Each run consumes one subject:
`find` then `delete --yes` (which re-runs find per store to prove nothing remains). Stores are built once
and cached under benchmarks/.cache/dsar/<S>/ (PostgreSQL: schema dsar_bench_<S>; Redis: db 14, prefix
bench<S>:cache:); when every subject is used up, pass --rebuild. Timings are the library calls the CLI
makes (the CLI adds ~2 s of imports).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache" / "dsar"
RESULTS = ROOT / "benchmarks" / "results"
PG = os.environ.get("SOC2AI_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("SOC2AI_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SUBJECTS = 6
DIM = 16
# Items one bench subject owns per store at full scale (~1,000 in all), plus discovery-only copies.
OWN = {"ledger": 300, "postgres": 250, "chroma": 150, "dataset": 250, "redis": 40}
COPIES = {"postgres": 3, "chroma": 2, "dataset": 5, "redis": 3}


def email(subject: str) -> str:
    return f"{subject}@bench.example"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def scaled(size: int, smoke: bool) -> dict[str, int]:
    f = 0.1 if smoke else 1.0
    return {k: max(1, int(v * f)) for k, v in OWN.items()}


# -- building --------------------------------------------------------------------------------------
def config_text(size: int, chroma_n: int, have_pg: bool, have_redis: bool) -> str:
    text = """[project]
name = "dsarbench"
[ledger]
store = "sqlite:///ledger/audit.db"
keys_dir = "ledger/keys"
spool_dir = "ledger/spool"
witness_dir = "ledger/witness"
queue_max = 200000
[data]
state_dir = "state"
[[data.connectors]]
name = "dataset"
type = "dataset"
path = "dataset"
[[data.connectors]]
name = "chroma"
type = "chroma"
path = "chroma"
"""
    if have_pg:
        sep = "&" if "?" in PG else "?"
        text += (f'[[data.connectors]]\nname = "postgres"\ntype = "postgres"\n'
                 f'url = "{PG}{sep}options=-csearch_path%3Ddsar_bench_{size}"\n')
    if have_redis:
        text += f'[[data.connectors]]\nname = "redis"\ntype = "redis"\nurl = "{REDIS}"\nprefix = "bench{size}:cache:"\n'
    return text


def owner_plan(n: int, own: int, rng: random.Random) -> dict[int, str]:
    """Which positions of a store of n items belong to which bench subject."""
    plan: dict[int, str] = {}
    for k in range(SUBJECTS):
        for pos in rng.sample(range(n), min(own, n // (SUBJECTS + 1))):
            plan.setdefault(pos, f"bench-subject-{k}")
    return plan


def build_ledger(root: Path, size: int, own: int) -> dict[str, str]:
    from soc2ai.config import load_config
    from soc2ai.ledger import AuditLog
    from soc2ai.ledger.keys import generate_keys

    config = load_config(root / "soc2ai.toml")
    generate_keys(config.path(config.ledger.keys_dir), "dsarbench", overwrite=True)
    rng = random.Random(size)
    plan = owner_plan(size, own, rng)
    others = max(1, size // 20)
    t0 = time.perf_counter()
    with AuditLog.open(config) as alog:
        for i in range(size):
            user = plan.get(i) or f"user{rng.randrange(others)}"
            alog.log_inference(user_id=user, model_id="gpt-bench", prompt=f"question {i}", response=f"answer {i}",
                               latency_us=1000, input_tokens=5, output_tokens=7)
            if i % 50_000 == 49_999:
                alog.flush(timeout=120)
                log(f"ledger {i + 1:,}/{size:,} ({(i + 1) / (time.perf_counter() - t0):,.0f}/s)")
        alog.flush(timeout=300)
        refs = {f"bench-subject-{k}": alog.subject_refs(f"bench-subject-{k}")[0] for k in range(SUBJECTS)}
    return refs


def build_dataset(root: Path, size: int, own: int) -> None:
    import orjson

    rng = random.Random(size + 1)
    plan = owner_plan(size, own, rng)
    copies = {pos: f"bench-subject-{k}" for k in range(SUBJECTS)
              for pos in rng.sample(range(size), COPIES["dataset"])}
    (root / "dataset").mkdir(exist_ok=True)
    with (root / "dataset" / "train.jsonl").open("wb") as fh:
        for i in range(size):
            subj = plan.get(i) or f"user{rng.randrange(max(1, size // 20))}"
            text = f"copied note: write to {email(copies[i])}" if i in copies else f"training example {i}"
            fh.write(orjson.dumps({"id": f"ex{i}", "subject_id": subj, "prompt": text, "completion": "ok",
                                   "soc2ai_label": "internal", "soc2ai_expires_at": 10**12}) + b"\n")


def build_postgres(size: int, own: int) -> None:
    import orjson
    import psycopg

    rng = random.Random(size + 2)
    plan = owner_plan(size, own, rng)
    copies = {pos: f"bench-subject-{k}" for k in range(SUBJECTS) for pos in rng.sample(range(size), COPIES["postgres"])}
    schema = f"dsar_bench_{size}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.soc2ai_embeddings (id text PRIMARY KEY, embedding float8[] NOT NULL,"
                     " document text, metadata jsonb, subject_id text)")
        with conn.cursor() as cur, cur.copy(f"COPY {schema}.soc2ai_embeddings FROM STDIN") as copy:
            for i in range(size):
                subj = plan.get(i) or f"user{rng.randrange(max(1, size // 20))}"
                doc = f"chunk mentioning {email(copies[i])}" if i in copies else f"document chunk {i}"
                vec = "{" + ",".join(f"{rng.random():.5f}" for _ in range(DIM)) + "}"
                meta = orjson.dumps({"subject_id": subj, "soc2ai_label": "internal",
                                     "soc2ai_expires_at": 10**12}).decode()
                copy.write_row((f"v{i}", vec, doc, meta, subj))
        # The indexes docs/data.md recommends: the subject column, metadata containment, trigram on text.
        conn.execute(f"CREATE INDEX ON {schema}.soc2ai_embeddings (subject_id)")
        conn.execute(f"CREATE INDEX ON {schema}.soc2ai_embeddings USING gin (metadata jsonb_path_ops)")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        conn.execute(f"CREATE INDEX ON {schema}.soc2ai_embeddings USING gin (document gin_trgm_ops)")
        conn.execute(f"ANALYZE {schema}.soc2ai_embeddings")


def build_chroma(root: Path, n: int, own: int) -> None:
    from soc2ai.data.connectors.chroma import open_client

    rng = random.Random(n + 3)
    plan = owner_plan(n, own, rng)
    copies = {pos: f"bench-subject-{k}" for k in range(SUBJECTS) for pos in rng.sample(range(n), COPIES["chroma"])}
    shutil.rmtree(root / "chroma", ignore_errors=True)
    col = open_client(root / "chroma").get_or_create_collection("docs", embedding_function=None)
    batch = 5000
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        idx = range(start, min(n, start + batch))
        col.add(ids=[f"c{i}" for i in idx], embeddings=[[rng.random() for _ in range(DIM)] for _ in idx],
                documents=[f"chunk mentioning {email(copies[i])}" if i in copies else f"document chunk {i}"
                           for i in idx],
                metadatas=[{"subject_id": plan.get(i) or f"user{rng.randrange(max(1, n // 20))}",
                            "soc2ai_label": "internal", "soc2ai_expires_at": 10**12} for i in idx])
        if (start // batch) % 20 == 19:
            log(f"chroma {start + batch:,}/{n:,} ({(start + batch) / (time.perf_counter() - t0):,.0f}/s)")


def build_redis(size: int, refs: dict[str, str], own: int) -> None:
    import orjson
    import redis

    n = max(1, size // 10)
    prefix = f"bench{size}:cache:"
    r = redis.Redis.from_url(REDIS)
    for key in r.scan_iter(match=prefix + "*", count=5000):
        r.delete(key)
    rng = random.Random(size + 4)
    plan = owner_plan(n, own, rng)
    copies = {pos: f"bench-subject-{k}" for k in range(SUBJECTS) for pos in rng.sample(range(n), COPIES["redis"])}
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        subj = plan.get(i)
        ref = refs[subj] if subj else f"{rng.getrandbits(128):032x}"
        text = f"reply cc {email(copies[i])}" if i in copies else f"cached answer {i}"
        pipe.set(f"{prefix}h{i}", orjson.dumps({"subject_ref": ref, "classification": "internal",
                                                 "created_us": 1, "response": text}))
        pipe.sadd(f"{prefix}subject:{ref}", f"h{i}")
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    r.close()


def reachable(kind: str) -> bool:
    try:
        if kind == "pg":
            import psycopg

            psycopg.connect(PG, connect_timeout=3).close()
        else:
            import redis

            redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
        return True
    except Exception:
        return False


def build(size: int, *, chroma_max: int, smoke: bool, rebuild: bool) -> tuple[Path, dict[str, Any]]:
    """Build (or reuse) the stores for one size; return the directory and its state."""
    root = CACHE / ("smoke" if smoke else str(size))
    state_path = root / "state.json"
    if state_path.exists() and not rebuild:
        state: dict[str, Any] = json.loads(state_path.read_text())
        if len(state["used"]) < SUBJECTS:
            return root, state
        log(f"size {size}: every bench subject used; rebuilding")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    own = scaled(size, smoke)
    have_pg, have_redis = reachable("pg"), reachable("redis")
    chroma_n = min(size, chroma_max)
    (root / "soc2ai.toml").write_text(config_text(size, chroma_n, have_pg, have_redis))
    times: dict[str, float] = {}
    for name, fn in (("ledger", lambda: build_ledger(root, size, own["ledger"])),
                     ("dataset", lambda: build_dataset(root, size, own["dataset"])),
                     ("chroma", lambda: build_chroma(root, chroma_n, own["chroma"])),
                     ("postgres", lambda: build_postgres(size, own["postgres"]) if have_pg else None)):
        log(f"size {size}: building {name}")
        t0 = time.perf_counter()
        out = fn()
        times[name] = round(time.perf_counter() - t0, 2)
        if name == "ledger":
            refs = out
    if have_redis:
        t0 = time.perf_counter()
        build_redis(size, refs, own["redis"])
        times["redis"] = round(time.perf_counter() - t0, 2)
    state = {"size": size, "sizes": {"ledger": size, "postgres": size if have_pg else 0, "chroma": chroma_n,
                                     "dataset": size, "redis": max(1, size // 10) if have_redis else 0},
             "build_s": times, "used": [], "pg": have_pg, "redis": have_redis}
    state_path.write_text(json.dumps(state, indent=2))
    return root, state


# -- measuring -------------------------------------------------------------------------------------
def measure(root: Path, state: dict[str, Any]) -> dict[str, Any]:
    from soc2ai.config import load_config
    from soc2ai.data.dsar import Dsar
    from soc2ai.data.runtime import open_workspace

    subject = next(f"bench-subject-{k}" for k in range(SUBJECTS) if f"bench-subject-{k}" not in state["used"])
    config = load_config(root / "soc2ai.toml")
    idents = [("email", email(subject))]
    with open_workspace(config, write_log=True) as ws:
        dsar = Dsar(ws.opened, lineage=ws.lineage, log=ws.log, state_dir=config.path(config.data.state_dir))
        t0 = time.perf_counter()
        found = dsar.find(subject, idents)
        find_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        deleted = dsar.delete(subject, idents, dry_run=False)
        delete_s = time.perf_counter() - t0
        again = dsar.find(subject, idents, receipt=False)
    state["used"].append(subject)
    (root / "state.json").write_text(json.dumps(state, indent=2))
    per = {}
    for f, d in zip(sorted(found.stores, key=lambda s: s.name), sorted(deleted.stores, key=lambda s: s.name),
                    strict=True):
        items = len(f.locations)
        if f.type == "ledger" and f.locations:
            items = sum(int(loc.detail.split()[0]) for loc in f.locations)
        per[f.name] = {"store_size": state["sizes"].get(f.name), "items_found": items,
                       "how": {h: sum(1 for loc in f.locations if loc.how == h) for h in {x.how for x in f.locations}},
                       "find_s": round(f.seconds, 3), "delete_s": round(d.delete_seconds, 3),
                       "verify_s": round(d.verify_seconds, 3), "verified": d.verified, "error": f.error or d.error}
    return {"subject": subject, "find_s": round(find_s, 3), "delete_s": round(delete_s, 3),
            "delete_outcome": deleted.outcome, "items": sum(p["items_found"] for p in per.values()),
            "left_after_delete": again.total, "stores": per}


def measure_cli(root: Path, state: dict[str, Any]) -> dict[str, Any]:
    """The same, through the command line a user types (process start and imports included)."""
    subject = next(f"bench-subject-{k}" for k in range(SUBJECTS) if f"bench-subject-{k}" not in state["used"])
    base = [sys.executable, "-m", "soc2ai", "dsar"]
    args = ["--subject", subject, "--identifier", f"email={email(subject)}", "--json", "--config", "soc2ai.toml"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOC2AI_")}
    out: dict[str, Any] = {"subject": subject}
    for name, extra in (("find", []), ("delete", ["--yes"])):
        t0 = time.perf_counter()
        proc = subprocess.run([*base, name, *args, *extra], cwd=root, env=env, capture_output=True, text=True,
                              check=False)
        out[f"{name}_s"] = round(time.perf_counter() - t0, 3)
        out[f"{name}_exit"] = proc.returncode
        if proc.returncode == 0:
            rep = json.loads(proc.stdout)
            out[f"{name}_items"] = rep["total"]
            out[f"{name}_outcome"] = rep["outcome"]
        else:
            out[f"{name}_stderr"] = proc.stderr[-500:]
    state["used"].append(subject)
    (root / "state.json").write_text(json.dumps(state, indent=2))
    return out


def machine() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "git_commit": commit, "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "loadavg": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated store sizes (ledger/PG/dataset)")
    ap.add_argument("--chroma-max", type=int, default=100_000, help="cap on Chroma vectors (slow to build)")
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--cli", action="store_true", help="also time `soc2ai dsar find/delete` as a user runs them")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    sizes = [2000] if args.smoke else [int(s) for s in args.sizes.split(",")]
    out = args.out or RESULTS / ("dsar-smoke.json" if args.smoke else "dsar.json")
    runs = []
    for size in sizes:
        root, state = build(size, chroma_max=2000 if args.smoke else args.chroma_max, smoke=args.smoke,
                            rebuild=args.rebuild)
        if args.build_only:
            log(f"size {size}: built ({state['build_s']})")
            continue
        log(f"size {size}: measuring")
        res = measure(root, state)
        res.update(size=size, store_sizes=state["sizes"], build_s=state["build_s"])
        if args.cli or args.smoke:
            res["cli"] = measure_cli(root, state)
        runs.append(res)
        print(f"\nsize {size:,}: find {res['find_s']:.2f}s (target <= 10), delete+prove {res['delete_s']:.2f}s "
              f"(target <= 30), {res['items']} items, outcome {res['delete_outcome']}, "
              f"left after delete {res['left_after_delete']}")
        print(f"  {'store':10} {'size':>9} {'items':>6} {'find s':>8} {'delete s':>9} {'verify s':>9}")
        for name, p in sorted(res["stores"].items()):
            print(f"  {name:10} {p['store_size'] or 0:>9,} {p['items_found']:>6} {p['find_s']:>8.3f} "
                  f"{p['delete_s']:>9.3f} {p['verify_s']:>9.3f}{'  ' + p['error'] if p['error'] else ''}")
        if "cli" in res:
            c = res["cli"]
            print(f"  CLI (process start + imports included): `dsar find` {c['find_s']:.2f}s exit {c['find_exit']}, "
                  f"`dsar delete --yes` {c['delete_s']:.2f}s exit {c['delete_exit']}")
    if args.build_only:
        return
    result = {"benchmark": "dsar", "smoke": args.smoke, "machine": machine(),
              "targets": {"find_s": 10, "delete_s": 30},
              "method": "library calls the CLI makes: Dsar.find then Dsar.delete(dry_run=False) (deletes, "
                        "re-runs find per store to prove nothing remains, appends the ledger receipt); "
                        "one fresh bench subject per run", "runs": runs}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
