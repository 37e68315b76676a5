"""Retry policy: backoff with full jitter, only for transient portable codes (tenacity).

``call`` runs a blocking call's attempts on the calling thread; ``call_async`` runs awaitable
attempts and backs off with ``asyncio.sleep``, so an event loop never sleeps in a retry. A
blocking call run for a caller that may give up (an asyncio task cancelled while the call runs
in a worker thread) runs under ``abandon_when(event)``: once the event is set, no further
attempt starts and a backoff in progress ends at once.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import tenacity
from pydantic import BaseModel, ConfigDict, Field

from secretkit.errors import SecretError, UnavailableError

T = TypeVar("T")


class RetryPolicy(BaseModel):
    """When and how often a failed backend call is tried again.

    Only errors whose code is transient (throttled, unavailable, deadline exceeded) are
    retried; writes only where the driver makes them idempotent. The wait before retry *n*
    is uniform in ``[0, min(max_backoff, initial_backoff * 2**n))`` (full jitter).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(4, ge=1, description="total attempts, the first included")
    initial_backoff: float = Field(0.2, ge=0, description="seconds; scale of the first wait")
    max_backoff: float = Field(5.0, ge=0, description="seconds; cap of any one wait")
    deadline: float | None = Field(30.0, gt=0, description="seconds for all attempts together")

    @classmethod
    def none(cls) -> RetryPolicy:
        """One attempt, no retries."""
        return cls(max_attempts=1)


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


def call(policy: RetryPolicy, fn: Callable[[], T], *, retry: bool = True, sleep: Callable[[float], None] | None = None) -> tuple[T, int]:
    """Run ``fn`` under ``policy``; return its result and the number of attempts made.

    When retries are exhausted, raise ``UnavailableError`` carrying the attempt count, with
    the last error as its cause.
    """
    if not retry or policy.max_attempts == 1:
        return fn(), 1
    stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(policy.max_attempts)
    if policy.deadline is not None:
        stop = stop | tenacity.stop_after_delay(policy.deadline)
    abandoned = _abandoned.get()
    if abandoned is not None:
        stop = stop | tenacity.stop_when_event_set(abandoned)
        if sleep is None:
            event = abandoned

            def sleep(seconds: float) -> None:  # a backoff ends when the caller gives up
                event.wait(seconds)
    retrying = tenacity.Retrying(
        stop=stop,
        wait=tenacity.wait_random_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff),
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
            return fn()
        except BaseException as exc:
            last = exc
            raise

    try:
        return retrying(attempt), attempts
    except SecretError as exc:
        if not exc.transient or attempts == 1:
            raise
        raise UnavailableError(
            f"gave up after {attempts} attempts; last error: {exc.code.value}: {exc.message}",
            name=exc.name,
            backend=exc.backend,
            attempts=attempts,
        ) from exc


async def call_async(
    policy: RetryPolicy, fn: Callable[[], Awaitable[T]], *, retry: bool = True,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> tuple[T, int]:
    """``call`` for awaitable attempts: ``fn()`` makes a fresh awaitable per attempt, and the
    backoff between attempts is ``asyncio.sleep`` (or ``sleep``), never a blocking sleep.
    Same policy, same errors, same attempt count; cancelling the caller ends it at once."""
    if not retry or policy.max_attempts == 1:
        return await fn(), 1
    import asyncio  # here, not at module top: ``import secretkit`` must not import asyncio

    stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(policy.max_attempts)
    if policy.deadline is not None:
        stop = stop | tenacity.stop_after_delay(policy.deadline)
    retrying = tenacity.AsyncRetrying(
        stop=stop,
        wait=tenacity.wait_random_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff),
        retry=tenacity.retry_if_exception(_retryable),
        reraise=True,
        sleep=sleep or asyncio.sleep,
    )
    attempts = 0

    async def attempt() -> T:
        nonlocal attempts
        attempts += 1
        return await fn()

    try:
        return await retrying(attempt), attempts
    except SecretError as exc:
        if not exc.transient or attempts == 1:
            raise
        raise UnavailableError(
            f"gave up after {attempts} attempts; last error: {exc.code.value}: {exc.message}",
            name=exc.name,
            backend=exc.backend,
            attempts=attempts,
        ) from exc
