"""Single-flight: one load that every concurrent reader of a key waits for.

A thread waits with ``outcome()``; a reader that must not block its thread (an asyncio task)
registers ``add_done_callback`` and reads ``outcome()`` once called back. ``Cache`` makes one
per backend load of a key; the async facade (``aio_pool``) wakes its event loops from them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from secretkit import forking
from secretkit.entries import Negative
from secretkit.errors import NotFoundError
from secretkit.secret import Secret

_log = logging.getLogger("secretkit.cache")


class Flight:
    """One backend load of a key, which concurrent readers of that key wait for.

    A thread waits with ``outcome()``; a reader that must not block its thread (an asyncio
    task) registers ``add_done_callback`` instead and reads ``outcome()`` once called back.
    """

    __slots__ = ("_callbacks", "done", "error", "how", "overtaken", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Secret | None = None
        self.error: BaseException | None = None
        self.how = "miss"
        #: None, or what detached loads of the key answered while this one ran (``mark_of``, or
        #: ``SEVERAL``; see ``Cache._land``): this load's answer may be older, so it may answer only if the same.
        self.overtaken: object = None
        self._callbacks: list[Callable[[Flight], Any]] | None = []

    def outcome(self) -> tuple[Secret, str]:
        self.done.wait()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result, self.how

    def add_done_callback(self, fn: Callable[[Flight], Any]) -> None:
        """Call ``fn(flight)`` once the load has settled: at once (in this thread) if it has,
        else from the thread that settles it. ``fn`` must be quick and must not raise."""
        callbacks = self._callbacks
        if callbacks is not None:
            with _CALLBACK_LOCK:
                if self._callbacks is not None:
                    self._callbacks.append(fn)
                    return
        fn(self)

    def settle(self) -> None:
        """Publish the outcome (``result`` or ``error`` is set): wake the waiting threads, then
        run the done-callbacks."""
        with _CALLBACK_LOCK:
            callbacks, self._callbacks = self._callbacks, None
            self.done.set()
        for fn in callbacks or ():
            try:
                fn(self)
            except BaseException:  # noqa: BLE001 - one waiter's callback must not starve the others
                _log.debug("flight done-callback failed", exc_info=True)

    @classmethod
    def answered(cls, secret: Secret, how: str) -> Flight:
        """A flight that is already settled with ``secret`` (for a reader answered from the cache)."""
        flight = cls()
        flight.result, flight.how = secret, how
        flight.settle()
        return flight


#: ``mark_of`` of a "not found" answer; ``overtaken`` by answers that differ from each other.
ABSENT, SEVERAL = object(), object()


def mark_of(outcome: Secret | BaseException | Negative | None) -> object:
    """What an answer says about the data, to tell whether two answers are the same: a
    secret's version, ``ABSENT`` for "not found", None when it says nothing (other errors)."""
    if isinstance(outcome, Secret):
        return outcome.version
    if isinstance(outcome, (NotFoundError, Negative)):
        return ABSENT
    return None


#: Flights are short-lived and callbacks are rare (only non-blocking readers add them): one
#: lock for all of them is cheaper than one per flight.
_CALLBACK_LOCK = threading.Lock()


@forking.reset_in_child
def _new_callback_lock() -> None:
    global _CALLBACK_LOCK
    _CALLBACK_LOCK = threading.Lock()  # a thread of the parent may have held it at the fork
