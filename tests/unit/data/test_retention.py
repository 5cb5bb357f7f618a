"""Retention runs across connectors and the ledger, with a receipt; data check finds unlabelled data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson

from soc2ai.config import Config
from soc2ai.data.retention import census, run_retention
from soc2ai.data.runtime import open_workspace

STORES = '[[data.connectors]]\nname = "train"\ntype = "dataset"\npath = "datasets"\n'


def test_run_deletes_expired_and_appends_receipt(tmp_path: Path, make_config: Callable[[str], Config]) -> None:
    """Expired rows go, old ledger bodies are pruned, one RetentionRecord describes the run."""
    cfg = make_config(STORES + "[data.retention]\nledger_days = 90\n")
    (tmp_path / "datasets").mkdir()
    rows = [{"id": 1, "soc2ai_label": "restricted", "soc2ai_expires_at": 50},
            {"id": 2, "soc2ai_label": "internal", "soc2ai_expires_at": 10**12},
            {"id": 3, "text": "no label"}]
    (tmp_path / "datasets" / "t.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    now = 200 * 86_400
    with open_workspace(cfg, write_log=True) as ws:
        assert ws.log is not None
        ws.log.log_inference(user_id="u", model_id="m", prompt="p", response="r", latency_us=1, input_tokens=1,
                             output_tokens=1)
        ws.log.flush()
        dry = run_retention(ws.opened, cfg.data.retention, log=ws.log, dry_run=True, clock=lambda: now)
        assert dry.counts["train"] == {"restricted": 1} and dry.receipt_id is None
        # The ledger record is from "now" in real time, far after the bench clock: nothing to prune.
        assert dry.counts["ledger"] == {}
        rep = run_retention(ws.opened, cfg.data.retention, log=ws.log, dry_run=False, clock=lambda: now)
        assert rep.total == 1 and rep.receipt_id is not None and not rep.errors
        far = run_retention(ws.opened, cfg.data.retention, log=ws.log, dry_run=False,
                            clock=lambda: 4_000_000_000)
        assert far.counts["ledger"] == {"inference": 1}
        bodies = [e.body for e in ws.log.entries(kind="retention") if e.body]
        check = census(ws.opened)
    ours = [b for b in bodies if b["scope"].startswith("data:")]
    assert ours[0]["count"] == 1 and ours[0]["attrs"]["by_store"]["train"] == {"restricted": 1}
    assert ours[0]["attrs"]["ledger_days"] == 90
    assert any(b["action"] == "prune" and b["count"] == 1 for b in bodies)
    kept = [orjson.loads(x)["id"] for x in (tmp_path / "datasets" / "t.jsonl").read_bytes().splitlines()]
    assert kept == [2, 3]
    train = next(c for c in check.census if c.connector == "train")
    assert (train.total, train.unlabelled) == (2, 1) and check.unlabelled == 1
