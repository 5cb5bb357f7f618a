"""Images, audio and files: the scanners read text only, so a request carrying them is refused by default
(the ``media`` policy), and forwarded with a mark in the audit record when the deployer says so."""

from __future__ import annotations

import openai
import pytest

from soc2ai.gateway.app import create_app
from soc2ai.testing.gateway import Harness, inference_records
from soc2ai.testing.server import serve_in_thread

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
MESSAGES = [{"role": "user", "content": [{"type": "text", "text": "What does this screenshot say?"}, IMAGE]}]


def test_media_refused_by_default_and_recorded(env: Harness) -> None:
    """With the default scanners an image part gets a 400 in OpenAI's error shape, nothing goes upstream,
    and the refusal is one record that names the part type (not its content)."""
    cfg = env.config()
    log = env.log(cfg)
    app = create_app(cfg, log=log, keys=env.keys(cfg, log))  # default soc2ai.scan pipeline
    secret, _ = app.state.gateway.keys.create(role="inference", user_id="u")
    with serve_in_thread(app) as url, openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as exc:
            client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        ok = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    err = exc.value.body
    assert isinstance(err, dict) and err["code"] == "content_policy_violation"
    assert "MEDIA_IMAGE" in err["message"] and 'media = "flag"' in err["message"]
    assert ok.choices[0].message.content and len(env.up.calls) == 1  # text-only requests are unaffected
    refused = inference_records(log)[0]
    assert refused["status"] == 400 and refused["flagged"] is True
    assert {"stage": "pre", "scanner": "media", "decision": "block", "types": ["MEDIA_IMAGE"]} in refused["scans"]
    assert "iVBORw0KGgo" not in str(refused)


def test_media_flag_forwards_and_marks_the_record(env: Harness) -> None:
    """``[scan.policy.pre] media = "flag"``: the image is sent as it is, text parts are still screened
    (a secret beside it is redacted), and the record says which part types went unscreened."""
    cfg = env.config(tables='[scan.policy.pre]\nmedia = "flag"')
    log = env.log(cfg)
    app = create_app(cfg, log=log, keys=env.keys(cfg, log))
    secret, _ = app.state.gateway.keys.create(role="inference", user_id="u")
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD"
    audio = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": f"use {key}"}, IMAGE, audio]}]
    with serve_in_thread(app) as url, openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0) as client:
        r = client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
    assert r.choices[0].message.content
    sent = env.up.calls[0]["messages"][0]["content"]
    assert sent[1] == IMAGE and sent[2] == audio and key not in sent[0]["text"]
    rec = inference_records(log)[0]
    assert rec["status"] == 200 and rec["flagged"] is True
    media = [s for s in rec["scans"] if s["scanner"] == "media"]
    assert media == [{"stage": "pre", "scanner": "media", "decision": "flag", "types": ["MEDIA_AUDIO", "MEDIA_IMAGE"]}]


def test_media_policy_redact_is_a_config_error(env: Harness) -> None:
    """A part cannot be partly removed: ``media = "redact"`` is refused when the config is read, naming
    the field."""
    from soc2ai.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        env.config(tables='[scan.policy.pre]\nmedia = "redact"')
    assert exc.value.field is not None and "policy.pre" in exc.value.field
    assert "cannot be redacted" in str(exc.value)
