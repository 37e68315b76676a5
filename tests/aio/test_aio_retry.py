"""retry.call_async (backoff with asyncio.sleep) and retry.abandon_when (a caller that gave up)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from secretkit.errors import NotFoundError, SecretError, ThrottledError, UnavailableError
from secretkit.retry import RetryPolicy, abandon_when, call, call_async
from tests.aio.helpers import Ticker


class Flaky:
    def __init__(self, *errors: SecretError) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_call_async_retries_transient_errors_with_capped_full_jitter_waits() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    flaky = Flaky(UnavailableError("a"), ThrottledError("b"))
    policy = RetryPolicy(max_attempts=4, initial_backoff=1.0, max_backoff=1.5)
    assert asyncio.run(call_async(policy, flaky, sleep=sleep)) == ("ok", 3)
    assert len(waits) == 2 and all(0 <= w <= 1.5 for w in waits)


def test_call_async_gives_up_like_call() -> None:
    async def no_sleep(seconds: float) -> None:
        pass

    policy = RetryPolicy(max_attempts=3, initial_backoff=0.0)
    with pytest.raises(UnavailableError) as info:
        asyncio.run(call_async(policy, Flaky(*[UnavailableError("down")] * 5), sleep=no_sleep))
    assert info.value.attempts == 3 and isinstance(info.value.__cause__, UnavailableError)
    permanent = Flaky(NotFoundError("gone"))
    with pytest.raises(NotFoundError):
        asyncio.run(call_async(policy, permanent, sleep=no_sleep))
    assert permanent.calls == 1
    once = Flaky(UnavailableError("down"))
    with pytest.raises(UnavailableError):
        asyncio.run(call_async(policy, once, retry=False))
    assert once.calls == 1


def test_call_async_backs_off_on_the_loop_without_blocking_it() -> None:
    async def main() -> int:
        ticker = Ticker()
        flaky = Flaky(UnavailableError("a"), UnavailableError("b"))
        result = await call_async(RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=0.05), flaky)
        assert result == ("ok", 3)
        ticker.stop()
        return ticker.ticks

    assert asyncio.run(main()) > 0


def test_call_async_is_cancelled_during_its_backoff() -> None:
    flaky = Flaky(*[UnavailableError("down")] * 10)

    async def main() -> None:
        task = asyncio.create_task(call_async(RetryPolicy(max_attempts=10, initial_backoff=30, max_backoff=30), flaky))
        while flaky.calls == 0:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert flaky.calls == 1


def test_abandon_when_stops_retries_and_ends_the_backoff() -> None:
    gave_up = threading.Event()
    calls = 0

    def failing() -> str:
        nonlocal calls
        calls += 1
        raise UnavailableError("down")

    threading.Timer(0.1, gave_up.set).start()
    start = time.monotonic()
    with abandon_when(gave_up), pytest.raises(UnavailableError):
        call(RetryPolicy(max_attempts=50, initial_backoff=30, max_backoff=30), failing)
    assert time.monotonic() - start < 5  # not a 30 s backoff
    assert calls <= 2  # at most the attempt that had started when the caller gave up


def test_abandon_when_set_before_a_retry_makes_it_one_attempt() -> None:
    gave_up = threading.Event()
    calls = 0

    def failing() -> str:
        nonlocal calls
        calls += 1
        gave_up.set()
        raise UnavailableError("down")

    with abandon_when(gave_up), pytest.raises(UnavailableError) as info:
        call(RetryPolicy(max_attempts=5, initial_backoff=0.0), failing)
    assert calls == 1 and info.value.attempts == 1
    gave_up.clear()
    calls = 0
    with pytest.raises(UnavailableError) as info:  # outside the block: the policy as usual
        call(RetryPolicy(max_attempts=5, initial_backoff=0.0), failing)
    assert calls == 5 and info.value.attempts == 5
