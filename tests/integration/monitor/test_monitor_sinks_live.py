"""Sinks against real local receivers; outbox durability when a sink is down."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from soc2ai.monitor.engine import Alert
from soc2ai.monitor.outbox import Dispatcher, Outbox
from soc2ai.monitor.sinks.interface import SinkError
from soc2ai.monitor.sinks.jsonl import JsonlSink
from soc2ai.monitor.sinks.ocsf import OcsfSink
from soc2ai.monitor.sinks.syslog import SyslogSink
from soc2ai.monitor.sinks.webhook import WebhookSink
from soc2ai.testing.receivers import http_receiver, syslog_receiver
from soc2ai.testing.server import free_port

T0 = 1_767_225_600_000_000


def alert(n: int = 0, **kw: Any) -> dict[str, Any]:
    return {**Alert(id=f"{n:032x}", rule="pii_in_output", kind="detector", severity="HIGH",
                    response="redact_and_alert", message=f"pii_in_output: EMAIL_ADDRESS #{n}", ts=T0 + n,
                    group="k1", records=[f"r{n}"]).to_dict(), **kw}


@pytest.mark.parametrize("fmt", ["json", "slack", "pagerduty"])
def test_webhook_formats_reach_local_server(fmt: str) -> None:
    """Each webhook format is POSTed as JSON and arrives at a real HTTP server."""
    with http_receiver() as rx:
        sink = WebhookSink("hook", rx.url, format=fmt, project="acme", routing_key="RK")
        sink.deliver(alert())
        body = rx.wait(1)[0]
        sink.close()
    if fmt == "json":
        assert (body["type"], body["rule"], body["records"]) == ("soc2ai.alert", "pii_in_output", ["r0"])
    elif fmt == "slack":
        assert "pii_in_output" in body["text"] and body["blocks"]
    else:
        assert (body["routing_key"], body["event_action"], body["payload"]["severity"]) == ("RK", "trigger", "error")


def test_webhook_errors_are_classified() -> None:
    """5xx and refused connections are retryable; a 400 is not."""
    with http_receiver() as rx:
        sink = WebhookSink("hook", rx.url)
        rx.status = 503
        with pytest.raises(SinkError) as err:
            sink.deliver(alert())
        assert err.value.retryable
        rx.status = 400
        with pytest.raises(SinkError) as err:
            sink.deliver(alert())
        assert not err.value.retryable
        sink.close()
    dead = WebhookSink("hook", f"http://127.0.0.1:{free_port()}/x", timeout_s=1)
    with pytest.raises(SinkError) as err:
        dead.deliver(alert())
    assert err.value.retryable
    dead.close()


def test_pagerduty_probe_triggers_then_resolves() -> None:
    """The readiness probe of a PagerDuty sink resolves what it triggered, so nobody is paged."""
    with http_receiver() as rx:
        sink = WebhookSink("pd", rx.url, format="pagerduty", routing_key="RK")
        sink.probe()
        bodies = rx.wait(2)
        sink.close()
    assert [b["event_action"] for b in bodies] == ["trigger", "resolve"]
    assert bodies[0]["dedup_key"] == bodies[1]["dedup_key"]


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_syslog_reaches_local_socket(protocol: str) -> None:
    """RFC 5424 messages arrive over UDP and over TCP with octet-counting framing."""
    with syslog_receiver(protocol) as rx:
        sink = SyslogSink("siem", "127.0.0.1", rx.port, protocol=protocol, project="acme")
        sink.deliver(alert(1))
        sink.deliver(alert(2))
        sink.probe()
        msgs = rx.wait(3)
        sink.close()
    assert len(msgs) == 3
    assert msgs[0].startswith(b"<107>1 ") and b'rule="pii_in_output"' in msgs[0]
    assert msgs[1].endswith(b"pii_in_output: EMAIL_ADDRESS #2")


def test_syslog_probe_detects_closed_port() -> None:
    """Probing a UDP port nobody listens on, or a closed TCP port, raises SinkError."""
    udp = SyslogSink("siem", "127.0.0.1", free_port(kind=socket.SOCK_DGRAM), protocol="udp")
    with pytest.raises(SinkError, match="unreachable"):
        udp.probe()
    tcp = SyslogSink("siem", "127.0.0.1", free_port(), protocol="tcp", timeout_s=1)
    with pytest.raises(SinkError):
        tcp.probe()


def test_ocsf_sink_writes_file_and_posts(tmp_path: Path) -> None:
    """The OCSF sink appends findings to a file and POSTs them to a collector."""
    import orjson

    with http_receiver() as rx:
        sink = OcsfSink("ocsf", path=tmp_path / "ocsf.jsonl", url=rx.url, project="acme")
        sink.deliver(alert(3))
        posted = rx.wait(1)[0]
        sink.close()
    line = orjson.loads((tmp_path / "ocsf.jsonl").read_bytes().splitlines()[0])
    assert line == posted and line["class_uid"] == 2004 and line["finding_info"]["uid"] == f"{3:032x}"


def test_down_webhook_loses_nothing_and_is_delivered_later(tmp_path: Path) -> None:
    """With the receiver failing, alerts wait in the outbox; once it recovers they arrive, in order."""
    with http_receiver() as rx:
        rx.status = 503
        sink = WebhookSink("hook", rx.url)
        d = Dispatcher(Outbox(tmp_path / "outbox"), [sink], retry_min_s=0.05, retry_max_s=0.2).start()
        for n in range(5):
            d.submit(alert(n))
        time.sleep(0.5)
        assert rx.hits >= 2 and not rx.bodies
        assert len(d.outbox.pending("hook")) == 5
        rx.status = 200
        assert d.flush(10)
        got = [b["id"] for b in rx.wait(5)]
        d.close()
    assert got == [f"{n:032x}" for n in range(5)]
    assert d.stats()["hook"]["delivered"] == 5 and d.stats()["hook"]["retries"] >= 1


def test_outbox_survives_a_restart(tmp_path: Path) -> None:
    """Alerts queued while the sink was down are delivered by the next process's dispatcher."""
    dead = WebhookSink("hook", f"http://127.0.0.1:{free_port()}/x", timeout_s=0.5)
    first = Dispatcher(Outbox(tmp_path / "ob"), [dead], retry_min_s=0.05, retry_max_s=0.1).start()
    first.submit(alert(7))
    first.submit(alert(7))  # same alert id: stored once
    first.close(timeout=0.2)
    assert len(Outbox(tmp_path / "ob").pending("hook")) == 1
    with http_receiver() as rx:
        second = Dispatcher(Outbox(tmp_path / "ob"), [WebhookSink("hook", rx.url)]).start()
        assert second.flush(5)
        assert [b["id"] for b in rx.wait(1)] == [f"{7:032x}"]
        second.close()


def test_rejected_alert_is_parked_not_retried(tmp_path: Path) -> None:
    """A 4xx answer moves the alert to failed/ with the reason and counts it."""
    with http_receiver() as rx:
        rx.status = 422
        d = Dispatcher(Outbox(tmp_path / "ob"), [WebhookSink("hook", rx.url)]).start()
        d.submit(alert(1))
        deadline = time.monotonic() + 5
        while not d.outbox.failed("hook") and time.monotonic() < deadline:
            time.sleep(0.01)
        d.close(0.1)
    failed = d.outbox.failed("hook")
    assert len(failed) == 1 and "HTTP 422" in failed[0].with_suffix(".reason").read_text()
    assert d.stats()["hook"]["parked"] == 1


def test_failing_sink_never_slows_the_caller(tmp_path: Path) -> None:
    """submit() costs a local file write even when the sink hangs on every call."""

    class Hanging:
        name = "slow"

        def deliver(self, alert: dict[str, Any]) -> None:
            time.sleep(2)
            raise SinkError("timed out")

        def probe(self) -> None:
            return

        def close(self) -> None:
            return

    d = Dispatcher(Outbox(tmp_path / "ob"), [Hanging(), JsonlSink("file", tmp_path / "a.jsonl")]).start()
    t = time.perf_counter()
    for n in range(20):
        d.submit(alert(n))
    elapsed = time.perf_counter() - t
    assert elapsed < 1.0
    deadline = time.monotonic() + 5
    while len((tmp_path / "a.jsonl").read_bytes().splitlines() if (tmp_path / "a.jsonl").exists() else []) < 20:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    d.stopping.set()


def test_syslog_tcp_reconnects_when_the_receiver_closed_the_connection() -> None:
    """A receiver (or load balancer) that closes idle connections loses no alert: the sink reconnects
    instead of writing the next alert into the dead connection and reporting it delivered."""
    import threading

    got: list[bytes] = []
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:  # one frame per connection, then close it
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                buf = b""
                try:
                    while b" " not in buf or len(buf.split(b" ", 1)[1]) < int(buf.split(b" ", 1)[0]):
                        chunk = conn.recv(65535)
                        if not chunk:
                            break
                        buf += chunk
                except OSError:
                    continue
                if b" " in buf:
                    got.append(buf.split(b" ", 1)[1])
                conn.shutdown(socket.SHUT_RDWR)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    sink = SyslogSink("siem", "127.0.0.1", srv.getsockname()[1], protocol="tcp", timeout_s=2)
    try:
        for n in range(3):
            sink.deliver(alert(n))
            deadline = time.monotonic() + 5
            while len(got) < n + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.1)  # the receiver's close reaches the sink before the next alert
    finally:
        sink.close()
        stop.set()
        th.join(2)
        srv.close()
    assert [m.rsplit(b"#", 1)[1] for m in got] == [b"0", b"1", b"2"]
