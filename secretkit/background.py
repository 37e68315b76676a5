"""A store's background worker: one daemon thread running jobs in the order they were given.

The cache hands it refresh-ahead loads; submitting never blocks the reader that triggers one,
and ``stop`` ends the thread (a store's ``close`` calls it through ``Cache.close``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

_log = logging.getLogger("secretkit.cache")


class Worker:
    """One daemon thread running background jobs (cache refreshes) in order.

    Submitting is a non-blocking queue put, so the reader that triggers a refresh returns at
    once; one thread suffices because refresh-ahead leaves ``(1 - refresh_ahead) * ttl`` for
    each refresh to finish before its entry expires.
    """

    def __init__(self, name: str = "secretkit-cache-refresh") -> None:
        self._queue: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], Any]) -> None:
        self._queue.put(job)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                job()
            except BaseException:  # noqa: BLE001 - a refresh publishes its errors to its flight; the worker must not die
                _log.debug("background cache refresh failed", exc_info=True)

    def stop(self) -> None:
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
