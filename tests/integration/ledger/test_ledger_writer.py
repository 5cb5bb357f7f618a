"""The writer's promises to callers: never block or raise, drain at exit, divert bursts, durable = sealed."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ledger_helpers import config_for, open_log, sqlite_url
from soc2ai.errors import RollbackError, VerificationError
from soc2ai.ledger import AuditLog

HERE = Path(__file__).parent


def test_burst_over_queue_bound_is_spooled_in_order(store_url: str, tmp_path: Path) -> None:
    """A burst far beyond queue_max is diverted to the spool (nothing dropped) and ends up in order."""
    with open_log(store_url, tmp_path, queue_max=100, batch_max=16, batch_ms=5) as log:
        ids = [log.log_inference(user_id=f"u{k % 4}", model_id="m", prompt=f"p{k}", response="r",
                                 request_id=f"b-{k:05d}") for k in range(4000)]
        log.flush(timeout=60)
        st = log.stats()
        assert st["spooled_total"] > 0 and st["spool_pending"] == 0 and st["caller_errors"] == 0
        assert st["replayed_total"] == st["spooled_total"]
        assert [e.id for e in log.entries()] == ids
        assert log.verify().size == 4000


def test_caller_cost_does_not_wait_for_the_store(store_url: str, tmp_path: Path) -> None:
    """log_inference returns in far less time than a seal takes (it never waits on I/O)."""
    with open_log(store_url, tmp_path) as log:
        t0 = time.perf_counter()
        for k in range(2000):
            log.log_inference(user_id="u", model_id="m", prompt="x" * 2048, response="y" * 2048, latency_us=k)
        per_call = (time.perf_counter() - t0) / 2000
        log.flush(timeout=30)
        assert per_call < 0.002, f"{per_call * 1e6:.0f} us per call"
        assert log.size() == 2000


def test_flush_reports_durable_size(store_url: str, tmp_path: Path) -> None:
    """flush() returns the durable size; every record before it is readable and under a signed checkpoint."""
    with open_log(store_url, tmp_path) as log:
        assert log.flush() == 0
        rids = [log.log_inference(user_id="u", model_id="m", prompt="p", response="r") for _ in range(37)]
        size = log.flush()
        assert size == 37 == log.checkpoint().size
        assert [log.find(r) for r in rids] == list(range(37))


def test_records_drained_at_interpreter_exit(store_url: str, tmp_path: Path) -> None:
    """A process that logs and exits without flush() or close() still gets every record sealed."""
    with open_log(store_url, tmp_path):
        pass
    script = ("import sys\nfrom pathlib import Path\nfrom ledger_helpers import config_for\n"
              "from soc2ai.ledger import AuditLog\n"
              "log = AuditLog.open(config_for(sys.argv[1], Path(sys.argv[2])))\n"
              "for k in range(300):\n"
              "    log.log_inference(user_id='u', model_id='m', prompt=str(k), response='r', request_id=f'x{k}')\n")
    env = {**os.environ, "PYTHONPATH": str(HERE.parent.parent)}
    env.pop("SOC2AI_CONFIG", None)
    res = subprocess.run([sys.executable, "-c", script, store_url, str(tmp_path)], capture_output=True,
                         text=True, env=env, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    with AuditLog.open(config_for(store_url, tmp_path), read_only=True) as ro:
        assert [e.id for e in ro.entries()] == [f"x{k}" for k in range(300)]
        ro.verify()


def test_read_only_log_never_raises_on_write(store_url: str, tmp_path: Path) -> None:
    """A read-only log refuses writes by counting a caller error, not by raising."""
    with open_log(store_url, tmp_path):
        pass
    with AuditLog.open(config_for(store_url, tmp_path), read_only=True) as ro:
        ro.log_inference(user_id="u", model_id="m", prompt="p", response="r")
        assert ro.caller_errors == 1 and ro.size() == 0


def test_sha256_mode_hashes_are_plain_digests(store_url: str, tmp_path: Path) -> None:
    """hash_mode='sha256' stores bare SHA-256 digests (documented weaker mode) and match still works."""
    with open_log(store_url, tmp_path, hash_mode="sha256") as log:
        log.log_inference(user_id="u", model_id="m", prompt="hello", response="world")
        log.flush()
        body = log.entry(0).body
        assert body is not None and body["hash_mode"] == "sha256"
        assert body["input_hash"] == hashlib.sha256(b"hello").hexdigest()
        assert log.match(0, prompt="hello", response="world").ok


def test_retained_payload_round_trip_and_prune(store_url: str, tmp_path: Path) -> None:
    """With retain_payloads, prompt/response are recoverable by an authorised reader until pruned."""
    with open_log(store_url, tmp_path, retain_payloads=True) as log:
        log.log_inference(user_id="u", model_id="m", prompt=[{"role": "user", "content": "hi"}], response="yo",
                          ts=100)
        log.log_inference(user_id="u", model_id="m", prompt="later", response="r", ts=200)
        log.flush()
        assert log.payload(0) == {"prompt": [{"role": "user", "content": "hi"}], "response": "yo"}
        assert log.match(0, prompt=[{"role": "user", "content": "hi"}]).ok
        log.prune(150)
        assert log.payload(1)["prompt"] == "later"
        try:
            log.payload(0)
        except Exception as exc:
            assert "payload" in str(exc)
        else:
            raise AssertionError("a pruned record's payload must be gone")


def test_many_caller_threads(store_url: str, tmp_path: Path) -> None:
    """Eight threads logging at once: every record lands, each user gets exactly one subject key."""

    def work(t: int) -> None:
        for k in range(400):
            log.log_inference(user_id=f"user-{k % 40}", model_id="m", prompt=f"{t}-{k}", response="r",
                              request_id=f"t{t}-{k:04d}")

    with open_log(store_url, tmp_path) as log:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        log.flush(timeout=30)
        assert log.caller_errors == 0 and log.verify().size == 3200
        ids = [e.id for e in log.entries()]
        for t in range(8):
            assert [i for i in ids if i.startswith(f"t{t}-")] == [f"t{t}-{k:04d}" for k in range(400)]
        assert all(len(log.subject_refs(f"user-{u}")) == 1 for u in range(40))


def test_replaced_empty_database_refused(tmp_path: Path) -> None:
    """Deleting the database so the writer starts a fresh, empty log is refused like any other rollback."""
    url = sqlite_url(tmp_path)
    with open_log(url, tmp_path) as log:
        log.log_inference(user_id="u", model_id="m", prompt="p", response="r")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 'a.db'}{suffix}").unlink(missing_ok=True)
    with pytest.raises(RollbackError):
        open_log(url, tmp_path).close()


def test_reused_request_id_is_not_silently_dropped(store_url: str, tmp_path: Path) -> None:
    """A retried call logged with the same request id is kept or reported, never silently discarded."""
    with open_log(store_url, tmp_path) as log:
        log.log_inference(user_id="u", model_id="m", prompt="p", response="first", request_id="req-1")
        log.flush()
        log.log_inference(user_id="u", model_id="m", prompt="p", response="retry", request_id="req-1")
        log.log_inference(user_id="u", model_id="m", prompt="p", response="other", request_id="req-2")
        log.flush(timeout=5)
        assert log.find("req-2") is not None
        assert log.size() == 3 or log.stats()["caller_errors"] == 1


def test_forget_destroys_keys_minted_by_every_process(store_url: str, tmp_path: Path) -> None:
    """A subject seen by two writer sessions has two keys; forget destroys both and counts all records."""
    for k in range(2):
        with open_log(store_url, tmp_path) as log:
            log.log_inference(user_id="carol", model_id="m", prompt=f"p{k}", response="r")
    with open_log(store_url, tmp_path) as log:
        refs = log.subject_refs("carol")
        assert len(refs) == 2
        res = log.forget("carol")
        assert sorted(res.subject_refs) == sorted(refs) and res.records == 2
        for i in (0, 1):
            with pytest.raises(VerificationError, match="destroyed"):
                log.match(i, prompt=f"p{i}")
        assert log.verify().size == 3


@pytest.mark.parametrize("sealer", ["thread", "process"])
def test_forked_child_gets_its_own_sealer(store_url: str, tmp_path: Path, sealer: str) -> None:
    """A log opened before fork() (gunicorn --preload, prefork pools): records written in the child are
    sealed by the child's own sealer, the parent keeps logging, and a child that never writes exits at once."""
    with open_log(store_url, tmp_path, sealer=sealer) as log:
        log.log_inference(user_id="p", model_id="m", prompt="before", response="r", request_id="parent-0")
        assert log.flush(timeout=30) == 1
        pid = os.fork()
        if pid == 0:  # the child: write, flush, report through the exit status
            code = 1
            try:
                for k in range(50):
                    log.log_inference(user_id="c", model_id="m", prompt=f"c{k}", response="r",
                                      request_id=f"child-{k:03d}")
                code = 0 if log.flush(timeout=30) >= 51 else 2
                log.close()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        quiet = os.fork()
        if quiet == 0:  # never writes; close() (run at exit) must not wait on the parent's sealer
            t0 = time.monotonic()
            log.close()
            os._exit(0 if time.monotonic() - t0 < 1.0 else 3)
        _, status = os.waitpid(quiet, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        log.log_inference(user_id="p", model_id="m", prompt="after", response="r", request_id="parent-1")
        assert log.flush(timeout=30) == 52
        ids = [e.id for e in log.entries()]
        assert ids[0] == "parent-0" and ids[-1] == "parent-1"
        assert sorted(i for i in ids if i.startswith("child-")) == [f"child-{k:03d}" for k in range(50)]
        assert log.verify().size == 52


def test_repeated_prune_of_all_kinds_still_verifies(store_url: str, tmp_path: Path) -> None:
    """A later prune of every kind keeps the earlier retention receipts (verify needs their counts to
    account for the missing bodies), so the log still verifies after any number of prunes."""
    with open_log(store_url, tmp_path) as log:
        for rnd in range(3):
            for k in range(10):
                log.log_inference(user_id="u", model_id="m", prompt="p", response="r", request_id=f"{rnd}-{k}")
            log.flush()
            assert log.prune(time.time_ns() // 1000 + 1) == 10
        report = log.verify()
        assert report.size == 33 and report.pruned == 30 and report.kinds["retention"] == 3
        assert all(e.body is not None for e in log.entries() if e.kind == "retention")
