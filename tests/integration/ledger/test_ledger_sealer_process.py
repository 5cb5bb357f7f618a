"""``[ledger] sealer = "process"``: the same promises as the sealer thread, plus surviving the parent's death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from ledger_helpers import TcpProxy, config_for, ensure_keys, open_log
from soc2ai.ledger import AuditLog

ROOT = Path(__file__).resolve().parents[3]


def running(pid: int) -> bool:
    """True while ``pid`` runs (an exited orphan may linger as a zombie until init reaps it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_records_sealed_in_order_by_the_child(store_url: str, tmp_path: Path) -> None:
    with open_log(store_url, tmp_path, sealer="process") as log:
        ids = [log.log_inference(user_id=f"u{k % 5}", model_id="m", prompt=f"p{k}", response="r", latency_us=k)
               for k in range(3000)]
        assert log.flush(timeout=60) == 3000
        st = log.stats()
        assert st["sealer"] == "process" and st["sealer_pid"] != os.getpid()
        assert st["size"] == 3000 and st["caller_errors"] == 0 and st["sealer_restarts"] == 0
        assert st["seal_latency_us"]["samples"] == 3000
        assert [e.id for e in log.entries()] == ids
        assert log.verify().size == 3000
        # The keyed hash computed in this process is what `match` recomputes from the stored subject key.
        assert log.match(1234, prompt="p1234", response="r").ok


def test_many_caller_threads_and_bursts(store_url: str, tmp_path: Path) -> None:
    """Concurrent callers and a burst beyond queue_max: nothing dropped, all in the log, verify passes."""
    with open_log(store_url, tmp_path, sealer="process", queue_max=200, batch_max=64) as log:
        def work(t: int) -> None:
            for k in range(1500):
                log.log_inference(user_id=f"t{t}", model_id="m", prompt=f"{t}-{k}", response="r",
                                  request_id=f"t{t}-{k:05d}")

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert log.flush(timeout=120) == 6000
        st = log.stats()
        assert st["caller_errors"] == 0 and st["spool_pending"] == 0
        ids = [e.id for e in log.entries()]
        for t in range(4):  # each caller's records keep their order
            mine = [i for i in ids if i.startswith(f"t{t}-")]
            assert mine == [f"t{t}-{k:05d}" for k in range(1500)]
        assert log.verify().size == 6000


def test_child_killed_is_restarted_and_the_log_continues(store_url: str, tmp_path: Path) -> None:
    with open_log(store_url, tmp_path, sealer="process") as log:
        for k in range(100):
            log.log_inference(user_id="u", model_id="m", prompt=f"a{k}", response="r")
        assert log.flush(timeout=30) == 100
        first = log.stats()["sealer_pid"]
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while log._sealer is not None and getattr(log._sealer, "pid", first) == first:
            assert time.monotonic() < deadline, "no new sealer process"
            time.sleep(0.05)
        for k in range(100):
            log.log_inference(user_id="u", model_id="m", prompt=f"b{k}", response="r")
        assert log.flush(timeout=30) == 200
        st = log.stats()
        assert st["sealer_restarts"] == 1 and st["sealer_pid"] != first
        assert "restarted" in st["last_error"]
        assert log.verify().size == 200


def test_parent_killed_with_9_child_seals_what_it_was_handed(store_url: str, tmp_path: Path) -> None:
    """Records handed to the child are committed even though the writer died before any flush()."""
    ensure_keys(tmp_path)
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from ledger_helpers import config_for
        from pathlib import Path
        from soc2ai.ledger import AuditLog
        log = AuditLog.open(config_for({store_url!r}, Path({str(tmp_path)!r})), sealer="process")
        print(log._sealer.pid, flush=True)
        for k in range(2000):
            log.log_inference(user_id="u" + str(k % 3), model_id="m", prompt=str(k), response="r",
                              request_id=f"r-{{k:05d}}")
        time.sleep(0.5)  # the sender thread hands frames over within ~1 ms; then wait to be killed
        print("sent", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    assert proc.stdout.readline().strip() == "sent"
    proc.kill()
    proc.wait()
    proc.stdout.close()
    deadline = time.monotonic() + 60
    while running(child):  # the orphaned child drains, commits and exits on its own
        assert time.monotonic() < deadline, "sealer child did not finish after its parent died"
        time.sleep(0.05)
    log = AuditLog.open(config_for(store_url, tmp_path), read_only=True)
    try:
        assert [e.id for e in log.entries()] == [f"r-{k:05d}" for k in range(2000)]
        assert log.verify().size == 2000
    finally:
        log.close()


def test_closing_stops_the_child(store_url: str, tmp_path: Path) -> None:
    log = open_log(store_url, tmp_path, sealer="process")
    pid = log.stats()["sealer_pid"]
    log.log_inference(user_id="u", model_id="m", prompt="p", response="r")
    log.close()
    deadline = time.monotonic() + 10
    while running(pid):
        assert time.monotonic() < deadline, "sealer child still running after close()"
        time.sleep(0.05)
    with open_log(store_url, tmp_path) as again:
        assert again.size() == 1


@pytest.mark.postgres
def test_store_outage_in_the_child_spools_then_replays(proxied_pg: tuple[str, TcpProxy], tmp_path: Path) -> None:
    """PostgreSQL unreachable while records keep coming: the child spools, replays in order afterwards."""
    url, proxy = proxied_pg
    with open_log(url, tmp_path, sealer="process") as log:
        ids = [log.log_inference(user_id="u", model_id="m", prompt=f"a{k}", response="r", request_id=f"a-{k:04d}")
               for k in range(30)]
        assert log.flush(timeout=30) == 30
        proxy.down()
        for k in range(200):
            ids.append(log.log_inference(user_id="u", model_id="m", prompt=f"b{k}", response="r",
                                         request_id=f"b-{k:04d}"))
            if k % 10 == 9:
                time.sleep(0.005)
        log.flush(timeout=0.5)
        snap = log._sealer.snapshot() if log._sealer is not None else {}
        assert snap["degraded"] and snap["spool_pending"] > 0 and log.caller_errors == 0
        proxy.up()
        assert log.flush(timeout=30) == 230
        snap = log._sealer.snapshot() if log._sealer is not None else {}
        assert not snap["degraded"] and snap["spool_pending"] == 0 and snap["replayed_total"] >= 200
        assert [e.id for e in log.entries()] == ids
        assert log.verify().size == 230


def test_close_leaves_no_helper_thread(tmp_path: Path) -> None:
    """After close() only the threads that were there before remain (verify may then fork workers)."""
    before = {t.ident for t in threading.enumerate()}
    log = open_log(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, sealer="process")
    log.log_inference(user_id="u", model_id="m", prompt="p", response="r")
    log.close()
    assert {t.ident for t in threading.enumerate()} <= before
