"""Single readiness checks on hand-made inputs (no ledger, no registers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soc2ai.config import parse_config
from soc2ai.readiness.checks import (
    Context,
    check_alert_rules,
    check_logs_flowing,
    check_retention,
    check_screening,
    check_sinks,
    last_of_kind,
)
from soc2ai.readiness.runner import run_checks

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW_US = int(NOW.timestamp() * 1_000_000)


@dataclass
class E:
    idx: int
    kind: str
    ts: int
    body: dict[str, Any] | None = None


class FakeLog:
    """entries(start, stop, kind) over an in-memory list, like AuditLog."""

    def __init__(self, kinds: list[tuple[str, int]]) -> None:
        self.items = [E(i, k, ts) for i, (k, ts) in enumerate(kinds)]
        self.calls = 0

    def size(self) -> int:
        return len(self.items)

    def entries(self, start: int = 0, stop: int | None = None, kind: str | None = None) -> Any:
        self.calls += 1
        return (e for e in self.items[start:stop] if kind is None or e.kind == kind)


def ctx(toml: str = "", **kw: Any) -> Context:
    return Context(config=parse_config(toml, root=Path("/nonexistent")), now=NOW, **kw)


def test_last_of_kind_scans_back_in_growing_windows() -> None:
    """The newest entry of a kind is found even when thousands of other records follow it."""
    log = FakeLog([("inference", 1), *[("alert", 2)] * 5000])
    assert last_of_kind(log, "inference").idx == 0
    assert log.calls < 8
    assert last_of_kind(FakeLog([("alert", 1)]), "inference") is None


def test_logs_flowing_threshold_is_configurable() -> None:
    """A record 4 minutes old is OK under the default 5 minutes and FAIL under a 60 s limit."""
    log = FakeLog([("inference", NOW_US - 240 * 1_000_000)])
    assert check_logs_flowing(ctx(log=log))[0].status == "OK"
    strict = ctx("[monitor.readiness]\nmax_inference_age_s = 60\n", log=log)
    [line] = check_logs_flowing(strict)
    assert line.status == "FAIL" and "240 s old" in line.message and line.remedy


def test_no_ledger_fails_with_the_reason() -> None:
    """Without a readable ledger the ledger-backed checks FAIL and say why."""
    [line] = check_logs_flowing(ctx(log_error="store unreachable"))
    assert line.status == "FAIL" and "store unreachable" in line.message


def test_retention_floors() -> None:
    """Inference logs under 90 days or restricted data under 365 days FAIL."""
    ok = {r.check_id: r.status for r in check_retention(ctx())}
    assert ok == {"retention.inference": "OK", "retention.restricted": "OK"}
    short = ctx("[ledger]\nretention_days = 30\n")
    assert {r.check_id: r.status for r in check_retention(short)}["retention.inference"] == "FAIL"


def test_alert_rules_need_every_seed_alert() -> None:
    """Disabling the defaults, or one seed rule, fails the rules check naming what is missing."""
    assert check_alert_rules(ctx())[0].status == "OK"
    off = ctx('[monitor]\ndefault_rules = false\n[[monitor.rules]]\nname = "x"\nkind = "count"\n'
              'severity = "LOW"\nresponse = "log"\n')
    [line] = check_alert_rules(off)
    assert line.status == "FAIL" and "prompt_injection" in line.message and "provider_error_rate" in line.message


def test_no_sink_is_a_warning() -> None:
    """Without sinks alerts only reach the ledger and incidents: WARN with a remedy."""
    [line] = check_sinks(ctx())
    assert (line.check_id, line.status) == ("alerts.sinks", "WARN") and line.remedy


def test_crashing_check_is_reported_and_others_still_run(tmp_path: Path) -> None:
    """A check raising an unexpected error becomes one FAIL line; the next check still runs."""

    def boom(c: Context) -> list[Any]:
        raise RuntimeError("bad")

    config = parse_config("", root=tmp_path)
    results = run_checks(config, now=NOW, checks=[("logs", boom), ("retention", check_retention)], log=FakeLog([]))
    assert (results[0].check_id, results[0].status) == ("logs.error", "FAIL")
    assert {r.check_id for r in results[1:]} == {"retention.inference", "retention.restricted"}


def test_screening_warns_for_each_guarantee_given_up() -> None:
    """The default policy is OK; each guarantee a config gives up is its own WARN naming the type, the
    stage and how to restore it; screening off is one WARN."""
    [line] = check_screening(ctx())
    assert (line.check_id, line.status) == ("screening.policy", "OK")
    lines = check_screening(ctx('[scan]\nsecrets = false\n[scan.policy.pre]\nmedia = "flag"\n'
                                '[scan.policy.post]\nEMAIL_ADDRESS = "flag"\n'))
    assert {(x.check_id, x.status) for x in lines} == {
        ("screening.openai_api_key", "WARN"), ("screening.media_image", "WARN"), ("screening.email_address", "WARN")}
    by_id = {x.check_id: x for x in lines}
    assert by_id["screening.media_image"].remedy == '[scan.policy.pre] media = "block" (the default)'
    assert by_id["screening.openai_api_key"].remedy == "[scan] secrets = true (the default)"
    assert "at post: flag" in by_id["screening.email_address"].message
    [off] = check_screening(ctx("[gateway]\nscreening = false\n"))
    assert (off.check_id, off.status) == ("screening.on", "WARN")


def test_screening_warns_for_every_media_type_forwarded() -> None:
    """Allowing audio, files or video (not only images) gives up the media guarantee: not OK."""
    for media in ("MEDIA_AUDIO", "MEDIA_FILE", "MEDIA_VIDEO"):
        lines = check_screening(ctx(f'[scan.policy.pre]\n{media} = "allow"\n'))
        assert {(x.check_id, x.status) for x in lines} == {(f"screening.{media.lower()}", "WARN")}, media
        assert lines[0].remedy == f'[scan.policy.pre] {media} = "block" (the default)'


def test_screening_warns_for_a_type_override_that_weakens_its_category() -> None:
    """A per-type key overriding a guaranteed category (a secret type sent on, PII in output shown, a
    moderation type allowed) gives that guarantee up for that type."""
    lines = check_screening(ctx('[scan.policy.pre]\nAWS_ACCESS_KEY_ID = "allow"\nMODERATION_SELF_HARM = "flag"\n'
                                '[scan.policy.post]\nPHONE_NUMBER = "allow"\n'))
    assert {(x.check_id, x.status) for x in lines} == {
        ("screening.aws_access_key_id", "WARN"), ("screening.moderation_self_harm", "WARN"),
        ("screening.phone_number", "WARN")}
    assert all("(the default)" in x.remedy for x in lines)


def test_screening_passthrough_streaming_warns() -> None:
    """Pass-through streaming sends output before the post-scan can redact it."""
    [line] = check_screening(ctx('[gateway]\nstream_mode = "passthrough"\n'))
    assert (line.check_id, line.status) == ("screening.stream_mode", "WARN")
    assert line.remedy == '[gateway] stream_mode = "buffer" (the default)'


def test_retention_restricted_counts_legal_category_periods() -> None:
    """Financial and health data are restricted and kept for their category period: under 365 days FAILs."""
    short = ctx("[data.retention.category_days]\nfinancial = 30\nhealth = 365\n")
    line = next(r for r in check_retention(short) if r.check_id == "retention.restricted")
    assert line.status == "FAIL" and "financial" in line.message and "30 days" in line.message


def test_every_check_area_has_its_criterion_on_an_error_line(tmp_path: Path) -> None:
    """A check that cannot run reports FAIL under its own criterion, not a generic one."""
    from soc2ai.readiness.checks import CHECKS

    def boom(c: Context) -> list[Any]:
        raise RuntimeError("bad")

    config = parse_config("", root=tmp_path)
    results = run_checks(config, now=NOW, checks=[(name, boom) for name, _ in CHECKS], log=FakeLog([]))
    assert {r.check_id: r.criterion for r in results}["screening.error"] == "CC6.8"


def test_logs_flowing_warns_on_a_record_from_the_future() -> None:
    """A record stamped an hour ahead (a writer's clock is wrong) would read as fresh for an hour: WARN;
    a few seconds of skew between hosts is normal and stays OK."""
    [line] = check_logs_flowing(ctx(log=FakeLog([("inference", NOW_US + 3600 * 1_000_000)])))
    assert line.status == "WARN" and "3600 s in the future" in line.message and "NTP" in line.remedy
    assert check_logs_flowing(ctx(log=FakeLog([("inference", NOW_US + 5 * 1_000_000)])))[0].status == "OK"


def test_screening_warns_when_remote_moderation_fails_open() -> None:
    """With the OpenAI moderation API, on_error = "open" forwards text unmoderated when the API fails."""
    lines = check_screening(ctx('[scan.moderation]\nprovider = "openai"\non_error = "open"\n'))
    assert [(x.check_id, x.status) for x in lines] == [("screening.moderation_on_error", "WARN")]
    assert check_screening(ctx('[scan.moderation]\nprovider = "openai"\n'))[0].status == "OK"
