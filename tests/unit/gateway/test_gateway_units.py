"""Unit tests: settings validation, sliding-window limits, circuit breaker, key store, formats, explain."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soc2ai.cli.keys import parse_expiry
from soc2ai.config import parse_config
from soc2ai.errors import AuthError, ConfigError, UsageError
from soc2ai.gateway import anthropic_format as af
from soc2ai.gateway.errors import ApiError
from soc2ai.gateway.keys import KeyStore
from soc2ai.gateway.metrics import Metrics
from soc2ai.gateway.ratelimit.interface import WINDOW_US, retry_after
from soc2ai.gateway.ratelimit.memory import MemoryLimiter
from soc2ai.gateway.routing import Breaker, explain, explain_order

PROVIDERS = '[gateway.providers.a]\nbase_url = "http://a/v1"\n[gateway.providers.b]\nkind = "azure"\n' \
            'base_url = "https://b"\n'


def test_settings_valid_chain() -> None:
    """Aliases map to provider:model chains over configured providers."""
    cfg = parse_config(PROVIDERS + '[gateway.models]\nx = ["a:m1", "b:m2"]\n')
    assert explain_order(cfg.gateway, "x") == ["a:m1", "b:m2"]


@pytest.mark.parametrize("text,field", [
    ('[gateway.models]\nx = ["zz:m"]\n', "gateway.models.x.0"),
    ('[gateway.models]\nx = ["a:m1", "nocolon"]\n', "gateway.models.x.1"),
    ('[gateway.models]\nx = []\n', "gateway.models.x"),
    ('[gateway.roles]\nroot = ["*"]\n', "gateway.roles.root"),
    ('[gateway.providers.c]\nbase_url = "ftp://x"\n', "gateway.providers.c.base_url"),
    ('[gateway.cache.ttl_s]\nsecret = 5\n', "gateway.cache.ttl_s.secret"),
    ('[gateway]\nstream_mode = "yolo"\n', "gateway.stream_mode"),
])
def test_settings_errors_name_the_field(text: str, field: str) -> None:
    """Bad gateway config raises ConfigError naming the field."""
    with pytest.raises(ConfigError) as err:
        parse_config(PROVIDERS + text, source="soc2ai.toml")
    assert err.value.field == field


def test_explain_lists_chain_and_rules() -> None:
    """--explain text lists every alias's chain in order with retry rules and breaker parameters."""
    cfg = parse_config(PROVIDERS + '[gateway.models]\nx = ["b:m2", "a:m1"]\n[gateway.breaker]\nfailure_threshold = 7\n')
    text = explain(cfg.gateway)
    assert text.index("1. b:m2") < text.index("2. a:m1")
    assert "7 consecutive failures" in text and "HTTP 429" in text


def test_breaker_state_machine() -> None:
    """closed -> open after N failures -> half-open probe after reset -> closed on success / open on failure."""
    b = Breaker(threshold=2, reset_after_us=100)
    assert b.allow(0) and not b.failure(0) and b.failure(1)
    assert b.state == "open" and not b.allow(50)
    assert b.allow(101) and b.state == "half-open"
    assert not b.allow(102)  # one probe at a time
    assert b.failure(103) and b.state == "open" and not b.allow(150)
    assert b.allow(204)
    b.success()
    assert b.state == "closed" and b.allow(205)


async def test_memory_limiter_counts_and_windows() -> None:
    """Requests beyond the limit are refused until the window slides."""
    lim = MemoryLimiter(requests_per_minute=3, tokens_per_minute=1000)
    t = 10 * WINDOW_US
    assert [(await lim.check("k", 1, t)).allowed for _ in range(4)] == [True, True, True, False]
    d = await lim.check("k", 1, t)
    assert d.limit == "requests" and d.retry_after_s >= 1
    # Two windows later nothing of it is left.
    assert (await lim.check("k", 1, t + 2 * WINDOW_US)).allowed
    assert (await lim.check("other", 1, t)).allowed


@given(prev=st.integers(0, 1000), cur=st.integers(0, 1000), limit=st.integers(1, 1000),
       offset=st.integers(0, WINDOW_US - 1))
def test_retry_after_is_enough(prev: int, cur: int, limit: int, offset: int) -> None:
    """Waiting Retry-After seconds always makes room for one more request (when one can ever fit)."""
    now = 100 * WINDOW_US + offset
    wait = retry_after(prev, cur, 1, limit, now)
    assert wait >= 1
    later = now + wait * 1_000_000
    if later // WINDOW_US == now // WINDOW_US:
        est = prev * (1 - (later % WINDOW_US) / WINDOW_US) + cur
    elif later // WINDOW_US == now // WINDOW_US + 1:
        est = cur * (1 - (later % WINDOW_US) / WINDOW_US)
    else:
        est = 0.0
    assert est + 1 <= limit + 1e-6


def _store(tmp_path: Path, now: list[int]) -> KeyStore:
    return KeyStore(tmp_path / "keys.db", clock=lambda: now[0], refresh_s=0)


def test_keystore_lifecycle(tmp_path: Path) -> None:
    """create -> authenticate -> expire / revoke / suspend, each with the right status."""
    now = [1_000_000]
    ks = _store(tmp_path, now)
    s1, k1 = ks.create(role="inference", user_id="u", expires_us=5_000_000)
    s2, k2 = ks.create(role="admin", user_id="v")
    assert ks.authenticate(s1).id == k1.id and ks.authenticate(s2).role == "admin"
    now[0] = 5_000_000
    with pytest.raises(AuthError, match="expired"):
        ks.authenticate(s1)
    ks.suspend(k2.id, 9_000_000, reason="test")
    with pytest.raises(AuthError) as err:
        ks.authenticate(s2)
    assert err.value.status == 403
    now[0] = 9_000_001
    assert ks.authenticate(s2).id == k2.id
    ks.revoke(k2.id)
    with pytest.raises(AuthError, match="revoked"):
        ks.authenticate(s2)
    with pytest.raises(UsageError, match="no API key with id 'nope'"):
        ks.revoke("nope")
    with pytest.raises(UsageError, match="unknown role 'root'"):
        ks.create(role="root", user_id="x")
    assert {k.id for k in ks.list()} == {k1.id, k2.id}
    ks.close()


@pytest.mark.parametrize("presented", [None, "", "s2a", "s2a__", "bearer", "s2a_abc_def", "x_y_z"])
def test_keystore_rejects_malformed(tmp_path: Path, presented: str | None) -> None:
    """Missing or malformed keys are 401."""
    ks = _store(tmp_path, [0])
    with pytest.raises(AuthError) as err:
        ks.authenticate(presented)
    assert err.value.status == 401
    ks.close()


def test_parse_expiry() -> None:
    """Durations and ISO dates become future epoch microseconds; the past is refused."""
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_expiry("1d", now) == int(datetime(2030, 1, 2, tzinfo=UTC).timestamp() * 1e6)
    assert parse_expiry("2031-01-01", now) == int(datetime(2031, 1, 1, tzinfo=UTC).timestamp() * 1e6)
    for bad in ("yesterday", "2020-01-01", "5x"):
        with pytest.raises(UsageError):
            parse_expiry(bad, now)


def test_anthropic_round_trip() -> None:
    """Anthropic requests become chat requests and chat responses become Anthropic messages."""
    chat = af.messages_to_chat({"model": "m", "max_tokens": 9, "system": [{"type": "text", "text": "sys"}],
                                "messages": [{"role": "user", "content": "hi"}], "stop_sequences": ["x"]})
    assert chat["messages"][0] == {"role": "system", "content": "sys"} and chat["stop"] == ["x"]
    back = af.chat_to_anthropic_request(chat, "claude")
    assert back["system"] == "sys" and back["messages"] == [{"role": "user", "content": "hi"}]
    msg = af.chat_response_to_message({"id": "chatcmpl-1", "choices": [
        {"message": {"content": "yo"}, "finish_reason": "length"}], "usage": {"prompt_tokens": 3,
                                                                            "completion_tokens": 4}}, "m")
    assert msg["stop_reason"] == "max_tokens" and msg["usage"] == {"input_tokens": 3, "output_tokens": 4}
    chat_resp = af.anthropic_message_to_chat({"id": "msg_1", "content": [{"type": "text", "text": "a"}],
                                              "stop_reason": "end_turn", "usage": {"input_tokens": 1,
                                                                                   "output_tokens": 2}})
    assert chat_resp["choices"][0]["message"]["content"] == "a" and chat_resp["usage"]["total_tokens"] == 3
    with pytest.raises(ApiError):
        af.messages_to_chat({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]})


def test_metrics_text_format() -> None:
    """Counters and the histogram render in the Prometheus text format with cumulative buckets."""
    m = Metrics()
    m.observe("chat.completions", 200, 0.002)
    m.observe("chat.completions", 200, 0.2)
    text = m.render({"g": ("a gauge", 1.0)})
    assert 'soc2ai_gateway_request_duration_seconds_bucket{endpoint="chat.completions",le="+Inf"} 2' in text
    assert 'soc2ai_gateway_request_duration_seconds_bucket{endpoint="chat.completions",le="0.001"} 0' in text
    assert 'soc2ai_gateway_request_duration_seconds_bucket{endpoint="chat.completions",le="0.0025"} 1' in text
    assert "# TYPE g gauge\ng 1.0" in text


def test_tool_results_and_text_documents_are_screened_text() -> None:
    """Anthropic tool_result blocks and text documents reach the model as text: they are read for
    screening and redacted, as new objects; images pass unchanged and the caller's content is untouched."""
    from soc2ai.gateway.core import message_text, redact_content

    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}
    content = [
        {"type": "text", "text": "summarise"},
        {"type": "tool_result", "tool_use_id": "t1", "content": "secret A"},
        {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "secret B"}, image]},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "secret C"}},
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "secret D"}]}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
        image,
    ]
    assert message_text(content).split("\n") == ["summarise", "secret A", "secret B", "secret C", "secret D"]
    before = repr(content)
    out = redact_content(content, lambda t: t.replace("secret", "[X]"))
    assert repr(content) == before
    assert message_text(out).split("\n") == ["summarise", "[X] A", "[X] B", "[X] C", "[X] D"]
    assert out[2]["content"][1] is image and out[5] == content[5] and out[6] is image
    # OpenAI-format content reads as before: text parts only.
    assert message_text([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}]) == "a"


def test_history_tool_use_input_is_screened_text() -> None:
    """The string values in a history ``tool_use`` block's input are shown to the model again: read for
    screening and redacted as new objects; numbers and the caller's block stay as they were."""
    from soc2ai.gateway.core import message_text, redact_content

    use = {"type": "tool_use", "id": "t1", "name": "login",
           "input": {"user": "kim", "secret": "hunter2", "tries": 3, "tags": ["a", "hunter2"]}}
    assert message_text([use]).split("\n") == ["kim", "hunter2", "a", "hunter2"]
    out = redact_content([use], lambda t: t.replace("hunter2", "[X]"))
    assert out[0]["input"] == {"user": "kim", "secret": "[X]", "tries": 3, "tags": ["a", "[X]"]}
    assert use["input"]["secret"] == "hunter2"  # type: ignore[index]
    assert redact_content([use], lambda t: t)[0] is use


def test_media_kinds_finds_what_screening_cannot_read() -> None:
    """Images, audio, files, PDFs and video are found in every request shape the gateway and the SDK
    wrappers read, nested tool results included; text (and text documents, which are screened) is not."""
    from soc2ai.gateway.core import media_kinds

    assert media_kinds([{"role": "user", "content": "hi"}, {"role": "user", "content": [
        {"type": "text", "text": "a"}, {"type": "document", "source": {"type": "text", "data": "plain"}}]}]) == []
    assert media_kinds([{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "x"}}, {"type": "input_audio", "input_audio": {}},
        {"type": "file", "file": {"file_id": "f"}}, {"type": "video_url", "video_url": {"url": "v"}}]}]) == [
        "MEDIA_AUDIO", "MEDIA_FILE", "MEDIA_IMAGE", "MEDIA_VIDEO"]
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}
    assert media_kinds([{"role": "user", "content": [pdf]}]) == ["MEDIA_FILE"]
    nested = {"type": "document", "source": {"type": "content", "content": [{"type": "image", "source": {}}]}}
    assert media_kinds([{"role": "user", "content": [nested]}]) == ["MEDIA_IMAGE"]
    assert media_kinds([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                                       "content": [{"type": "image", "source": {}}]}]}]) == ["MEDIA_IMAGE"]
    assert media_kinds([{"type": "function_call_output", "call_id": "c",
                         "output": [{"type": "input_image", "image_url": "u"}]},
                        {"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]) == [
        "MEDIA_FILE", "MEDIA_IMAGE"]


def test_media_policy_and_fail_closed_fallback() -> None:
    """soc2ai.scan blocks media by default; "flag" and "allow" forward; a "*" = "redact" catch-all blocks
    (a part cannot be partly removed); a pipeline that has no media decision blocks (fail closed)."""
    from soc2ai.gateway.screening import screen_media
    from soc2ai.scan import build_pipeline
    from soc2ai.scan.interface import Action
    from soc2ai.scan.settings import PolicySettings, ScanSettings

    def decide(pre: dict[str, str]) -> Action:
        pipe = build_pipeline(ScanSettings(policy=PolicySettings.model_validate({"pre": pre})))
        return screen_media(pipe, ["MEDIA_IMAGE"]).action

    assert decide({}) is Action.BLOCK
    assert decide({"media": "flag"}) is Action.FLAG and decide({"MEDIA_IMAGE": "allow"}) is Action.ALLOW
    assert decide({"*": "redact"}) is Action.BLOCK

    class TextOnly:
        def run(self, text: str, *, stage: object, redact_key: object = None) -> object:
            raise AssertionError("not called for media")

    res = screen_media(TextOnly(), ["MEDIA_AUDIO"])  # type: ignore[arg-type]
    assert res.action is Action.BLOCK and [f.entity_type for f in res.findings] == ["MEDIA_AUDIO"]
