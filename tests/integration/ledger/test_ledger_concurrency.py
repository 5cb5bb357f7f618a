"""Several writer processes sharing one log, and a store that is stuck rather than down."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from ledger_helpers import open_log

HERE = Path(__file__).parent
_WRITER = """
import sys
from pathlib import Path
from ledger_helpers import config_for
from soc2ai.ledger import AuditLog
url, base, tag, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
with AuditLog.open(config_for(url, base)) as log:
    for k in range(n):
        log.log_inference(user_id=f"{tag}-user-{k % 5}", model_id="m", prompt=f"{tag}{k}", response="r",
                          request_id=f"{tag}-{k:05d}")
        if k % 25 == 24:
            log.flush()
    size = log.flush()
    print(size, log.stats()["caller_errors"], log.stats()["spooled_total"])
"""


def test_two_writer_processes_share_one_log(store_url: str, tmp_path: Path) -> None:
    """Two processes appending at once: contiguous indexes, all records in each writer's order, verified."""
    n = 600
    with open_log(store_url, tmp_path):
        pass
    env = {**os.environ, "PYTHONPATH": str(HERE.parent.parent)}
    env.pop("SOC2AI_CONFIG", None)
    env.pop("SOC2AI_STORE", None)
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, store_url, str(tmp_path), tag, str(n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for tag in ("A", "B")]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.split()[1] == "0"  # no caller errors
    with open_log(store_url, tmp_path) as log:
        rep = log.verify()
        assert rep.size == 2 * n
        entries = list(log.entries())
        assert [e.idx for e in entries] == list(range(2 * n))
        for tag in ("A", "B"):
            mine = [e.id for e in entries if e.id.startswith(tag)]
            assert mine == [f"{tag}-{k:05d}" for k in range(n)]
        first_b = next(i for i, e in enumerate(entries) if e.id.startswith("B"))
        last_a = max(i for i, e in enumerate(entries) if e.id.startswith("A"))
        assert first_b < last_a, "the writers should really have interleaved"


def _hold_store_lock(url: str, seconds: float, held: threading.Event) -> None:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()
        return
    with psycopg.connect(url) as pg:
        pg.execute("LOCK TABLE ledger_head IN ACCESS EXCLUSIVE MODE")
        held.set()
        time.sleep(seconds)
        pg.rollback()


def test_stuck_store_diverts_to_spool(store_url: str, tmp_path: Path) -> None:
    """While another session holds the store's write lock, new records are spooled (acknowledged) promptly."""
    with open_log(store_url, tmp_path) as log:
        log.log_inference(user_id="u", model_id="m", prompt="p", response="r")
        log.flush()
        held = threading.Event()
        t = threading.Thread(target=_hold_store_lock, args=(store_url, 4.0, held), daemon=True)
        t.start()
        held.wait(5)
        for k in range(50):
            log.log_inference(user_id="u", model_id="m", prompt=f"p{k}", response="r")
        time.sleep(2.0)
        s = log._sealer
        spooled = s.spool.spooled_total if s is not None else 0
        t.join()
        log.flush(timeout=10)
        assert spooled == 50
