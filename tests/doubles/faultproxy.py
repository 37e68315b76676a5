"""A loopback TCP proxy that injects network faults between a real client and a test server.

Put it in front of moto's server, the Kubernetes or GCP REST double, or the OpenBao dev server,
and point the SDK at ``proxy.url``. Faults are chosen with a seeded RNG, so runs repeat:

* ``pass``    — forward untouched;
* ``delay``   — wait ``delay`` seconds, then forward;
* ``reset``   — abort the connection with a TCP RST (SO_LINGER 0), as a crashed peer does;
* ``close``   — read the request, then close without answering (a server dying mid-request);
* ``respond`` — answer with the canned bytes given (e.g. ``canned_http(503)``), then close.

In ``http`` mode (the default) the decision is taken **per request**: the proxy reads one
request (head and ``Content-Length`` body), and a request that passes is sent to the server on
a fresh connection with ``Connection: close``, so the server's answer ends with the connection
and tells the client not to reuse it. Each request therefore meets its own fault draw — with
keep-alive a proxy that decides per connection would let one lucky connection carry every
later request. In ``raw`` mode (gRPC's HTTP/2) the decision is per connection.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from typing import Any

MODES = ("pass", "delay", "reset", "close", "respond")


def canned_http(status: int, body: dict[str, Any] | None = None, *, reason: str = "Injected",
                content_type: str = "application/json", headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response with a JSON body, ending the connection."""
    payload = json.dumps(body or {}).encode()
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}", f"Content-Length: {len(payload)}",
             "Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class FaultProxy:
    """``with FaultProxy(("127.0.0.1", port)) as proxy: ... proxy.set("reset", rate=0.3)``."""

    def __init__(self, upstream: tuple[str, int], *, http: bool = True, seed: int = 0) -> None:
        self.upstream, self.http = upstream, http
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self.mode, self.rate, self.delay, self.response = "pass", 1.0, 0.0, b""
        self.limit: int | None = None
        self.connections = 0
        self.requests = 0
        self.faults: Counter[str] = Counter()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, mode: str, rate: float = 1.0, *, delay: float = 0.0, response: bytes = b"",
            limit: int | None = None) -> None:
        """Inject ``mode`` into a ``rate`` share of requests (or connections in raw mode);
        with ``limit``, only that many times, then pass everything again."""
        if mode not in MODES:
            raise ValueError(f"mode is one of {MODES}")
        with self._lock:
            self.mode, self.rate, self.delay, self.response, self.limit = mode, rate, delay, response, limit

    def heal(self) -> None:
        self.set("pass")

    def reset_counts(self) -> None:
        with self._lock:
            self.connections, self.requests = 0, 0
            self.faults.clear()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            live = list(self._open)
        for sock in live:  # wake threads blocked in recv
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in list(self._threads):
            thread.join(timeout=2)
        self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="fault-proxy")
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    # -- the proxy ---------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self.connections += 1
                self._open.add(conn)
            conn.settimeout(5)
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        try:
            (self._serve_http if self.http else self._serve_raw)(conn)
        finally:
            with self._lock:
                self._open.discard(conn)

    def _draw(self) -> tuple[str, float, bytes]:
        with self._lock:
            mode = self.mode if self.mode != "pass" and self._rng.random() < self.rate else "pass"
            if mode != "pass":
                self.faults[mode] += 1
                if self.limit is not None:
                    self.limit -= 1
                    if self.limit <= 0:
                        self.mode = "pass"
            return mode, self.delay, self.response

    def _serve_http(self, conn: socket.socket) -> None:
        with conn:
            request = _read_request(conn)
            if request is None:
                return
            with self._lock:
                self.requests += 1
            mode, delay, response = self._draw()
            if self._fault(conn, mode, delay, response):
                return
            try:
                with socket.create_connection(self.upstream, timeout=30) as up:
                    up.sendall(_close_after(request))
                    while chunk := up.recv(65536):
                        conn.sendall(chunk)
            except OSError:
                _abort(conn)

    def _serve_raw(self, conn: socket.socket) -> None:
        with conn:
            mode, delay, response = self._draw()
            if self._fault(conn, mode, delay, response):
                return
            try:
                up = socket.create_connection(self.upstream, timeout=30)
            except OSError:
                _abort(conn)
                return
            with up:
                conn.settimeout(None)
                up.settimeout(None)
                self._spawn(_pump, up, conn)
                _pump(conn, up)

    def _fault(self, conn: socket.socket, mode: str, delay: float, response: bytes) -> bool:
        """Apply ``mode``; True if the request must not reach the server."""
        if mode == "delay":
            time.sleep(delay)
            return False
        if mode == "reset":
            _abort(conn)
        elif mode == "respond":
            conn.sendall(response)
        return mode in ("reset", "close", "respond")


def _abort(conn: socket.socket) -> None:
    """Close with RST instead of FIN: the peer sees 'connection reset by peer'."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            body += chunk
    except OSError:
        return None
    return head + b"\r\n\r\n" + body


def _close_after(request: bytes) -> bytes:
    """The request with ``Connection: close``: one request per upstream connection."""
    head, _, body = request.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n")
             if line.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
