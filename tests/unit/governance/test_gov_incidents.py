"""Incident register: lifecycle, SLA, validation of hand-edited files."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from soc2ai.config import Config
from soc2ai.errors import ConfigError
from soc2ai.governance.checks import FAIL, OK, WARN
from soc2ai.governance.incidents import IncidentRegister, check_incidents, overdue

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _register(tmp_path: Path, now: datetime = NOW) -> IncidentRegister:
    return IncidentRegister(tmp_path / "incidents", clock=lambda: now)


def test_lifecycle_from_alert_to_closure(tmp_path: Path) -> None:
    """An alert-opened incident collects actions and closes with root cause and remediation."""
    reg = _register(tmp_path)
    inc = reg.open(
        title="Content-policy violation in output",
        severity="high",
        source="alert:moderation:a1",
        description="Model output contained disallowed content; redacted by the post-scan.",
        records=["r1"],
        detected_at=NOW - timedelta(hours=2),
        actor="monitor",
    )
    assert inc.id == "INC-0001" and inc.status == "open"
    assert inc.timeline[0].actor == "monitor"
    reg.update(
        inc.id,
        action="Blocked the prompt pattern",
        actor="alice@example.com",
        status="contained",
        records=["r2", "r1"],
        at=NOW - timedelta(hours=1),
    )
    closed = reg.close(
        inc.id,
        root_cause="Jailbreak phrasing not covered by the injection rules",
        remediation="Added rule INJ-7; regression test",
        actor="alice@example.com",
        at=NOW,
    )
    assert closed.status == "closed" and closed.closed_at == NOW
    assert closed.records == ["r1", "r2"]
    assert [t.action for t in closed.timeline] == [
        "opened (source: alert:moderation:a1)",
        "Blocked the prompt pattern",
        "closed",
    ]
    again = reg.get(inc.id)
    assert again == closed
    assert reg.list("closed") == [closed] and reg.list("open") == []


def test_ids_increase_and_files_are_yaml(tmp_path: Path) -> None:
    """Each incident gets the next id and its own YAML file."""
    reg = _register(tmp_path)
    ids = [
        reg.open(title=f"t{i}", severity="low", source="user report", description="d").id for i in range(3)
    ]
    assert ids == ["INC-0001", "INC-0002", "INC-0003"]
    assert sorted(p.name for p in (tmp_path / "incidents").iterdir()) == [f"{i}.yaml" for i in ids]


def test_close_requires_root_cause_and_remediation(tmp_path: Path) -> None:
    """Closing without a root cause, or via update(status=closed), is refused; closed stays closed."""
    reg = _register(tmp_path)
    inc = reg.open(title="t", severity="medium", source="user report", description="d")
    with pytest.raises(ConfigError):
        reg.close(inc.id, root_cause=" ", remediation="fix")
    with pytest.raises(ConfigError):
        reg.update(inc.id, action="x", status="closed")
    reg.close(inc.id, root_cause="rc", remediation="fix")
    with pytest.raises(ConfigError, match="closed"):
        reg.update(inc.id, action="late note")


def test_overdue_per_severity_sla(tmp_path: Path) -> None:
    """Open incidents past their severity's SLA are overdue; closed ones never are."""
    reg = _register(tmp_path)
    late = reg.open(
        title="a", severity="high", source="s", description="d", detected_at=NOW - timedelta(hours=73)
    )
    reg.open(title="b", severity="low", source="s", description="d", detected_at=NOW - timedelta(hours=73))
    done = reg.open(
        title="c", severity="critical", source="s", description="d", detected_at=NOW - timedelta(hours=30)
    )
    reg.close(done.id, root_cause="rc", remediation="fix")
    assert [i.id for i in overdue(reg, NOW)] == [late.id]
    assert [i.id for i in overdue(reg.list(), NOW, sla_hours={"high": 100, "low": 10})] == ["INC-0002"]


def test_hand_edited_file_errors(tmp_path: Path) -> None:
    """A closed incident without root cause, or a future detection time, names file and line."""
    reg = _register(tmp_path)
    inc = reg.open(title="t", severity="low", source="s", description="d")
    path = tmp_path / "incidents" / f"{inc.id}.yaml"
    path.write_text(path.read_text().replace("status: open", "status: closed"), encoding="utf-8")
    with pytest.raises(ConfigError, match="closed incident needs") as exc:
        reg.get(inc.id)
    assert exc.value.file == str(path)
    text = (
        path.read_text()
        .replace("status: closed", "status: open")
        .replace("2026-06-01T12", "2027-06-01T12", 1)
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="future") as exc:
        reg.get(inc.id)
    assert exc.value.field == "detected_at" and exc.value.line is not None
    path.write_text(
        text.replace("severity: low", "severity: urgent").replace("2027", "2026"), encoding="utf-8"
    )
    with pytest.raises(ConfigError) as exc:
        reg.get(inc.id)
    assert exc.value.field == "severity"


def test_bad_ids_rejected(tmp_path: Path) -> None:
    """Ids that could escape the directory are rejected before touching the file system."""
    reg = _register(tmp_path)
    with pytest.raises(ConfigError, match="invalid incident id"):
        reg.get("../../etc/passwd")
    with pytest.raises(ConfigError, match="unknown incident"):
        (tmp_path / "incidents").mkdir()
        reg.get("INC-0042")


def test_check_incidents(project: Config) -> None:
    """Missing register fails; an overdue high incident fails; an overdue low one warns."""
    reg = IncidentRegister(project.root / "registers" / "incidents", clock=lambda: NOW)
    assert [r.status for r in check_incidents(project, now=NOW)] == [OK]
    reg.open(title="a", severity="high", source="s", description="d", detected_at=NOW - timedelta(days=4))
    reg.open(title="b", severity="medium", source="s", description="d", detected_at=NOW - timedelta(days=8))
    assert [r.status for r in check_incidents(project, now=NOW)] == [OK, FAIL, WARN]
    for p in (project.root / "registers" / "incidents").iterdir():
        p.unlink()
    (project.root / "registers" / "incidents").rmdir()
    assert [r.status for r in check_incidents(project, now=NOW)] == [FAIL]


def test_concurrent_openers_get_distinct_ids(tmp_path: Path) -> None:
    """Two processes' registers opening at once never share an id (exclusive create)."""
    from concurrent.futures import ThreadPoolExecutor

    regs = [_register(tmp_path) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        ids = list(
            pool.map(
                lambda i: regs[i % 4].open(title=f"t{i}", severity="low", source="s", description="d").id,
                range(20),
            )
        )
    assert len(set(ids)) == 20
    assert len(list((tmp_path / "incidents").glob("INC-*.yaml"))) == 20


def test_bad_arguments_are_config_errors(tmp_path: Path) -> None:
    """Wrong severity or status from a caller is a ConfigError naming the field, and nothing is written."""
    reg = _register(tmp_path)
    with pytest.raises(ConfigError) as exc:
        reg.open(title="t", severity="urgent", source="s", description="d")
    assert exc.value.field == "severity"
    assert not list((tmp_path / "incidents").glob("INC-*.yaml"))
    inc = reg.open(title="t", severity="low", source="s", description="d")
    with pytest.raises(ConfigError) as exc:
        reg.update(inc.id, action="x", status="bogus")
    assert exc.value.field == "status"
    with pytest.raises(ConfigError) as exc:
        reg.open(title="", severity="low", source="s", description="d")
    assert exc.value.field == "title"


def test_detected_time_with_offset_is_judged_in_utc(tmp_path: Path) -> None:
    """01:00+09:00 on the 5th is 16:00 UTC on the 4th: in the past at 17:00 UTC, not "in the future"."""
    now = datetime(2026, 5, 4, 17, 0, tzinfo=UTC)
    reg = _register(tmp_path, now)
    tokyo = timezone(timedelta(hours=9))
    detected = datetime(2026, 5, 5, 1, 0, tzinfo=tokyo)
    inc = reg.open(title="t", severity="low", source="s", description="d", detected_at=detected)
    assert inc.detected_at == detected
    path = tmp_path / "incidents" / f"{inc.id}.yaml"
    assert "+09:00" in path.read_text(encoding="utf-8")
    assert reg.get(inc.id).detected_at == detected  # the hand-readable file loads back too
    with pytest.raises(ConfigError, match="future"):
        reg.open(title="t", severity="low", source="s", description="d", detected_at=now + timedelta(days=1))


def test_closed_without_root_cause_points_at_status(tmp_path: Path) -> None:
    """A hand-closed incident missing its root cause is reported at the `status:` line, by field."""
    reg = _register(tmp_path)
    inc = reg.open(title="t", severity="low", source="s", description="d")
    path = tmp_path / "incidents" / f"{inc.id}.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    n = next(i for i, line in enumerate(lines) if line.startswith("status:"))
    lines[n] = "status: closed\n"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        reg.list()
    assert (exc.value.field, exc.value.line) == ("status", n + 1)
    assert exc.value.reason == "a closed incident needs closed_at, root_cause, remediation"


def test_number_for_detected_at_is_a_wrong_type(tmp_path: Path) -> None:
    reg = _register(tmp_path)
    inc = reg.open(title="t", severity="low", source="s", description="d")
    path = tmp_path / "incidents" / f"{inc.id}.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"detected_at: .*", "detected_at: 1700000000", text), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        reg.list()
    assert exc.value.field == "detected_at" and "not a number" in exc.value.reason


def test_refused_updates_name_the_incident_file(tmp_path: Path) -> None:
    """Refusals say which file, like every register error (they read "<config>: status: ...")."""
    reg = _register(tmp_path)
    inc = reg.open(title="t", severity="low", source="s", description="d")
    path = str(tmp_path / "incidents" / f"{inc.id}.yaml")
    with pytest.raises(ConfigError) as exc:
        reg.update(inc.id, action="x", status="closed")
    assert (exc.value.file, exc.value.field) == (path, "status")
    reg.close(inc.id, root_cause="rc", remediation="fix")
    for call in (lambda: reg.update(inc.id, action="late"), lambda: reg.close(inc.id, root_cause="a", remediation="b")):
        with pytest.raises(ConfigError) as exc:
            call()
        assert (exc.value.file, exc.value.field) == (path, "status")
    with pytest.raises(ConfigError) as exc:
        reg.get("foo")
    assert exc.value.file == str(tmp_path / "incidents")
