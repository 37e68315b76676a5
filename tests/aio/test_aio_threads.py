"""An async call holds at most one blocked thread, and still ends at its deadline.

A remote call bounded by a deadline used to hold two: a pool thread running the sync store
call, waiting for an attempt worker running the driver call. Now the attempt runs in the pool
thread and the awaiting task stops waiting at the deadline itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time

import pytest

from secretkit.aio import AsyncSecretStore
from secretkit.cache import CachePolicy
from secretkit.config import StoreOptions
from secretkit.drivers.memory import MemoryDriver
from secretkit.errors import DeadlineExceededError
from secretkit.retry import RetryPolicy
from secretkit.secret import Value
from secretkit.store import SecretStore
from secretkit.testing.faulty import FaultyDriver

#: What a call may take beyond its deadline: one scheduling slice, on a busy 2-core machine.
SLICE = 1.0


def _remote_store(policy: RetryPolicy, *, cache: bool) -> tuple[SecretStore, FaultyDriver]:
    inner = MemoryDriver()
    inner.capabilities = dataclasses.replace(inner.capabilities, remote=True)
    inner.write("a", Value.of("v"), if_version=None, create_only=False, token="seed")
    driver = FaultyDriver(inner)
    options = StoreOptions(retry=policy, cache=CachePolicy(enabled=True, ttl=60) if cache else CachePolicy.off())
    return SecretStore(driver, options=options), driver


def _secretkit_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("secretkit-") and t.is_alive()}


@pytest.mark.parametrize("cache", [True, False], ids=["cached", "uncached"])
def test_a_blocked_async_call_holds_one_thread(cache: bool) -> None:
    store, driver = _remote_store(RetryPolicy(deadline=30, attempt_timeout=10), cache=cache)

    async def main() -> int:
        async with AsyncSecretStore(store, max_workers=2) as facade:
            before = _secretkit_threads()  # the pool's threads, started and idle
            held = driver.hold("read")
            task = asyncio.create_task(facade.get("a"))
            while not held.entered.is_set():
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)  # anything the call would still start, it has started
            started = _secretkit_threads() - before
            busy = [t for t in before if t not in started and _held_here(t)]
            held.release()
            assert (await task).text == "v"
            return len(started) + len(busy)

    assert asyncio.run(main()) == 1
    store.close()


def _held_here(thread: threading.Thread) -> bool:
    """True if ``thread`` is inside a driver call or waiting on behalf of one (not idle)."""
    import sys

    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name in ("held", "run") and frame.f_code.co_filename.endswith(("faulty.py", "attempts.py")):
            return True
        if frame.f_code.co_name == "call" and frame.f_code.co_filename.endswith("calls.py"):
            return True
        frame = frame.f_back
    return False


def _get_until_it_ends(store: SecretStore, gate: threading.Event) -> tuple[float, BaseException | None]:
    """One async ``get("a")`` through a facade over ``store``: how long until it ended, and how."""

    async def main() -> tuple[float, BaseException | None]:
        facade = AsyncSecretStore(store, max_workers=2)
        began = time.monotonic()
        try:
            await facade.get("a")
        except BaseException as exc:  # noqa: BLE001 - the outcome is what the test inspects
            return time.monotonic() - began, exc
        finally:
            gate.set()  # let the abandoned call end, so close() finds no thread busy
            await facade.close()
        return time.monotonic() - began, None

    return asyncio.run(main())


@pytest.mark.parametrize("cache", [True, False], ids=["cached", "uncached"])
def test_an_async_call_ends_at_its_deadline_against_a_driver_that_never_answers(cache: bool) -> None:
    store, driver = _remote_store(RetryPolicy(deadline=0.5, initial_backoff=0.01), cache=cache)
    gate = driver.gate("read")  # reads wait until set: the backend never answers meanwhile

    elapsed, error = _get_until_it_ends(store, gate)
    assert isinstance(error, DeadlineExceededError), repr(error)
    assert error.name == "a" and error.backend == "memory"
    assert elapsed < 0.5 + SLICE
    store.close()


def test_with_only_an_attempt_timeout_the_call_ends_soon_after_an_overrun_attempt() -> None:
    """No deadline: the task stops waiting once the attempt has overrun its end by ``OVERRUN``
    (the thread cannot retry while it is stuck), instead of waiting forever."""
    from secretkit.aio_pool import OVERRUN

    store, driver = _remote_store(RetryPolicy(deadline=None, attempt_timeout=0.2), cache=False)
    gate = driver.gate("read")

    elapsed, error = _get_until_it_ends(store, gate)
    assert isinstance(error, DeadlineExceededError) and error.name == "a", repr(error)
    assert 0.2 <= elapsed < 0.2 + OVERRUN + SLICE
    store.close()


def test_a_call_given_up_on_never_holds_up_interpreter_exit() -> None:
    """The abandoned pool thread is stuck on a backend that never answers: the process still exits."""
    import subprocess
    import sys

    code = """
import asyncio, dataclasses
from secretkit.aio import AsyncSecretStore
from secretkit.cache import CachePolicy
from secretkit.config import StoreOptions
from secretkit.drivers.memory import MemoryDriver
from secretkit.retry import RetryPolicy
from secretkit.store import SecretStore
from secretkit.testing.faulty import FaultyDriver
inner = MemoryDriver()
inner.capabilities = dataclasses.replace(inner.capabilities, remote=True)
driver = FaultyDriver(inner)
driver.gate("read")  # never set
store = SecretStore(driver, options=StoreOptions(retry=RetryPolicy(deadline=0.3), cache=CachePolicy.off()))
async def main():
    facade = AsyncSecretStore(store)
    try:
        await facade.get("a")
    except Exception as exc:
        print(type(exc).__name__)
    await facade.close()
asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert done.stdout.split() == ["DeadlineExceededError"], done.stderr
