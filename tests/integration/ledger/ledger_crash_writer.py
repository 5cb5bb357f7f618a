"""A fork server for the kill -9 test: imports soc2ai once, then forks writer processes on request.

Usage: ``python ledger_crash_writer.py URL BASE OUT_DIR``; each stdin line ``spawn SEED`` forks a child
and prints its pid. A child opens the log and writes small batches forever; after each ``flush()`` that
returned before its timeout it appends ``D <durable size> <request ids...>`` to ``OUT_DIR/<pid>.txt``
(one write per line, so a SIGKILL never leaves a half-reported batch).
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from pathlib import Path

from ledger_helpers import config_for
from soc2ai.ledger import AuditLog
from soc2ai.ledger.records import AccessRecord


def child(url: str, base: Path, out_dir: Path, seed: int) -> None:
    rng = random.Random(seed)
    pid = os.getpid()
    fd = os.open(out_dir / f"{pid}.txt", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    log = AuditLog.open(config_for(url, base))
    k = 0
    while True:
        ids = []
        for j in range(rng.randint(1, 40)):
            rid = f"{pid}-{k}-{j}"
            if rng.random() < 0.9:
                log.log_inference(user_id=f"user-{rng.randrange(7)}", model_id="m", prompt=f"p{k}.{j}",
                                  response="r", latency_us=j, request_id=rid)
            else:
                log.append(AccessRecord(id=rid, action="chat", decision="allow", user_id="user-1"))
            ids.append(rid)
        t0 = time.monotonic()
        size = log.flush(timeout=5.0)
        if time.monotonic() - t0 < 4.5:
            os.write(fd, f"D {size} {' '.join(ids)}\n".encode())
        k += 1


def main() -> None:
    url, base, out_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] != "spawn":
            break
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                child(url, base, out_dir, int(cmd[1]))
            finally:
                os._exit(0)
        print(pid, flush=True)


if __name__ == "__main__":
    main()
