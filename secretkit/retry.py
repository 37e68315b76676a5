"""Retry policy: backoff with full jitter, only for transient portable codes (tenacity), and the
time limits of a call: a ``deadline`` for the whole call and an ``attempt_timeout`` per attempt.

``call`` runs a blocking call's attempts on the calling thread; ``call_async`` runs awaitable
attempts and backs off with ``asyncio.sleep``, so an event loop never sleeps in a retry. A
blocking call run for a caller that may give up (an asyncio task cancelled while the call runs
in a worker thread) runs under ``abandon_when(event)``: once the event is set, no further
attempt starts and a backoff in progress ends at once.

Time limits. Each attempt runs with an end time (``time_left()`` inside it): the earlier of
``attempt_timeout`` from its start and the call's ``deadline``. No backoff sleeps past the
deadline: a wait takes at most half of the time left, so the last attempt gets the rest and
is cut off at the deadline. A call made inside another's attempt (a driver call inside an
async facade's attempt) never outlives that attempt. The time limits themselves (``time_left``,
``request_timeout``, re-exported here) are ``secretkit.deadline``; running an attempt where its
caller can stop waiting for it is ``secretkit.attempts``; the policy model is
``secretkit.policies``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import tenacity

from secretkit.deadline import ATTEMPT_END, MIN_ATTEMPT, no_time, request_timeout, time_left
from secretkit.errors import DeadlineExceededError, SecretError, UnavailableError
from secretkit.policies import RetryPolicy

__all__ = ["RetryPolicy", "abandon_when", "call", "call_async", "request_timeout", "time_left"]

T = TypeVar("T")


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, SecretError) and exc.transient


_abandoned: ContextVar[threading.Event | None] = ContextVar("secretkit_retry_abandoned", default=None)


@contextmanager
def abandon_when(event: threading.Event) -> Iterator[None]:
    """Within this block (this thread or context), ``call`` starts no further attempt once
    ``event`` is set, and a backoff wait ends as soon as it is: the caller has given up."""
    token = _abandoned.set(event)
    try:
        yield
    finally:
        _abandoned.reset(token)


def _end_of_call(policy: RetryPolicy) -> float | None:
    """When the whole call must end: its deadline, and never after the enclosing attempt."""
    end = None if policy.deadline is None else time.monotonic() + policy.deadline
    outer = ATTEMPT_END.get()
    if outer is not None:
        end = outer if end is None else min(end, outer)
    return end


def _end_of_attempt(policy: RetryPolicy, call_end: float | None) -> float | None:
    if policy.attempt_timeout is None:
        return call_end
    end = time.monotonic() + policy.attempt_timeout
    return end if call_end is None else min(end, call_end)


class _Schedule:
    """tenacity's wait and stop for one call. Waits are full jitter, but never more than half of
    the time left before the end of the call, so the next attempt gets the other half; no
    attempt is made that would get less than ``MIN_ATTEMPT``, none beyond ``max_attempts``, and
    none once the caller gave up."""

    def __init__(self, policy: RetryPolicy, end: float | None, abandoned: threading.Event | None) -> None:
        self._jitter = tenacity.wait_random_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff)
        self._attempts = policy.max_attempts
        self._end = end
        self._abandoned = abandoned
        self.by_deadline = False

    def wait(self, state: tenacity.RetryCallState) -> float:
        seconds: float = self._jitter(state)
        if self._end is not None:
            seconds = max(0.0, min(seconds, (self._end - time.monotonic()) / 2))
        # The server's own delay (Retry-After) is a floor, never cut: retrying sooner only earns
        # another refusal. If it does not fit before the deadline, ``stop`` gives up instead.
        failed = state.outcome.exception() if state.outcome is not None else None
        floor = getattr(failed, "retry_after", None)
        return max(seconds, floor) if isinstance(floor, (int, float)) else seconds

    def stop(self, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= self._attempts:
            return True
        if self._abandoned is not None and self._abandoned.is_set():
            return True
        if self._end is not None and self._end - time.monotonic() - state.upcoming_sleep < MIN_ATTEMPT:
            self.by_deadline = True
            return True
        return False


def _gave_up(exc: SecretError, attempts: int, by_deadline: bool) -> UnavailableError:
    why = "the deadline left no time for another attempt" if by_deadline else "out of attempts"
    if by_deadline and exc.retry_after is not None:
        why = f"{why}, the backend having asked to wait {exc.retry_after:g} s"
    return UnavailableError(
        f"gave up after {attempts} attempts ({why}); last error: {exc.code.value}: {exc.message}",
        name=exc.name,
        backend=exc.backend,
        attempts=attempts,
    )


def call(policy: RetryPolicy, fn: Callable[[], T], *, retry: bool = True, sleep: Callable[[float], None] | None = None) -> tuple[T, int]:
    """Run ``fn`` under ``policy``; return its result and the number of attempts made.

    Each attempt runs with its end time set (``time_left()``); no wait runs past the deadline.
    When retries are exhausted, raise ``UnavailableError`` carrying the attempt count, with
    the last error as its cause.
    """
    end = _end_of_call(policy)

    def run_attempt() -> T:
        ends = _end_of_attempt(policy, end)
        if ends is not None and ends <= time.monotonic():
            raise no_time()
        token = ATTEMPT_END.set(ends)
        try:
            return fn()
        finally:
            ATTEMPT_END.reset(token)

    if not retry or policy.max_attempts == 1:
        return run_attempt(), 1
    abandoned = _abandoned.get()
    if abandoned is not None and sleep is None:
        event = abandoned

        def sleep(seconds: float) -> None:  # a backoff ends when the caller gives up
            event.wait(seconds)

    schedule = _Schedule(policy, end, abandoned)
    retrying = tenacity.Retrying(
        stop=schedule.stop,
        wait=schedule.wait,
        retry=tenacity.retry_if_exception(_retryable),
        reraise=True,
        sleep=sleep or tenacity.nap.sleep,
    )
    attempts = 0
    last: BaseException | None = None

    def attempt() -> T:
        nonlocal attempts, last
        if last is not None and abandoned is not None and abandoned.is_set():
            raise last  # given up during the backoff: no further attempt
        attempts += 1
        try:
            return run_attempt()
        except BaseException as exc:
            last = exc
            raise

    try:
        return retrying(attempt), attempts
    except SecretError as exc:
        if not exc.transient or attempts == 1:
            raise
        raise _gave_up(exc, attempts, schedule.by_deadline) from exc


async def call_async(
    policy: RetryPolicy, fn: Callable[[], Awaitable[T]], *, retry: bool = True,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> tuple[T, int]:
    """``call`` for awaitable attempts: ``fn()`` makes a fresh awaitable per attempt, and the
    backoff between attempts is ``asyncio.sleep`` (or ``sleep``), never a blocking sleep.
    Same policy, same time limits (an attempt still running at its end is cancelled and
    counts as ``DeadlineExceededError``), same errors, same attempt count; cancelling the
    caller ends it at once."""
    import asyncio  # here, not at module top: ``import secretkit`` must not import asyncio

    end = _end_of_call(policy)

    async def run_attempt() -> T:
        ends = _end_of_attempt(policy, end)
        if ends is None:
            return await fn()
        left = ends - time.monotonic()
        if left <= 0:
            raise no_time()
        token = ATTEMPT_END.set(ends)
        try:
            task = asyncio.ensure_future(fn())  # the task copies the context: it sees the end
        finally:
            ATTEMPT_END.reset(token)
        try:
            done, _ = await asyncio.wait({task}, timeout=left)
        except BaseException:  # the caller was cancelled: the attempt goes with it
            task.cancel()
            raise
        if task in done:
            return task.result()
        task.cancel()
        task.add_done_callback(_consume)
        raise DeadlineExceededError(f"no answer within the attempt's {left:.3g} s")

    if not retry or policy.max_attempts == 1:
        return await run_attempt(), 1
    schedule = _Schedule(policy, end, None)
    retrying = tenacity.AsyncRetrying(
        stop=schedule.stop,
        wait=schedule.wait,
        retry=tenacity.retry_if_exception(_retryable),
        reraise=True,
        sleep=sleep or asyncio.sleep,
    )
    attempts = 0

    async def attempt() -> T:
        nonlocal attempts
        attempts += 1
        return await run_attempt()

    try:
        return await retrying(attempt), attempts
    except SecretError as exc:
        if not exc.transient or attempts == 1:
            raise
        raise _gave_up(exc, attempts, schedule.by_deadline) from exc


def _consume(task: Any) -> None:
    """Retrieve an abandoned task's outcome, so asyncio does not report it as never retrieved."""
    if not task.cancelled():
        task.exception()
