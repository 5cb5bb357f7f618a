"""Real local alert receivers, for tests and the demo: an HTTP webhook server, UDP and TCP syslog sockets."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HttpReceiver:
    """Collects JSON POST bodies; ``status`` is what it answers (set 503 to play dead)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.status = 200
        self.hits = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("content-length", 0))
                data = self.rfile.read(n)
                receiver.hits += 1
                if receiver.status < 300:
                    receiver.bodies.append(json.loads(data))
                    receiver.times.append(time.monotonic())
                self.send_response(receiver.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``n`` bodies arrived (or the timeout); return what arrived."""
        deadline = time.monotonic() + timeout
        while len(self.bodies) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.bodies

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    """A webhook receiver for the block's duration."""
    r = HttpReceiver()
    try:
        yield r
    finally:
        r.close()


class SyslogReceiver:
    """UDP datagrams or TCP octet-counted frames, collected as raw messages."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.messages: list[bytes] = []
        kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        if protocol == "tcp":
            self.sock.listen()
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                if self.protocol == "udp":
                    self.messages.append(self.sock.recv(65535))
                else:
                    conn, _ = self.sock.accept()
                    threading.Thread(target=self._read_frames, args=(conn,), daemon=True).start()
            except (TimeoutError, OSError):
                continue

    def _read_frames(self, conn: socket.socket) -> None:
        buf = b""
        conn.settimeout(0.1)
        with conn:
            while not self.stop.is_set():
                try:
                    chunk = conn.recv(65535)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b" " in buf:
                    length, rest = buf.split(b" ", 1)
                    if len(rest) < int(length):
                        break
                    self.messages.append(rest[: int(length)])
                    buf = rest[int(length):]

    def wait(self, n: int, timeout: float = 10.0) -> list[bytes]:
        """Wait until ``n`` messages arrived (or the timeout); return what arrived."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.messages

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@contextmanager
def syslog_receiver(protocol: str) -> Iterator[SyslogReceiver]:
    """A syslog receiver (``udp`` or ``tcp``) for the block's duration."""
    r = SyslogReceiver(protocol)
    try:
        yield r
    finally:
        r.close()

