"""A loopback HTTP server that records Vault API requests and answers from a script.

For what a dev server cannot show: the Kubernetes login request (no TokenReview API here),
and status codes a healthy server does not produce (500, 502, 413, a reply that never
comes). Replies use ``Content-Type: application/json`` exactly, as hvac requires to parse
``{"errors": [...]}``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int
    body: Any = None
    delay: float = 0.0


Responder = Callable[[Request], Reply]


@dataclass
class Recorder:
    address: str
    requests: list[Request] = field(default_factory=list)


def envelope(data: Any = None, auth: Any = None) -> dict[str, Any]:
    """Vault's success envelope with all nine keys."""
    return {"request_id": "00000000-0000-0000-0000-000000000000", "lease_id": "", "renewable": False,
            "lease_duration": 0, "data": data, "wrap_info": None, "warnings": None, "auth": auth,
            "mount_type": "kv"}


@contextmanager
def serve(respond: Responder) -> Iterator[Recorder]:
    """Run the recorder on a free loopback port for the duration of the block."""
    recorder = Recorder("")

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            recorder.requests.append(request)
            reply = respond(request)
            if reply.delay:
                time.sleep(reply.delay)
            payload = b"" if reply.body is None else json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (timeout tests)

        do_GET = do_POST = do_PUT = do_DELETE = do_LIST = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    recorder.address = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
