"""OpenAIModerator against a local fake moderation server (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from soc2ai.scan import Action, Stage, build_pipeline
from soc2ai.scan.moderation_openai import OpenAIModerator
from soc2ai.scan.settings import ScanSettings


class _Handler(BaseHTTPRequestHandler):
    mode = "ok"
    seen: list[dict[str, Any]] = []  # noqa: RUF012 (test double state)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if _Handler.mode == "error":
            self.send_response(503)
            self.end_headers()
            return
        if _Handler.mode == "garbage":
            payload = b"{not json"
        else:
            violent = "kill" in body["input"]
            payload = json.dumps({"id": "modr-1", "model": body["model"], "results": [{
                "flagged": violent, "categories": {"violence": violent, "hate": False},
                "category_scores": {"violence": 0.97 if violent else 0.01, "hate": 0.0}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def server() -> Iterator[str]:
    """A fake OpenAI moderation endpoint on an ephemeral local port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    _Handler.mode = "ok"
    _Handler.seen.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_flagged_and_clean(server: str) -> None:
    """Responses map onto the categories; the key and model are sent."""
    mod = OpenAIModerator(base_url=server, api_key="sk-test", model="omni-moderation-latest")
    try:
        res = mod.moderate("I will kill it")
        assert res.flagged and res.categories["violence"] and res.scores["violence"] == pytest.approx(0.97)
        assert not mod.moderate("hello").flagged
    finally:
        mod.close()
    assert _Handler.seen[0]["path"] == "/v1/moderations" and _Handler.seen[0]["auth"] == "Bearer sk-test"
    assert _Handler.seen[0]["body"]["model"] == "omni-moderation-latest"


@pytest.mark.parametrize("mode", ["error", "garbage"])
def test_failures_are_reported_not_raised(server: str, mode: str) -> None:
    """HTTP errors and malformed bodies come back in ``error``."""
    _Handler.mode = mode
    mod = OpenAIModerator(base_url=server)
    try:
        res = mod.moderate("x")
    finally:
        mod.close()
    assert res.error and not res.flagged


def test_unreachable_upstream() -> None:
    """A closed port is an error result, quickly."""
    mod = OpenAIModerator(base_url="http://127.0.0.1:9/v1", timeout_s=0.5)
    try:
        assert mod.moderate("x").error
    finally:
        mod.close()


def test_pipeline_uses_openai_and_fails_closed(server: str) -> None:
    """In the pipeline, a flag from the provider blocks; a provider failure blocks (closed) or flags (open)."""
    settings = ScanSettings.model_validate({"injection": False, "moderation": {"provider": "openai",
                                                                              "base_url": server}})
    pipe = build_pipeline(settings, moderation_api_key="sk-test")
    assert pipe.run("I will kill it", Stage.POST).action is Action.BLOCK
    assert pipe.run("hello", Stage.POST).action is Action.ALLOW
    _Handler.mode = "error"
    assert pipe.run("hello", Stage.POST).action is Action.BLOCK
    open_settings = settings.model_copy(update={"moderation": settings.moderation.model_copy(
        update={"on_error": "open"})})
    assert build_pipeline(open_settings).run("hello", Stage.POST).action is Action.FLAG


async def test_arun_offloads_remote_moderation(server: str) -> None:
    """With the OpenAI moderator the async entry point runs in a worker thread and still decides."""
    settings = ScanSettings.model_validate({"injection": False, "moderation": {"provider": "openai",
                                                                              "base_url": server}})
    pipe = build_pipeline(settings)
    assert (await pipe.arun("I will kill it", Stage.POST)).action is Action.BLOCK
