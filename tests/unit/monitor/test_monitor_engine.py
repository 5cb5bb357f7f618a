"""The rules engine on record streams: each rule kind, dedup, suppression, determinism, state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _monitor_records import T0, inference, scan
from hypothesis import given, settings
from hypothesis import strategies as st

from soc2ai.monitor.engine import RuleEngine
from soc2ai.monitor.settings import MonitorSettings, RuleSettings, SuppressionSettings

S = 1_000_000


def seed_engine() -> RuleEngine:
    return RuleEngine.from_settings(MonitorSettings())


def rules_fired(engine: RuleEngine, bodies: list[dict[str, Any]]) -> list[str]:
    return [a.rule for b in bodies for a in engine.evaluate(b)]


def test_injection_on_input_fires_high_block_and_log() -> None:
    """A PROMPT_INJECTION finding at the pre stage raises the HIGH block_and_log alert with the record."""
    body = inference(T0, scans=[scan("pre", "injection", "block", "PROMPT_INJECTION")])
    alerts = seed_engine().evaluate(body)
    assert [(a.rule, a.severity, a.response) for a in alerts] == [("prompt_injection", "HIGH", "block_and_log")]
    assert alerts[0].records == [body["id"]]
    assert "PROMPT_INJECTION" in alerts[0].message


def test_pii_only_alerts_on_output() -> None:
    """PII in the prompt is not the output rule's business; PII in the response is."""
    e = seed_engine()
    assert e.evaluate(inference(T0, scans=[scan("pre", "pii", "flag", "EMAIL_ADDRESS")])) == []
    alerts = e.evaluate(inference(T0 + 1, scans=[scan("post", "pii", "redact", "EMAIL_ADDRESS")]))
    assert [(a.rule, a.response) for a in alerts] == [("pii_in_output", "redact_and_alert")]


def test_moderation_block_raises_content_policy_rule() -> None:
    """A moderation block (either stage) raises the content-policy rule; a moderation flag does not."""
    e = seed_engine()
    assert e.evaluate(inference(T0, scans=[scan("post", "moderation", "flag", "MODERATION_VIOLENCE")])) == []
    alerts = e.evaluate(inference(T0 + 1, scans=[scan("pre", "moderation", "block", "MODERATION_VIOLENCE")]))
    assert [a.rule for a in alerts] == ["content_policy_violation"]
    assert alerts[0].details["types"] == ["MODERATION_VIOLENCE"]
    # The gateway's generic "pipeline" entry carries the same types and is matched the same way.
    alerts = e.evaluate(inference(T0 + 2, key="k2", scans=[scan("post", "pipeline", "block", "MODERATION")]))
    assert [a.rule for a in alerts] == ["content_policy_violation"]


def _hourly(engine: RuleEngine, hours: int, tokens: int, key: str = "k1") -> list[str]:
    out = []
    for h in range(hours):
        out += rules_fired(engine, [inference(T0 + h * 3600 * S + 60 * S, key=key, input_tokens=0,
                                              output_tokens=tokens)])
    return out


def test_token_volume_spike_against_trailing_baseline() -> None:
    """3x the trailing hourly mean (and above min volume) fires once per window; 2.9x does not."""
    e = seed_engine()
    assert _hourly(e, 5, 10_000) == []
    t = T0 + 5 * 3600 * S
    assert rules_fired(e, [inference(t + S, input_tokens=0, output_tokens=29_000)]) == []  # 2.9x
    fired = rules_fired(e, [inference(t + 2 * S, input_tokens=0, output_tokens=2_000)])   # 3.1x
    assert fired == ["token_volume_spike"]
    assert rules_fired(e, [inference(t + 3 * S, input_tokens=0, output_tokens=50_000)]) == []  # once per window


def test_quiet_key_below_minimum_volume_never_pages() -> None:
    """A key jumping from 100 to 5,000 tokens/hour is 50x its baseline but under min_volume."""
    e = seed_engine()
    assert _hourly(e, 5, 100) == []
    assert rules_fired(e, [inference(T0 + 5 * 3600 * S, input_tokens=0, output_tokens=5_000)]) == []


def test_new_key_without_history_does_not_alert() -> None:
    """A group needs min_history windows of baseline before it can alert."""
    e = seed_engine()
    assert rules_fired(e, [inference(T0, key="new", input_tokens=0, output_tokens=90_000)]) == []


def test_volume_groups_are_separate() -> None:
    """One key's spike is measured against its own baseline, not another key's."""
    e = seed_engine()
    _hourly(e, 4, 10_000, key="a")
    _hourly(e, 4, 100_000, key="b")
    t = T0 + 4 * 3600 * S
    assert rules_fired(e, [inference(t, key="a", input_tokens=0, output_tokens=40_000)]) == ["token_volume_spike"]
    assert rules_fired(e, [inference(t, key="b", input_tokens=0, output_tokens=40_000)]) == []


def _calls(start: int, n: int, failing: set[int], provider: str = "openai") -> list[dict[str, Any]]:
    return [inference(start + i * S, provider=provider, status=502 if i in failing else 200) for i in range(n)]


def test_error_rate_above_five_percent_pages() -> None:
    """Over 5% failing calls in 5 minutes (with enough calls) fires page_oncall for that provider."""
    e = seed_engine()
    calls = _calls(T0, 100, failing={95, 96, 97, 98, 99})  # 5%: not above
    assert rules_fired(e, calls) == []
    alerts = e.evaluate(inference(T0 + 101 * S, status=503))  # 6/101
    assert [(a.rule, a.response, a.group) for a in alerts] == [("provider_error_rate", "page_oncall", "openai")]
    assert alerts[0].details["errors"] == 6


def test_error_rate_counts_errors_and_fallbacks() -> None:
    """An error field and a fallback to a second provider count against the first provider."""
    e = seed_engine()
    bodies = _calls(T0, 40, set())
    bodies += [inference(T0 + 41 * S, error="timeout"),
               inference(T0 + 42 * S, provider="anthropic", fallback=["openai", "anthropic"]),
               inference(T0 + 43 * S, provider="anthropic", fallback=["openai", "anthropic"])]
    fired = [a for b in bodies for a in e.evaluate(b)]
    assert [(a.rule, a.group) for a in fired] == [("provider_error_rate", "openai")]


def test_errors_slide_out_of_the_window() -> None:
    """Errors older than the window no longer count."""
    e = seed_engine()
    assert rules_fired(e, _calls(T0, 20, {18, 19})) == ["provider_error_rate"]
    later = T0 + 20 * 60 * S
    assert rules_fired(e, _calls(later, 40, {39})) == []


def test_error_rate_needs_minimum_calls() -> None:
    """Three failures out of five calls is not enough traffic to page."""
    assert rules_fired(seed_engine(), _calls(T0, 5, {0, 1, 2})) == []


def count_engine(**kw: Any) -> RuleEngine:
    rule = RuleSettings(name="denials", kind="count", severity="LOW", response="log", dedup_s=0,
                        params={"record_kind": "access", "match": {"decision": "deny"}, "threshold": 3,
                                "window_s": 60, **kw})
    return RuleEngine([rule])


def access(ts: int, decision: str = "deny") -> dict[str, Any]:
    return {"kind": "access", "id": f"a{ts}", "ts": ts, "decision": decision, "key_id": "k"}


def test_count_threshold_within_window() -> None:
    """Three matching records within a minute fire; spread over more than a minute they do not."""
    assert rules_fired(count_engine(), [access(T0), access(T0 + 70 * S), access(T0 + 140 * S)]) == []
    e = count_engine()
    assert rules_fired(e, [access(T0), access(T0 + S, "allow"), access(T0 + 2 * S), access(T0 + 3 * S)]) == [
        "denials"]


def test_dedup_folds_repeats_into_next_alert() -> None:
    """Repeats within the dedup window are not re-alerted; the next alert says how many were folded."""
    e = seed_engine()
    inj = [scan("pre", "injection", "block", "PROMPT_INJECTION")]
    fired = [a for i in range(5) for a in e.evaluate(inference(T0 + i * S, scans=inj))]
    assert len(fired) == 1
    later = e.evaluate(inference(T0 + 301 * S, scans=inj))
    assert len(later) == 1 and later[0].repeats == 4
    assert e.stats["deduplicated"] == 4
    # Another key is another group: alerted at once.
    assert len(e.evaluate(inference(T0 + 2 * S, key="k2", scans=inj))) == 1


def test_suppression_window_silences_rules() -> None:
    """Inside a maintenance window the named rule does not alert; outside it does."""
    start = datetime.fromtimestamp(T0 / S, tz=UTC)
    sup = SuppressionSettings(rules=["prompt_injection"], start=start, end=start + timedelta(minutes=10),
                              reason="pen test")
    e = RuleEngine(MonitorSettings().effective_rules(), [sup])
    inj = [scan("pre", "injection", "block", "PROMPT_INJECTION")]
    assert e.evaluate(inference(T0 + 60 * S, scans=inj)) == []
    assert e.stats["suppressed"] == 1
    assert len(e.evaluate(inference(T0 + 11 * 60 * S, scans=inj))) == 1


def test_records_without_time_or_of_other_kinds_are_ignored() -> None:
    """A body without integer ts, or a kind no rule watches, raises nothing."""
    e = seed_engine()
    assert e.evaluate({"kind": "inference", "scans": [scan("pre", "i", "block", "PROMPT_INJECTION")]}) == []
    assert e.evaluate({"kind": "config_change", "ts": T0}) == []


def _stream(seed_ops: list[tuple[int, int, bool, bool]]) -> list[dict[str, Any]]:
    out = []
    t = T0
    for gap_s, tokens, fails, inject in seed_ops:
        t += gap_s * S
        out.append(inference(t, key=f"k{tokens % 3}", output_tokens=tokens, status=500 if fails else 200,
                             scans=[scan("pre", "injection", "block", "PROMPT_INJECTION")] if inject else None,
                             rid=f"id{len(out)}"))
    return out


ops = st.lists(st.tuples(st.integers(0, 900), st.integers(0, 40_000), st.booleans(), st.booleans()),
               min_size=1, max_size=120)


@settings(max_examples=60, deadline=None)
@given(ops, st.integers(0, 119))
def test_restart_from_saved_state_fires_the_same_alerts(seq: list[tuple[int, int, bool, bool]], cut: int) -> None:
    """Evaluating a stream in one pass equals evaluating a prefix, saving state, restoring, and the rest."""
    import orjson

    bodies = _stream(seq)
    cut = min(cut, len(bodies))
    whole = seed_engine()
    expected = [a.to_dict() for b in bodies for a in whole.evaluate(b)]
    first = seed_engine()
    got = [a.to_dict() for b in bodies[:cut] for a in first.evaluate(b)]
    saved = orjson.loads(orjson.dumps(first.state()))
    second = seed_engine()
    second.restore(saved)
    got += [a.to_dict() for b in bodies[cut:] for a in second.evaluate(b)]
    assert got == expected


def test_replay_is_deterministic() -> None:
    """The same stream gives the same alerts, ids included (time comes from the records)."""
    bodies = _stream([(30, 40_000, i % 4 == 0, i % 7 == 0) for i in range(300)])
    e1 = seed_engine()
    a = [x.to_dict() for b in bodies for x in e1.evaluate(b)]
    e = seed_engine()
    b = [x.to_dict() for body in bodies for x in e.evaluate(body)]
    assert a == b and a


def _gateway_call(ts: int, path: list[str], status: int, provider: str | None, rid: str) -> dict[str, Any]:
    """An inference body as the gateway writes it: hops are "provider:model=outcome" (docs/gateway.md)."""
    body: dict[str, Any] = {"v": 1, "kind": "inference", "id": rid, "ts": ts, "key_id": "k1", "model": "m",
                            "input_tokens": 1, "output_tokens": 1, "status": status, "fallback_path": path}
    if provider is not None:
        body["provider"] = provider
    if status >= 400:
        body["error"] = "all providers failed"
    return body


def test_error_rate_groups_gateway_hops_by_provider() -> None:
    """10% failing gateway calls to one provider page for that provider, whatever the hops' model/outcome."""
    e = seed_engine()
    bodies = []
    for i in range(100):
        if i % 10 == 0:
            bodies.append(_gateway_call(T0 + i * S, ["openai:gpt-4o-mini=502"], 502, None, f"g{i}"))
        elif i % 10 == 5:  # answered by the fallback: counted against the first provider tried
            bodies.append(_gateway_call(T0 + i * S, ["openai:gpt-4o-mini=timeout", "local:llama3.1:8b=200"],
                                        200, "local", f"g{i}"))
        else:
            bodies.append(_gateway_call(T0 + i * S, ["openai:gpt-4o-mini=200"], 200, "openai", f"g{i}"))
    fired = [a for b in bodies for a in e.evaluate(b)]
    assert [(a.rule, a.group) for a in fired] == [("provider_error_rate", "openai")]
    assert (fired[0].details["errors"], fired[0].details["calls"]) == (5, 21)  # hops 0, 5, 10, 15, 20
    # A cache hit ("cache=hit") is grouped as the cache, not as a provider's failure.
    cache = _gateway_call(T0 + 200 * S, ["cache=hit"], 200, "cache", "c1")
    assert e.evaluate(cache) == [] and "cache" in e.rules[3].state()


def test_calls_refused_before_any_provider_do_not_page_as_provider_errors() -> None:
    """Policy blocks and other refusals (400, no provider, no fallback path) are not a provider's errors:
    a burst of blocked injections raises the injection alert, not provider_error_rate."""
    e = seed_engine()
    fired = []
    for i in range(40):
        body = _gateway_call(T0 + i * S, [], 400, None, f"b{i}")
        body["error"] = "request blocked by content policy: PROMPT_INJECTION"
        fired += [a.rule for a in e.evaluate(body)]
    assert "provider_error_rate" not in fired
    assert not any(k == "-" for k in e.rules[3].state())


def test_volume_alert_after_restart_links_the_whole_window() -> None:
    """A spike alert raised after a restart links the window's records from before the restart too."""
    import orjson

    bodies = [inference(T0 + h * 3600 * S, input_tokens=0, output_tokens=10_000, rid=f"h{h}") for h in range(4)]
    t = T0 + 4 * 3600 * S
    bodies += [inference(t + S, input_tokens=0, output_tokens=20_000, rid="s1"),
               inference(t + 2 * S, input_tokens=0, output_tokens=20_000, rid="s2")]
    first = seed_engine()
    assert rules_fired(first, bodies[:5]) == []
    second = seed_engine()
    second.restore(orjson.loads(orjson.dumps(first.state())))
    [alert] = second.evaluate(bodies[5])
    assert alert.rule == "token_volume_spike" and alert.records == ["s1", "s2"]


def test_volume_state_from_before_ids_were_saved_still_restores() -> None:
    """A cursor file written by an older version (no record ids) is still accepted."""
    e = seed_engine()
    e.restore({"rules": {"token_volume_spike": {"k1": [5, 100, [1, 2, 3], -1]}}, "last": {}, "folded": {}})
    assert e.state()["rules"]["token_volume_spike"]["k1"][:4] == [5, 100, [1, 2, 3], -1]


def test_a_rule_failing_on_a_field_does_not_drop_other_rules_alerts() -> None:
    """A field of an unexpected shape breaks one rule only: the injection alert on that record still fires."""
    e = seed_engine()
    inj = [scan("pre", "injection", "block", "PROMPT_INJECTION")]
    body = inference(T0, scans=inj)
    body["input_tokens"] = "lots"  # the volume rule cannot add this up
    assert [a.rule for a in e.evaluate(body)] == ["prompt_injection"]
    assert e.stats["errors"] == 1 and "token_volume_spike" in (e.last_error or "")
    assert body["id"] in (e.last_error or "")


def test_status_written_as_a_string_counts_as_a_failure() -> None:
    """log_inference stores string extras as given: status "502" is a failing call like 502."""
    e = seed_engine()
    bodies = _calls(T0, 20, set())
    for b in bodies[15:]:
        b["status"] = "502"
    assert rules_fired(e, bodies) == ["provider_error_rate"]
    assert e.stats["errors"] == 0


def _malformed(field: str, value: Any) -> dict[str, Any]:
    body = inference(T0, scans=[scan("pre", "injection", "block", "PROMPT_INJECTION")])
    if "." in field:  # a field of the first scans entry
        body["scans"][0][field.split(".", 1)[1]] = value
    else:
        body[field] = value
    return body


@pytest.mark.parametrize(("field", "value", "where"), [
    ("scans", [1], "scans[0]"),
    ("scans", "PROMPT_INJECTION", "scans"),
    ("scans", {"stage": "pre"}, "scans"),
    ("scans.types", "PROMPT_INJECTION", "scans[0].types"),
    ("scans.types", [7], "scans[0].types[0]"),
    ("scans.decision", ["block"], "scans[0].decision"),
    ("scans.stage", {"pre": 1}, "scans[0].stage"),
    ("fallback_path", "openai", "fallback_path"),
    ("fallback_path", 3, "fallback_path"),
    ("input_tokens", "lots", "input_tokens"),
    ("output_tokens", [5], "output_tokens"),
    ("output_tokens", float("inf"), "output_tokens"),
])
def test_malformed_record_field_is_a_data_error_naming_the_field(field: str, value: Any, where: str) -> None:
    """A field of the wrong shape is reported as such, never as a Python exception's text."""
    e = seed_engine()
    e.evaluate(_malformed(field, value))
    assert e.stats["errors"] >= 1
    err = e.last_error or ""
    assert f"field {where}:" in err, err
    for leak in ("AttributeError", "TypeError", "KeyError", "OverflowError", "has no attribute", "invalid literal"):
        assert leak not in err, err


def test_well_formed_scans_beside_a_malformed_field_still_fire() -> None:
    """Only the rule that reads the bad field stops: the injection alert on that record still fires."""
    body = _malformed("fallback_path", "openai")  # read by provider_error_rate only
    e = seed_engine()
    assert [a.rule for a in e.evaluate(body)] == ["prompt_injection"]
    assert e.stats["errors"] == 1 and "provider_error_rate" in (e.last_error or "")


def test_malformed_record_error_shows_the_message_without_the_class_name() -> None:
    """A data error reads "rule 'x' on record 'r': field ...": MalformedRecord is an internal name."""
    e = seed_engine()
    body = _malformed("scans", [1])
    e.evaluate(body)
    # The last detector rule to read `scans` reports it.
    assert e.last_error == (f"rule 'content_policy_violation' on record {body['id']!r}: "
                            "field scans[0]: expected an object, got int")


def test_unexpected_rule_exception_keeps_its_type_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception that is not a data error is a bug: its type name stays in the report."""
    e = seed_engine()

    def broken(body: dict[str, Any], ts: int) -> None:
        raise KeyError("stage")

    monkeypatch.setattr(e.rules[0], "evaluate", broken)
    body = inference(T0, rid="r1")
    e.evaluate(body)
    assert e.stats["errors"] == 1
    assert e.last_error == f"rule {e.rules[0].name!r} on record 'r1': KeyError: 'stage'"


@pytest.mark.parametrize("kind", [["inference"], {"a": 1}, 7, None])
def test_non_string_kind_is_a_malformed_record_not_a_crash(kind: Any) -> None:
    """A list kind is unhashable where rules are looked up: reported as field kind, never a TypeError."""
    e = seed_engine()
    body = inference(T0, rid="r1", scans=[scan("pre", "injection", "block", "PROMPT_INJECTION")])
    body["kind"] = kind
    assert e.evaluate(body) == []
    assert e.stats["errors"] == 1
    assert e.last_error == f"record 'r1': field kind: expected a string, got {type(kind).__name__}"
    # The engine keeps working for the next, well-formed record.
    assert rules_fired(e, [inference(T0 + 1, scans=[scan("pre", "injection", "block", "PROMPT_INJECTION")])]) == [
        "prompt_injection"]
