"""Syslog sink: RFC 5424 messages over UDP (one datagram each) or TCP (RFC 6587 octet counting).

``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [soc2ai@32473 ...] BOM MSG`` with PRI = facility * 8 +
severity (CRITICAL→2 crit, HIGH→3 err, MEDIUM→4 warning, LOW→5 notice). 32473 is the documentation
enterprise number of RFC 5612; SIEMs key on the SD-ID name.
"""

from __future__ import annotations

import os
import select
import socket
from datetime import UTC, datetime
from typing import Any

from soc2ai.monitor.sinks.interface import SinkError, test_event

SYSLOG_SEVERITY = {"CRITICAL": 2, "HIGH": 3, "MEDIUM": 4, "LOW": 5}
SD_ID = "soc2ai@32473"
BOM = "\ufeff"


def _sd_value(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_token(value: str, limit: int) -> str:
    # Header fields are PRINTUSASCII without spaces; "-" is NILVALUE.
    clean = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return clean or "-"


def format_5424(alert: dict[str, Any], *, facility: int = 13, app_name: str = "soc2ai",
                hostname: str | None = None, procid: int | None = None, project: str = "soc2ai") -> bytes:
    """One RFC 5424 message (no transport framing)."""
    pri = facility * 8 + SYSLOG_SEVERITY.get(alert["severity"], 4)
    ts = datetime.fromtimestamp(alert["ts"] / 1_000_000, tz=UTC).isoformat(timespec="microseconds")
    ts = ts.replace("+00:00", "Z")
    host = _header_token(hostname or socket.gethostname(), 255)
    params: dict[str, object] = {"alert": alert["id"], "rule": alert["rule"], "severity": alert["severity"],
              "response": alert["response"], "group": alert["group"], "project": project,
              "records": len(alert.get("records") or ())}
    if alert.get("incident_id"):
        params["incident"] = alert["incident_id"]
    sd = f"[{SD_ID} " + " ".join(f'{k}="{_sd_value(v)}"' for k, v in params.items()) + "]"
    head = (f"<{pri}>1 {ts} {host} {_header_token(app_name, 48)} {procid or os.getpid()} "
            f"{_header_token(alert['kind'].upper(), 32)} {sd} ")
    message = str(alert["message"])
    return head.encode("ascii", "replace") + (BOM + message).encode("utf-8")


def _peer_closed(sock: socket.socket) -> bool:
    """True when the receiver closed (or reset) the connection: syslog receivers never send, so a
    readable socket means end of stream or an error."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):  # reset, or already closed (fileno -1)
        return True


class SyslogSink:
    """Send alerts to a syslog receiver."""

    def __init__(self, name: str, host: str, port: int, *, protocol: str = "udp", facility: int = 13,
                 app_name: str = "soc2ai", project: str = "soc2ai", timeout_s: float = 5.0) -> None:
        self.name = name
        self.addr = (host, port)
        self.protocol = protocol
        self.facility = facility
        self.app_name = app_name
        self.project = project
        self.timeout_s = timeout_s
        self._tcp: socket.socket | None = None

    def _message(self, alert: dict[str, Any]) -> bytes:
        return format_5424(alert, facility=self.facility, app_name=self.app_name, project=self.project)

    def _send_tcp(self, msg: bytes) -> None:
        framed = str(len(msg)).encode() + b" " + msg
        if self._tcp is not None and _peer_closed(self._tcp):
            # sendall() on a connection the receiver already closed still "succeeds" (the bytes go to
            # the kernel, the peer answers with a reset), so the alert would be deleted from the outbox
            # unsent. Reconnect first.
            self._drop()
        for attempt in (0, 1):  # a kept-alive connection may have been closed by the peer: reconnect once
            try:
                if self._tcp is None:
                    self._tcp = socket.create_connection(self.addr, timeout=self.timeout_s)
                self._tcp.sendall(framed)
                return
            except OSError as exc:
                self._drop()
                if attempt:
                    raise SinkError(f"{self.name}: tcp {self.addr[0]}:{self.addr[1]}: {exc}") from exc

    def _send_udp(self, msg: bytes, *, confirm: bool = False) -> None:
        try:
            with socket.socket(self._family(), socket.SOCK_DGRAM) as sock:
                sock.settimeout(0.2 if confirm else self.timeout_s)
                sock.connect(self.addr)
                sock.send(msg)
                if confirm:
                    # A closed UDP port answers with ICMP port-unreachable, surfaced on the next recv.
                    try:
                        sock.recv(1)
                    except TimeoutError:
                        pass
        except ConnectionRefusedError as exc:
            raise SinkError(f"{self.name}: udp {self.addr[0]}:{self.addr[1]}: port unreachable") from exc
        except OSError as exc:
            raise SinkError(f"{self.name}: udp {self.addr[0]}:{self.addr[1]}: {exc}") from exc

    def _family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.addr[0] else socket.AF_INET

    def deliver(self, alert: dict[str, Any]) -> None:
        """Send one message."""
        msg = self._message(alert)
        if self.protocol == "tcp":
            self._send_tcp(msg)
        else:
            self._send_udp(msg)

    def probe(self) -> None:
        """Send a test message (UDP: and wait briefly for a port-unreachable answer)."""
        msg = self._message(test_event(self.project, int(datetime.now(UTC).timestamp() * 1_000_000)))
        if self.protocol == "tcp":
            self._send_tcp(msg)
        else:
            self._send_udp(msg, confirm=True)

    def _drop(self) -> None:
        if self._tcp is not None:
            try:
                self._tcp.close()
            finally:
                self._tcp = None

    def close(self) -> None:
        """Close the TCP connection."""
        self._drop()
