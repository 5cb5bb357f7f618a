"""Provider kinds: Anthropic (a second gateway's /v1/messages as the upstream) and Azure OpenAI URLs/headers."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from starlette.testclient import TestClient

from soc2ai.config import parse_config
from soc2ai.testing.gateway import Harness, inference_records
from soc2ai.testing.server import serve_in_thread

CHAT = {"model": "claude", "messages": [{"role": "system", "content": "be brief"},
                                        {"role": "user", "content": "hello"}], "max_tokens": 20}


def _config(tmp: Path, provider_toml: str, chain: str) -> str:
    return (f'[ledger]\nstore = "sqlite:///{tmp}/a.db"\nkeys_dir = "{tmp}/keys"\nspool_dir = "{tmp}/spool"\n'
            f'[gateway]\nkeys_db = "{tmp}/keys.db"\n{provider_toml}\n[gateway.models]\nclaude = {chain}\n')


def test_anthropic_provider_round_trip(env: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chat requests reach an Anthropic-format upstream (x-api-key, /v1/messages) and come back as chat."""
    inner_app, _inner_log, inner_keys = env.app(env.config())
    inner_secret, _ = inner_keys.create(role="inference", user_id="outer-gateway")
    env.up.set(reply="short answer")
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", inner_secret)
    outer = tmp_path / "outer"
    outer.mkdir()
    with serve_in_thread(inner_app) as inner_url:
        text = _config(outer, f'[gateway.providers.claude]\nkind = "anthropic"\nbase_url = "{inner_url}"\n'
                              'api_key_env = "TEST_ANTHROPIC_KEY"', '["claude:m"]')
        cfg = parse_config(text, root=outer)
        h = Harness(outer, env.up, env.backup)
        app, log, keys = h.app(cfg)
        secret, _ = keys.create(role="inference", user_id="u")
        with serve_in_thread(app) as url, openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0) as c:
            r = c.chat.completions.create(**CHAT)  # type: ignore[call-overload]
            streamed = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
                **CHAT, stream=True) if ch.choices)  # type: ignore[call-overload]
    assert r.choices[0].message.content == "short answer" and r.choices[0].finish_reason == "stop"
    assert r.usage is not None and r.usage.completion_tokens > 0
    assert streamed == "short answer"
    recs = inference_records(log)
    assert [x["provider"] for x in recs] == ["claude", "claude"]
    assert all(x["fallback_path"] == ["claude:m=200"] for x in recs)
    # The system message travelled as Anthropic's top-level system prompt and was turned back into one.
    assert env.up.calls[-1]["model"] == "model-a"
    for h_log in h.logs:
        h_log.close()


def test_azure_provider_url_and_header(env: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Azure targets use /openai/deployments/<model>/chat/completions?api-version= and the api-key header."""
    monkeypatch.setenv("TEST_AZURE_KEY", "azure-secret")
    seen: list[tuple[str, str | None]] = []

    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("api-key")))
        return httpx.Response(200, json={"id": "x", "object": "chat.completion", "model": "gpt-4o",
                                         "choices": [{"index": 0, "finish_reason": "stop",
                                                      "message": {"role": "assistant", "content": "hi"}}]})

    text = _config(tmp_path, '[gateway.providers.az]\nkind = "azure"\nbase_url = "https://res.openai.azure.com"\n'
                             'api_key_env = "TEST_AZURE_KEY"\napi_version = "2024-10-21"', '["az:my-deploy"]')
    cfg = parse_config(text, root=tmp_path)
    h = Harness(tmp_path, env.up, env.backup)
    app, log, keys = h.app(cfg, transport=httpx.MockTransport(handler))
    secret, _ = keys.create(role="inference", user_id="u")
    with TestClient(app) as client:
        r = client.post("/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {secret}"})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "hi"
    assert seen == [("https://res.openai.azure.com/openai/deployments/my-deploy/chat/completions"
                     "?api-version=2024-10-21", "azure-secret")]
    assert inference_records(log)[0]["tokens_estimated"] is True  # no usage from upstream: estimated
    for h_log in h.logs:
        h_log.close()
