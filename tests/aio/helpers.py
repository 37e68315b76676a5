"""Shared helpers of the async tests: a cached store over a scriptable memory driver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from secretkit.cache import CachePolicy
from secretkit.config import StoreOptions
from secretkit.drivers.memory import MemoryDriver
from secretkit.retry import RetryPolicy
from secretkit.store import SecretStore
from secretkit.testing.faulty import FaultyDriver


def cached_store(*, retry: RetryPolicy | None = None, cache: bool = True, **policy: Any) -> tuple[SecretStore, FaultyDriver]:
    """A memory store behind a ``FaultyDriver`` (counts calls, gates, faults), cache on by default."""
    driver = FaultyDriver(MemoryDriver())
    policy.setdefault("jitter", 0.0)
    options = StoreOptions(
        cache=CachePolicy(**policy) if cache else CachePolicy.off(),
        retry=retry or RetryPolicy.none(),
    )
    return SecretStore(driver, options=options), driver  # type: ignore[arg-type]


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait on the loop (never blocking it) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.001)


class Ticker:
    """A task that counts the loop's turns, to show that the loop kept running."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.001)
            self.ticks += 1

    def stop(self) -> None:
        self._task.cancel()
