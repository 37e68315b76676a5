"""The fault proxy itself: every mode observable with plain sockets and http.client."""

from __future__ import annotations

import http.client
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from secretkit.testing.faultproxy import SERVICE_UNAVAILABLE, Fault, FaultProxy, http_response, request_end


class _Backend(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[tuple[str, str, bytes]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like every backend the proxy sits in front of
    disable_nagle_algorithm = True  # headers and body go out as two writes; Nagle would hold the second
    server: _Backend

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = bytearray(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.server.seen.append((self.command, self.path, bytes(body)))
        payload = f"ok {self.path} {len(body)}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer


@pytest.fixture
def backend() -> Iterator[_Backend]:
    server = _Backend(("127.0.0.1", 0), _Handler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def proxy(backend: _Backend) -> Iterator[FaultProxy]:
    with FaultProxy(("127.0.0.1", backend.server_address[1]), seed=7) as running:
        yield running
    assert running.live_threads == 0  # every test also checks that stop() leaves no thread behind


def _get(conn: http.client.HTTPConnection, path: str = "/x") -> tuple[int, bytes]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def _conn(proxy: FaultProxy, timeout: float = 2.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)


def test_pass_through_keeps_one_keep_alive_connection(proxy: FaultProxy, backend: _Backend) -> None:
    conn = _conn(proxy)
    assert [_get(conn, f"/{i}") for i in range(3)] == [(200, f"ok /{i} 0".encode()) for i in range(3)]
    conn.close()
    assert (proxy.connections, proxy.requests, proxy.injected) == (1, 3, 0)
    assert [p for _, p, _ in backend.seen] == ["/0", "/1", "/2"]
    assert proxy.request_log == ["GET /0 HTTP/1.1", "GET /1 HTTP/1.1", "GET /2 HTTP/1.1"]


def test_canned_503_is_per_request_and_keeps_the_connection(proxy: FaultProxy, backend: _Backend) -> None:
    proxy.set(Fault.RESPOND, response=SERVICE_UNAVAILABLE, times=1)
    conn = _conn(proxy)
    status, body = _get(conn)
    assert status == 503 and b"injected" in body
    assert _get(conn) == (200, b"ok /x 0")  # same connection, next request reaches the backend
    conn.close()
    assert proxy.connections == 1
    assert len(backend.seen) == 1
    assert proxy.faults[Fault.RESPOND] == 1


def test_delay_holds_the_request(proxy: FaultProxy, backend: _Backend) -> None:
    proxy.set(Fault.DELAY, delay=0.3)
    began = time.perf_counter()
    assert _get(_conn(proxy))[0] == 200
    assert time.perf_counter() - began >= 0.3
    with pytest.raises(TimeoutError):  # a client whose read timeout is shorter gives up
        _get(_conn(proxy, timeout=0.1))


def test_reset_sends_rst_and_never_reaches_the_backend(proxy: FaultProxy, backend: _Backend) -> None:
    proxy.set(Fault.RESET)
    with pytest.raises(ConnectionResetError):
        _get(_conn(proxy))
    assert backend.seen == []
    assert proxy.faults[Fault.RESET] == 1


def test_close_without_answer(proxy: FaultProxy, backend: _Backend) -> None:
    proxy.set(Fault.CLOSE)
    with pytest.raises(http.client.RemoteDisconnected):  # a clean FIN, not a reset
        _get(_conn(proxy))
    assert backend.seen == []


def test_lose_response_lets_the_backend_act(proxy: FaultProxy, backend: _Backend) -> None:
    proxy.set(Fault.LOSE_RESPONSE, match=r"^POST ")
    conn = _conn(proxy)
    assert _get(conn)[0] == 200  # GET does not match
    conn.request("POST", "/write", body=b"payload")
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        conn.getresponse().read()
    assert backend.seen[-1] == ("POST", "/write", b"payload")


def test_probability_is_seeded(backend: _Backend) -> None:
    def run(seed: int) -> list[int]:
        with FaultProxy(("127.0.0.1", backend.server_address[1]), seed=seed) as proxy:
            proxy.set(Fault.RESPOND, 0.3, response=SERVICE_UNAVAILABLE)
            conn = _conn(proxy)
            statuses = [_get(conn)[0] for _ in range(60)]
            conn.close()
            assert proxy.injected == statuses.count(503)
            return statuses

    first = run(1)
    assert first == run(1)  # same seed, same fault sequence
    assert 6 <= first.count(503) <= 30  # ~30% of 60 (the seed fixes the exact count)
    assert first != run(2)


def test_times_limits_the_faults(proxy: FaultProxy) -> None:
    proxy.set(Fault.RESPOND, response=http_response(500), times=2)
    conn = _conn(proxy)
    assert [_get(conn)[0] for _ in range(4)] == [500, 500, 200, 200]


def test_chunked_request_bodies_are_framed(proxy: FaultProxy, backend: _Backend) -> None:
    conn = _conn(proxy)
    conn.request("POST", "/chunked", body=iter([b"abc", b"defg"]), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    assert conn.getresponse().read() == b"ok /chunked 7"
    assert _get(conn)[0] == 200  # the next request on the connection is parsed from the right offset
    assert proxy.requests == 2


def test_down_drops_open_connections(proxy: FaultProxy) -> None:
    conn = _conn(proxy)
    assert _get(conn)[0] == 200
    proxy.down()
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError)):
        _get(conn)
    with pytest.raises(ConnectionResetError):
        _get(_conn(proxy))
    proxy.pass_through()
    assert _get(_conn(proxy))[0] == 200


def test_request_end() -> None:
    assert request_end(b"GET / HTTP/1.1\r\nHost: x\r\n") is None
    assert request_end(b"GET / HTTP/1.1\r\n\r\nGET") == 18
    assert request_end(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab") is None
    assert request_end(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcX") == 41
    chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert request_end(chunked) == len(chunked)
    assert request_end(chunked[:-2]) is None


# -- raw TCP (per connection): what a gRPC channel sees ---------------------------------


class _Echo(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def raw_proxy() -> Iterator[FaultProxy]:
    echo = _Echo(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=echo.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    with FaultProxy(("127.0.0.1", echo.server_address[1]), http=False, seed=3) as proxy:
        yield proxy
    assert proxy.live_threads == 0
    echo.shutdown()
    echo.server_close()


def _echo(proxy: FaultProxy, timeout: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout) as sock:
        sock.sendall(b"ping")
        return sock.recv(16)


def test_raw_pass_and_per_connection_faults(raw_proxy: FaultProxy) -> None:
    assert _echo(raw_proxy) == b"ping"
    raw_proxy.set(Fault.RESET, times=1)
    with pytest.raises(ConnectionResetError):
        _echo(raw_proxy)
    assert _echo(raw_proxy) == b"ping"  # the fault budget is spent
    raw_proxy.set(Fault.CLOSE, times=1)
    assert _echo(raw_proxy) == b""  # EOF without an answer
    raw_proxy.set(Fault.DELAY, delay=0.3, times=1)
    with pytest.raises(TimeoutError):
        _echo(raw_proxy, timeout=0.1)
    assert raw_proxy.connections == 5
    assert raw_proxy.injected == 3


def test_raw_mode_refuses_http_only_faults(raw_proxy: FaultProxy) -> None:
    with pytest.raises(ValueError):
        raw_proxy.set(Fault.RESPOND, response=SERVICE_UNAVAILABLE)
    with pytest.raises(ValueError):
        raw_proxy.set(Fault.LOSE_RESPONSE)


def test_stop_with_open_connections_leaves_no_threads(backend: _Backend) -> None:
    proxy = FaultProxy(("127.0.0.1", backend.server_address[1])).start()
    conns = [_conn(proxy) for _ in range(3)]
    for conn in conns:
        assert _get(conn)[0] == 200  # three idle keep-alive connections, each with a proxy thread
    proxy.stop()
    assert proxy.live_threads == 0
    assert not [t for t in threading.enumerate() if t.name.startswith("faultproxy")]
