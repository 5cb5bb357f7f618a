"""End to end with the real CLI: keys create, soc2ai gateway, the openai client, log tail and prove."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai

from soc2ai.ledger.keys import generate_keys
from soc2ai.testing.gateway import gateway_toml
from soc2ai.testing.server import free_port
from soc2ai.testing.upstream import FakeUpstream


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "soc2ai", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "SOC2AI_STORE": "", "SOC2AI_CONFIG": ""}, check=False)


def test_new_user_flow(tmp_path: Path) -> None:
    """keys create -> gateway -> openai client -> the call is in `log tail` with a provable index."""
    with FakeUpstream(name="up") as up:
        (tmp_path / "soc2ai.toml").write_text(
            gateway_toml(tmp_path, {"up": up.url}, {"m": ["up:model-a"]}, gateway="screening = false"))
        generate_keys(tmp_path / "keys", "test")
        created = _cli(tmp_path, "keys", "create", "--role", "inference", "--user", "alice", "--json")
        assert created.returncode == 0, created.stderr
        secret = json.loads(created.stdout)["key"]
        bad = _cli(tmp_path, "keys", "create", "--role", "root", "--user", "x")
        assert bad.returncode == 2
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "soc2ai", "gateway", "--port", str(port)], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ, "SOC2AI_STORE": "", "SOC2AI_CONFIG": ""})
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    assert proc.poll() is None and time.monotonic() < deadline
                    time.sleep(0.1)
            with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=secret, max_retries=0) as client:
                r = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
            assert r.choices[0].message.content == "Hello from the fake upstream."
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
            if proc.stderr:
                proc.stderr.close()
    tail = _cli(tmp_path, "log", "tail", "--kind", "inference", "--json")
    assert tail.returncode == 0, tail.stderr
    rows = json.loads(tail.stdout)
    assert len(rows) == 1
    row = rows[0]
    index = row.get("idx", row.get("index"))
    assert isinstance(index, int)
    proof = _cli(tmp_path, "log", "prove", str(index), "--out", str(tmp_path / "proof.json"))
    assert proof.returncode == 0, proof.stderr
    assert (tmp_path / "proof.json").stat().st_size > 0
    explain = _cli(tmp_path, "gateway", "--explain", "--json")
    assert json.loads(explain.stdout)["models"] == {"m": ["up:model-a"]}
    listed = json.loads(_cli(tmp_path, "keys", "list", "--json").stdout)
    revoked = _cli(tmp_path, "keys", "revoke", listed[0]["id"], "--json")
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["state"] == "revoked"
