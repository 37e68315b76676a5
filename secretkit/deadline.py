"""The time limits of a call, as drivers and the machinery see them: when the running attempt
must end (``time_left``), the SDK timeout that fits in it (``request_timeout``), and how a
call's and an attempt's end are computed from a deadline.

A leaf module: a context variable and the clock, no threads, no I/O. ``retry.py`` sets the
end of each attempt (``attempt_until``); drivers read it through ``secretkit.drivers.base``.
SDK timeouts are per socket read, so a server that answers a byte at a time never trips them:
the store stops waiting for an attempt at its end (``attempts.py``), and ``request_timeout``
makes the requests of an abandoned attempt end too, and none start once its time is spent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import overload

from secretkit.errors import DeadlineExceededError

#: ``time.monotonic()`` by which the running attempt must end; None: no bound.
_attempt_end: ContextVar[float | None] = ContextVar("secretkit_attempt_end", default=None)

#: Seconds an attempt needs at least: a retry that would get less before the deadline is not made.
MIN_ATTEMPT = 0.01


def time_left() -> float | None:
    """Seconds until the running attempt must end (negative once it is over); None outside an
    attempt, or when neither ``deadline`` nor ``attempt_timeout`` bounds it."""
    end = _attempt_end.get()
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


def end_of_call(deadline: float | None) -> float | None:
    """When a call given ``deadline`` seconds must end: never after the enclosing attempt (a
    driver call made inside another call's attempt never outlives it)."""
    end = None if deadline is None else time.monotonic() + deadline
    outer = _attempt_end.get()
    if outer is not None:
        end = outer if end is None else min(end, outer)
    return end


def end_of_attempt(attempt_timeout: float | None, call_end: float | None) -> float | None:
    """When an attempt starting now must end: ``attempt_timeout`` from now, never after ``call_end``."""
    if attempt_timeout is None:
        return call_end
    end = time.monotonic() + attempt_timeout
    return end if call_end is None else min(end, call_end)


@contextmanager
def attempt_until(end: float | None) -> Iterator[None]:
    """Run the block as an attempt that must end at ``end`` (what ``time_left`` reads)."""
    token = _attempt_end.set(end)
    try:
        yield
    finally:
        _attempt_end.reset(token)


def no_time() -> DeadlineExceededError:
    return DeadlineExceededError("the deadline passed before the attempt could start")
