"""A loopback server that never finishes answering (the slow-drip fault), and a dead port.

``SlowDrip()`` listens on a free loopback port, accepts every connection, reads and discards
whatever the client sends, and answers one byte every ``interval`` seconds without ever
completing the response. A client whose timeouts are per socket read (requests, urllib3,
botocore, the Kubernetes client: all of them) never times out against it, because every read
gets its byte in time; only a total deadline per call ends the call. It is how secretkit tests
``RetryPolicy.deadline`` and ``attempt_timeout``, and how a third-party driver's author can
check that a store over their driver cannot hang.

Modes:

* ``"http"`` (default): an HTTP/1.1 response head that never ends, a status line and then a
  header line that grows by one byte per tick;
* ``"http2"``: just enough HTTP/2 for a gRPC client to send its call: a SETTINGS frame and the
  ACK of the client's at once, then PING frames dribbled byte by byte, so the connection looks
  alive and the call never gets an answer;
* ``"silent"``: accept, read, never send a byte.

One thread serves every connection (a selector), so a test that counts threads sees only that
one. ``connections`` counts accepted connections and ``open_connections`` those still open (a
client that leaks sockets shows here). ``stop()``, or leaving ``with``, closes the listener and
every connection.

``dead_port()`` is a loopback port nothing listens on: connecting is refused at once.
"""

from __future__ import annotations

import itertools
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from typing_extensions import Self

Mode = Literal["http", "http2", "silent"]

#: An HTTP/2 frame header: 24-bit length, type, flags, 31-bit stream id.
_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
_PING = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"slowdrip"


def _drip(mode: Mode) -> tuple[bytes, Iterator[int]]:
    """What a connection gets at once, and then byte by byte."""
    if mode == "http":
        return b"", itertools.chain(b"HTTP/1.1 200 OK\r\nX-Slow-Drip: ", itertools.repeat(ord("a")))
    if mode == "http2":
        return _SETTINGS + _SETTINGS_ACK, itertools.chain.from_iterable(itertools.repeat(_PING))
    return b"", iter(())


class SlowDrip:
    """A loopback server answering one byte every ``interval`` seconds, never completing."""

    def __init__(self, *, interval: float = 1.5, mode: Mode = "http") -> None:
        self.interval = interval
        self.mode = mode
        self.connections = 0
        self._conns: dict[socket.socket, Iterator[int]] = {}
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._stopped = False
        self._thread = threading.Thread(target=self._serve, name="slowdrip", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` (a gRPC target)."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.address}"

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def start(self) -> SlowDrip:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection; waits for the serving thread."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._close_all()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- serving --------------------------------------------------------------------------

    def _serve(self) -> None:
        next_tick = time.monotonic() + self.interval
        while not self._stopped:
            for key, _ in self._selector.select(max(0.0, next_tick - time.monotonic())):
                if key.fileobj is self._wake_r:
                    return
                if key.fileobj is self._listener:
                    self._accept()
                else:
                    self._drain(key.fileobj)  # type: ignore[arg-type]
            if time.monotonic() >= next_tick:
                next_tick += self.interval
                self._tick()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            conn.setblocking(False)
            now, later = _drip(self.mode)
            try:
                if now:
                    conn.sendall(now)
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._conns[conn] = later
                self.connections += 1
            self._selector.register(conn, selectors.EVENT_READ)

    def _drain(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client closed (or reset) its end
            self._close(conn)

    def _tick(self) -> None:
        with self._lock:
            conns = list(self._conns.items())
        for conn, later in conns:
            byte = next(later, None)
            if byte is None:
                continue
            try:
                conn.send(bytes((byte,)))
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._close(conn)

    def _close(self, conn: socket.socket) -> None:
        with self._lock:
            known = self._conns.pop(conn, None) is not None
        if known:
            try:
                self._selector.unregister(conn)
            except (KeyError, ValueError):
                pass
            conn.close()

    def _close_all(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns), {}
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()
        self._selector.close()


def dead_port() -> int:
    """A loopback port nothing listens on (bound, then released: connecting is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
