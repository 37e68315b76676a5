"""Change notification: call back with each new current value of a secret.

Where the driver can stream changes (``ChangeStream``: Kubernetes' watch API) a thread follows
the stream; elsewhere it polls the driver's cheap ``current_version`` (``VersionProbe``) or,
failing that, a read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from secretkit import forking
from secretkit.drivers.base import ChangeStream, VersionProbe
from secretkit.errors import NotFoundError, SecretError
from secretkit.seam import StoreSeam
from secretkit.secret import Secret

logger = logging.getLogger("secretkit")


class Watcher:
    """Calls ``callback(secret)`` from a daemon thread whenever the secret's current version changes.

    Where the driver can stream changes (``watch_versions``: Kubernetes' watch API) the thread
    follows the stream, so a change is reported as soon as the server sends it; if the stream
    breaks, the watcher checks once by polling, backs off and resumes the stream. Elsewhere it
    polls every ``interval`` seconds with the driver's cheap ``current_version`` (no value
    transferred) or a read. Each change first drops the name from the store's cache, so the
    callback and every later ``get`` see the new value. ``stop()`` (or leaving the ``with``
    block) returns at once; no callback runs after it.

    A watcher still running when the process forks runs in the child too: the child starts a
    thread of its own, which calls ``callback`` in the child from the last version seen.
    """

    def __init__(self, store: StoreSeam, name: str, callback: Callable[[Secret], Any], interval: float = 30.0):
        self.store, self.name, self.callback, self.interval = store, name, callback, interval
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by a change event of the store's (secretkit.changes)
        self._lock = threading.Lock()
        self._seen: str | None = self._version()
        self.errors = 0
        driver = store.driver
        self._stream = driver.watch_versions if isinstance(driver, ChangeStream) else None
        self.streaming = self._stream is not None
        self._thread = self._new_thread()
        forking.at_fork(self, Watcher._after_fork)
        self._thread.start()

    def _new_thread(self) -> threading.Thread:
        target = self._follow if self.streaming else self._run
        return threading.Thread(target=target, name=f"secretkit-watch-{self.name}", daemon=True)

    def _after_fork(self) -> None:
        """In a forked child the watch thread does not exist: start the child's own (the store's
        pools and cache were reset first, having registered first), unless the watch was stopped."""
        self._lock = threading.Lock()
        if self._stop.is_set():
            return
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = self._new_thread()
        self._thread.start()

    def _version(self) -> str | None:
        driver = self.store.driver
        try:
            if isinstance(driver, VersionProbe):
                return self.store.call_driver("watch", self.name, lambda: driver.current_version(self.name))
            return self.store.get(self.name, refresh=True).version
        except NotFoundError:
            return None

    def poll(self) -> bool:
        """Check once; True if a change was reported."""
        try:
            version = self._version()
        except SecretError:
            self.errors += 1  # a transient outage must not kill the watch
            return False
        return self._changed(version)

    def _changed(self, version: str | None) -> bool:
        """Report ``version`` if it is new. A deletion (None) drops the cached value but is not
        reported: there is no new value to reconnect with; a re-created secret is."""
        with self._lock:  # the thread and an explicit poll() must not report one change twice
            if version == self._seen or self._stop.is_set():
                return False
            self._seen = version
            self.store.invalidate(self.name)
            if version is None:
                return False
            secret = self.store.get(self.name)
        try:
            self.callback(secret)
        except Exception:  # a failing callback must not end the watch
            self.errors += 1
            logger.warning("watch callback for %s failed", self.name, exc_info=True)
        return True

    def wake(self) -> None:
        """Check now rather than at the next poll: the store heard a change of this secret."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.poll()

    def _follow(self) -> None:
        failures = 0
        stream = self._stream
        assert stream is not None
        while not self._stop.is_set():
            try:
                for version in stream(self.name, self._stop):
                    failures = 0
                    self._changed(version)
            except Exception:  # noqa: BLE001 - any stream failure: poll once so nothing is missed, back off
                self.errors += 1
                failures += 1
                self.poll()
                self._stop.wait(min(self.interval, 0.1 * 2 ** min(failures, 8)))

    def stop(self, timeout: float = 2.0) -> None:
        """Stop watching: no callback runs afterwards; waits up to ``timeout`` seconds for the
        thread (a streaming driver cuts its open request; an older Kubernetes client may let
        it linger until the request's ``watch_timeout`` ends, harmlessly)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=timeout)

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
