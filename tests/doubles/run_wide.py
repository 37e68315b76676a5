"""One server for the whole test run, shared by the session fixtures of every module that asks:
started by its first user, stopped by its last (and at exit, should a run end without that)."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar


class Stoppable(Protocol):
    def stop(self) -> Any: ...


S = TypeVar("S", bound=Stoppable)


class RunWide(Generic[S]):
    """The users of one shared server (OpenBao, PostgreSQL): ``acquire`` and ``release`` pair up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: S | None = None
        self._users = 0

    def acquire(self, start: Callable[[], S]) -> S:
        """The running server, ``start()``-ed for the first user."""
        with self._lock:
            if self._server is None:
                self._server = start()
                atexit.register(self._server.stop)
            self._users += 1
            return self._server

    def release(self) -> None:
        """One user is done with the server; the last one stops it."""
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._server is not None:
                self._server.stop()
                self._server = None
