"""Retry policy: backoff with full jitter, only for transient portable codes (tenacity)."""

from __future__ import annotations

from collections.abc import Callable
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
    retrying = tenacity.Retrying(
        stop=stop,
        wait=tenacity.wait_random_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff),
        retry=tenacity.retry_if_exception(_retryable),
        reraise=True,
        sleep=sleep or tenacity.nap.sleep,
    )
    attempts = 0

    def attempt() -> T:
        nonlocal attempts
        attempts += 1
        return fn()

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
