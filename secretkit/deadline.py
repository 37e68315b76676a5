"""The time limits of a call, as drivers and the machinery see them: when the running attempt
must end (``time_left``), the SDK timeout that fits in it (``request_timeout``), and how a
call's and an attempt's end are computed from a deadline.

A leaf module: a context variable and the clock, no threads, no I/O. ``retry.py`` sets the
end of each attempt (``ATTEMPT_END``); drivers read it through ``secretkit.drivers.base``.
SDK timeouts are per socket read, so a server that answers a byte at a time never trips them:
the store stops waiting for an attempt at its end (``attempts.py``), and ``request_timeout``
makes the requests of an abandoned attempt end too, and none start once its time is spent.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import overload

from secretkit.errors import DeadlineExceededError

#: ``time.monotonic()`` by which the running attempt must end; None: no bound. Set by the retry
#: machinery around each attempt (``retry.call``), read by everything that runs inside one.
ATTEMPT_END: ContextVar[float | None] = ContextVar("secretkit_attempt_end", default=None)

#: Seconds an attempt needs at least: a retry that would get less before the deadline is not made.
MIN_ATTEMPT = 0.01


def time_left() -> float | None:
    """Seconds until the running attempt must end (negative once it is over); None outside an
    attempt, or when neither ``deadline`` nor ``attempt_timeout`` bounds it."""
    end = ATTEMPT_END.get()
    return None if end is None else end - time.monotonic()


@overload
def request_timeout(limit: float) -> float: ...
@overload
def request_timeout(limit: None) -> float | None: ...
def request_timeout(limit: float | None) -> float | None:
    """The timeout to give one SDK request: ``limit`` (the driver's option; None for none)
    capped at the time left in the running attempt.

    Raises ``DeadlineExceededError`` once that time is spent, so an attempt the store has
    abandoned starts no further request."""
    left = time_left()
    if left is None:
        return limit
    if left <= 0:
        raise DeadlineExceededError("the attempt's time is spent; no further request is sent")
    return left if limit is None else min(limit, left)


def no_time() -> DeadlineExceededError:
    return DeadlineExceededError("the deadline passed before the attempt could start")
