"""The fault proxy itself: each mode is observable with a plain HTTP client."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.doubles.faultproxy import FaultProxy, canned_http


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        payload = json.dumps({"got": body.decode(), "connection": self.headers.get("Connection")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with FaultProxy(("127.0.0.1", server.server_address[1]), seed=7) as p:
        yield p
    server.shutdown()
    server.server_close()


def post(proxy: FaultProxy, body: str = "hello", timeout: float = 5) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)
    try:
        conn.request("POST", "/x", body=body)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_pass_forwards_one_request_per_connection(proxy: FaultProxy) -> None:
    status, doc = post(proxy, "x" * 100_000)
    assert status == 200 and doc["got"] == "x" * 100_000 and doc["connection"] == "close"
    assert proxy.requests == 1 and not proxy.faults


def test_reset_and_close(proxy: FaultProxy) -> None:
    proxy.set("reset")
    with pytest.raises(ConnectionResetError):
        post(proxy)
    proxy.set("close")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        post(proxy)
    assert proxy.faults == {"reset": 1, "close": 1}


def test_canned_response(proxy: FaultProxy) -> None:
    proxy.set("respond", response=canned_http(503, {"message": "busy"}, reason="Service Unavailable"))
    assert post(proxy) == (503, {"message": "busy"})


def test_delay(proxy: FaultProxy) -> None:
    proxy.set("delay", delay=0.3)
    start = time.monotonic()
    assert post(proxy)[0] == 200
    assert time.monotonic() - start >= 0.3


def test_rate_is_seeded_and_per_request(proxy: FaultProxy) -> None:
    proxy.set("respond", rate=0.3, response=canned_http(503))
    statuses = [post(proxy)[0] for _ in range(100)]
    assert 15 <= statuses.count(503) <= 45 and statuses.count(200) == 100 - statuses.count(503)
    assert proxy.faults["respond"] == statuses.count(503) and proxy.requests == 100


def test_limit_heals_after_that_many_faults(proxy: FaultProxy) -> None:
    proxy.set("respond", response=canned_http(403), limit=2)
    assert [post(proxy)[0] for _ in range(4)] == [403, 403, 200, 200]
