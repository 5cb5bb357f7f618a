"""kill -9 of writing processes at random moments: nothing reported durable is lost; the log resumes.

Writers are forked from a pre-imported server (so 100+ processes cost milliseconds each), run several at
a time against the same log, and are SIGKILLed after a random lifetime: during open, mid-batch, mid-seal,
mid-spool or mid-flush.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from ledger_helpers import open_log

KILLS = 100
CONCURRENCY = 4
HERE = Path(__file__).parent


def _durable_reports(out_dir: Path) -> tuple[set[str], int]:
    ids: set[str] = set()
    max_size = 0
    for f in out_dir.glob("*.txt"):
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) < 3 or parts[0] != "D":
                continue  # a torn line cannot happen (one write each), but never trust it as a report
            max_size = max(max_size, int(parts[1]))
            ids.update(parts[2:])
    return ids, max_size


def test_kill_9_writers_loses_nothing_durable(store_url: str, tmp_path: Path) -> None:
    """100 SIGKILLs of writers sharing one log: every flushed record survives, verify passes, it resumes."""
    rng = random.Random(2024)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with open_log(store_url, tmp_path):
        pass  # create the store and keys before the writers race for them
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent.parent), str(HERE)])}
    env.pop("SOC2AI_CONFIG", None)
    env.pop("SOC2AI_STORE", None)
    server = subprocess.Popen([sys.executable, str(HERE / "ledger_crash_writer.py"), store_url, str(tmp_path),
                               str(out_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert server.stdin is not None and server.stdout is not None
    alive: dict[int, float] = {}
    kills = 0
    spawned = 0
    try:
        while kills < KILLS:
            while len(alive) + kills < KILLS and len(alive) < CONCURRENCY:
                server.stdin.write(f"spawn {spawned}\n")
                server.stdin.flush()
                pid = int(server.stdout.readline())
                spawned += 1
                alive[pid] = time.monotonic() + rng.uniform(0.0, 0.9)
            pid, deadline = min(alive.items(), key=lambda kv: kv[1])
            time.sleep(max(0.0, deadline - time.monotonic()))
            os.kill(pid, signal.SIGKILL)
            del alive[pid]
            kills += 1
    finally:
        for pid in alive:
            os.kill(pid, signal.SIGKILL)
        server.stdin.close()
        server.wait(timeout=30)
        server.stdout.close()
    time.sleep(0.2)  # let the kernel finish tearing the killed processes down (locks, sockets)

    durable, max_size = _durable_reports(out_dir)
    reporting = sum(1 for f in out_dir.glob("*.txt") if f.stat().st_size)
    print(f"{kills} kills, {reporting} writers reported durable batches, {len(durable)} durable records")
    assert len(durable) > 200 and reporting > KILLS // 4, "the writers should make real progress between kills"
    with open_log(store_url, tmp_path) as log:  # the next start adopts orphan spools and resumes
        log.flush(timeout=30)
        present = log.store.existing_ids(sorted(durable))
        missing = durable - present
        assert not missing, f"{len(missing)} records reported durable are missing, e.g. {sorted(missing)[:3]}"
        rep = log.verify()
        assert rep.size >= max_size and rep.size >= len(durable)
        rid = log.log_inference(user_id="after", model_id="m", prompt="p", response="r")
        assert log.flush() == rep.size + 1 and log.find(rid) == rep.size
        st = log.stats()
        assert st["spool_pending"] == 0, st
    with open_log(store_url, tmp_path) as log:
        assert log.verify().size == rep.size + 1
