"""A loopback TCP proxy that injects faults between a real client and a test backend.

``FaultProxy(("127.0.0.1", port))`` listens on a free loopback port and forwards to the
backend; tests point the SDK at ``proxy.address``/``proxy.url`` and switch faults at run time:

* ``PASS``: forward untouched;
* ``DELAY``: hold the request (or the connection) for ``delay`` seconds, then forward it;
* ``RESET``: abort with a TCP RST (``SO_LINGER`` 0, then close), as a crashed peer or a
  load balancer dropping the flow does;
* ``CLOSE``: close cleanly (FIN) without an answer;
* ``RESPOND``: answer with canned bytes (``http_response(503)``) without reaching the backend;
* ``LOSE_RESPONSE``: forward the request, let the backend act on it, then reset the client
  before it sees the answer (the case that tells idempotent writes from the others).

Granularity. With ``http=True`` the proxy parses HTTP/1.1 request boundaries
(``Content-Length`` or chunked bodies) and decides **per request**, so keep-alive
connections need no special client setup: a pooled connection gets the same fault odds as
a fresh one, and a canned response keeps the connection usable. With ``http=False`` (gRPC's
HTTP/2 multiplexes many calls on one connection, so its requests cannot be told apart
without an HTTP/2 parser) it decides **per connection**, when a connection is accepted;
``RESPOND`` and ``LOSE_RESPONSE`` need ``http=True``. A request with
``Expect: 100-continue`` switches its connection to plain forwarding (no client used here
sends one).

Every decision draws from one ``random.Random(seed)``, so a single-threaded test sees the
same fault sequence on every run. ``connections``, ``requests``, ``faults``,
``request_log`` and ``heads`` record what happened. ``with FaultProxy(...) as proxy:``
stops the listener and every connection thread on exit (``stop()`` joins them).
"""

from __future__ import annotations

import enum
import random
import re
import select
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from typing_extensions import Self

_CHUNK = 65536
_POLL = 0.05  # seconds between checks of the stop flag in blocking loops


class Fault(str, enum.Enum):
    PASS = "pass"
    DELAY = "delay"
    RESET = "reset"
    CLOSE = "close"
    RESPOND = "respond"
    LOSE_RESPONSE = "lose_response"


@dataclass(frozen=True)
class Rule:
    """What to do with a request (or connection) that ``match``es, with ``probability``.

    ``times``: inject at most this many faults, then pass everything (None: no limit).
    ``match``: a regex searched in the request head (request line and headers, latin-1);
    None matches everything. Only with ``http=True``.
    """

    fault: Fault
    probability: float = 1.0
    delay: float = 0.0
    response: bytes = b""
    times: int | None = None
    match: str | None = None


def http_response(status: int, body: bytes = b"", *, reason: str | None = None,
                  content_type: str = "text/plain", headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response with a ``Content-Length`` (so keep-alive survives it)."""
    reasons = {400: "Bad Request", 403: "Forbidden", 429: "Too Many Requests", 500: "Internal Server Error",
               502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
    lines = [f"HTTP/1.1 {status} {reason or reasons.get(status, 'Error')}",
             f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


SERVICE_UNAVAILABLE = http_response(503, b"service unavailable (injected)\n")


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def request_end(buf: bytes | bytearray) -> int | None:
    """Length of the first complete HTTP request in ``buf``, or None if it is not all there yet.

    Raises ``ValueError`` on a request it cannot frame (the connection is then forwarded raw).
    """
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    body_start = head_end + 4
    headers = _headers(bytes(buf[:head_end]))
    if "chunked" in headers.get("transfer-encoding", "").lower():
        pos = body_start
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buf[pos:line_end]).split(b";")[0].strip() or b"x", 16)
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", line_end)
                if buf[line_end:line_end + 4] == b"\r\n\r\n":
                    return line_end + 4
                if trailer_end < 0:
                    return None
                return trailer_end + 4
            pos = line_end + 2 + size + 2
            if pos > len(buf):
                return None
    length = int(headers.get("content-length", "0") or 0)
    end = body_start + length
    return end if len(buf) >= end else None


def _headers(head: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out


class FaultProxy:
    """Forward ``127.0.0.1:<free port>`` to ``upstream``, injecting the configured fault."""

    def __init__(self, upstream: tuple[str, int], *, http: bool = True, seed: int = 0,
                 upstream_timeout: float = 5.0) -> None:
        self.upstream = upstream
        self.http = http
        self.upstream_timeout = upstream_timeout
        self.connections = 0
        self.requests = 0
        self.faults: Counter[Fault] = Counter()
        self.request_log: list[str] = []  # request lines seen (http=True), in order
        self.heads: list[str] = []  # whole request heads (line and headers), in order
        self._rng = random.Random(seed)
        self._rule = Rule(Fault.PASS)
        self._left: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: set[threading.Thread] = set()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_POLL)
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def address(self) -> str:
        """``host:port`` (a gRPC target)."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> FaultProxy:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop accepting, drop every open connection and join every thread the proxy started."""
        self._stop.set()
        if self._acceptor.is_alive():
            self._acceptor.join(timeout=5)
        self._listener.close()
        self.disconnect_all()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def live_threads(self) -> int:
        with self._lock:
            return sum(t.is_alive() for t in self._threads) + int(self._acceptor.is_alive())

    # -- configuration -----------------------------------------------------------------

    def set(self, fault: Fault, probability: float = 1.0, *, delay: float = 0.0, response: bytes = b"",
            times: int | None = None, match: str | None = None) -> None:
        """Replace the current rule (see ``Rule``)."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability is in [0, 1]")
        if not self.http and (fault in (Fault.RESPOND, Fault.LOSE_RESPONSE) or match is not None):
            raise ValueError(f"{fault.value}/match need http=True: a raw connection has no request boundaries")
        if fault is Fault.RESPOND and not response:
            raise ValueError("RESPOND needs response bytes, e.g. http_response(503)")
        with self._lock:
            self._rule = Rule(fault, probability, delay, response, times, match)
            self._left = times

    def pass_through(self) -> None:
        self.set(Fault.PASS)

    def down(self) -> None:
        """The backend is gone: existing connections drop, every new request is reset."""
        self.set(Fault.RESET)
        self.disconnect_all()

    def disconnect_all(self) -> None:
        """Reset every open connection (clients must reconnect, as after a backend restart)."""
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def injected(self) -> int:
        """Faults injected so far (every kind but PASS)."""
        with self._lock:
            return sum(n for f, n in self.faults.items() if f is not Fault.PASS)

    def reset_counts(self) -> None:
        with self._lock:
            self.connections = self.requests = 0
            self.faults.clear()
            self.request_log.clear()
            self.heads.clear()

    def _decide(self, head: str | None) -> Rule:
        with self._lock:
            rule = self._rule
            if head is not None:
                self.requests += 1
                self.request_log.append(head.split("\r\n", 1)[0])
                self.heads.append(head)
            chosen = rule
            skip = rule.fault is Fault.PASS or self._left == 0 or (
                rule.match is not None and (head is None or re.search(rule.match, head) is None)
            )
            # the RNG is drawn only for eligible requests, so the sequence does not depend on others
            if skip or self._rng.random() >= rule.probability:
                chosen = Rule(Fault.PASS)
            elif self._left is not None:
                self._left -= 1
            self.faults[chosen.fault] += 1
            return chosen

    # -- connections -------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # forward small segments at once
            with self._lock:
                self.connections += 1
                thread = threading.Thread(target=self._serve, args=(client,), name="faultproxy-conn", daemon=True)
                self._threads = {t for t in self._threads if t.is_alive()}
                self._threads.add(thread)
                self._sockets.add(client)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            if not self.http:
                rule = self._decide(None)
                if not self._apply_connection_rule(rule, client):
                    return
            try:
                upstream = socket.create_connection(self.upstream, timeout=self.upstream_timeout)
                upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                reset(client)  # backend really down: the client sees what it would see behind a balancer
                return
            with self._lock:
                self._sockets.add(upstream)
            self._pump(client, upstream)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(client)
                if upstream is not None:
                    self._sockets.discard(upstream)
            for sock in (client, upstream):
                if sock is not None:
                    try:
                        sock.close()
                    except OSError:
                        pass

    def _apply_connection_rule(self, rule: Rule, client: socket.socket) -> bool:
        """Act on a per-connection decision; False when the connection is finished."""
        if rule.fault is Fault.DELAY:
            return not self._stop.wait(rule.delay)
        if rule.fault is Fault.RESET:
            reset(client)
            return False
        if rule.fault is Fault.CLOSE:
            client.shutdown(socket.SHUT_RDWR)
            return False
        return True

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        """Forward both ways; in HTTP mode, hold each request until it is complete and judged."""
        parse = self.http
        pending = bytearray()
        while not self._stop.is_set():
            readable, _, _ = select.select([client, upstream], [], [], _POLL)
            if upstream in readable:
                data = upstream.recv(_CHUNK)
                if not data:
                    return
                client.sendall(data)
            if client in readable:
                data = client.recv(_CHUNK)
                if not data:
                    return
                if not parse:
                    upstream.sendall(data)
                    continue
                pending += data
                while True:
                    try:
                        end = request_end(pending)
                    except ValueError:
                        end = None
                        parse = False
                    head_end = pending.find(b"\r\n\r\n")
                    expect = _headers(bytes(pending[:head_end])).get("expect", "") if head_end >= 0 else ""
                    expects = "100-continue" in expect.lower()
                    if end is None and parse and expects:
                        parse = False  # the client waits for the server before sending the body
                    if not parse:
                        upstream.sendall(pending)
                        pending.clear()
                        break
                    if end is None:
                        break
                    request = bytes(pending[:end])
                    del pending[:end]
                    head = request[: request.find(b"\r\n\r\n")].decode("latin-1")
                    if not self._apply_request_rule(self._decide(head), request, client, upstream):
                        return

    def _apply_request_rule(self, rule: Rule, request: bytes, client: socket.socket, upstream: socket.socket) -> bool:
        """Act on one complete request; False when the connection is finished."""
        if rule.fault is Fault.RESPOND:
            client.sendall(rule.response)
            return True
        if rule.fault is Fault.LOSE_RESPONSE:
            # the backend acts on the request; its answer never reaches the client
            upstream.sendall(request)
            readable, _, _ = select.select([upstream], [], [], self.upstream_timeout)
            if readable:
                upstream.recv(_CHUNK)
            reset(client)
            return False
        # pass, delay, reset and close act as on a connection; the whole request was read, so a
        # close sends a FIN (unread data would turn it into a RST)
        if not self._apply_connection_rule(rule, client):
            return False
        upstream.sendall(request)
        return True


def proxy_for(url: str, *, seed: int = 0) -> FaultProxy:
    """A (not yet started) proxy in front of the host and port of ``url``."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return FaultProxy((parts.hostname, parts.port), seed=seed)
