"""A server's requested delay (``Retry-After``) in the store's retry: a floor of the backoff,
never cut, and a reason to give up at once when it does not fit before the deadline."""

from __future__ import annotations

import email.utils
import time

import pytest

from secretkit.drivers.base import retry_after_seconds
from secretkit.errors import SecretError, ThrottledError, UnavailableError
from secretkit.retry import RetryPolicy, call


class Throttled:
    """Fails with ``ThrottledError(retry_after=delay)`` ``times`` times, then answers."""

    def __init__(self, delay: float | None, times: int = 1) -> None:
        self.delay, self.times, self.calls = delay, times, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            error = ThrottledError("slow down")
            error.retry_after = self.delay
            raise error
        return "ok"


def test_retry_after_is_a_floor_of_the_backoff() -> None:
    waits: list[float] = []
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.01, deadline=None)
    assert call(policy, Throttled(2.5, times=2), sleep=waits.append) == ("ok", 3)
    assert waits == [2.5, 2.5]


def test_without_retry_after_the_policy_decides() -> None:
    waits: list[float] = []
    policy = RetryPolicy(max_attempts=2, initial_backoff=0.001, max_backoff=0.01, deadline=None)
    call(policy, Throttled(None), sleep=waits.append)
    assert len(waits) == 1 and waits[0] <= 0.01


def test_retry_after_beyond_the_deadline_stops_instead_of_retrying_early() -> None:
    waits: list[float] = []
    fn = Throttled(60, times=5)
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.001, max_backoff=0.01, deadline=2)
    with pytest.raises(ThrottledError) as caught:
        call(policy, fn, sleep=waits.append)
    assert fn.calls == 1 and waits == [] and caught.value.retry_after == 60


def test_giving_up_by_deadline_says_the_backend_asked_to_wait() -> None:
    class Then:  # a plain transient error first, then a long Retry-After that does not fit
        calls = 0

        def __call__(self) -> str:
            self.calls += 1
            error = ThrottledError("slow down")
            error.retry_after = None if self.calls == 1 else 60
            raise error

    policy = RetryPolicy(max_attempts=5, initial_backoff=0.001, max_backoff=0.01, deadline=2)
    with pytest.raises(UnavailableError) as caught:
        call(policy, Then(), sleep=lambda s: None)
    assert caught.value.attempts == 2 and "asked to wait 60 s" in str(caught.value)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"x-ms-retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
        ({"Retry-After-Ms": "250"}, 0.25),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-4"}, None),
        ({"Retry-After": "nan"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_seconds_reads_the_headers(headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_retry_after_seconds_reads_an_http_date() -> None:
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = retry_after_seconds({"Retry-After": later})
    assert seconds is not None and 27 <= seconds <= 30


def test_secret_errors_carry_no_delay_by_default() -> None:
    assert SecretError("x").retry_after is None
