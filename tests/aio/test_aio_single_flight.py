"""One cache, one single-flight for tasks and threads; a loop that keeps running while loads wait
on the backend; cancellation and timeouts that never disturb a shared load."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from secretkit.aio import AsyncSecretStore
from secretkit.errors import PermissionDeniedError, UnavailableError
from tests.aio.helpers import Ticker, cached_store, until


@pytest.mark.parametrize("leader", ["task", "thread"])
def test_tasks_and_threads_reading_one_cold_name_cause_one_backend_read(leader: str) -> None:
    store, driver = cached_store()
    store.put("db/password", "s3cr3t")
    driver.calls.clear()
    gate = driver.gate("read")
    thread_results: list[str] = []

    def thread_reader() -> None:
        thread_results.append(store.get("db/password").text)

    threads = [threading.Thread(target=thread_reader) for _ in range(8)]

    async def main() -> list[str]:
        facade = AsyncSecretStore(store, max_workers=2)
        if leader == "thread":
            threads[0].start()
            await asyncio.to_thread(driver.entered["read"].wait, 5)
        tasks = [asyncio.create_task(facade.get("db/password")) for _ in range(200)]
        await until(lambda: store.cache_stats().misses >= 200 + (leader == "thread"))
        for thread in threads[1 if leader == "thread" else 0:]:
            thread.start()
        await until(lambda: store.cache_stats().misses >= 208)  # everyone is waiting for the one load
        assert driver.calls["read"] == 1
        gate.set()
        values = [secret.text for secret in await asyncio.gather(*tasks)]
        for thread in threads:
            await asyncio.to_thread(thread.join, 5)
        await facade.close()
        return values

    values = asyncio.run(main())
    assert values == ["s3cr3t"] * 200
    assert thread_results == ["s3cr3t"] * 8
    assert driver.calls["read"] == 1
    assert store.get("db/password").text == "s3cr3t" and driver.calls["read"] == 1  # cached for everyone


def test_many_tasks_many_cold_names_one_read_each() -> None:
    store, driver = cached_store()
    names = [f"svc/key-{i}" for i in range(50)]
    for name in names:
        store.put(name, name.upper())
    driver.calls.clear()
    driver.delay("read", 0.005)

    async def main() -> dict[str, str]:
        async with AsyncSecretStore(store, max_workers=4) as facade:
            secrets = await asyncio.gather(*(facade.get(names[i % 50]) for i in range(1000)))
        return {s.name: s.text for s in secrets}

    assert asyncio.run(main()) == {name: name.upper() for name in names}
    assert driver.calls["read"] == 50


def test_the_loop_keeps_running_while_a_cold_read_waits_on_the_backend() -> None:
    store, driver = cached_store()
    store.put("slow", "v")
    gate = driver.gate("read")
    safety = threading.Timer(10, gate.set)  # a blocked loop would otherwise hang the test
    safety.start()

    async def main() -> None:
        facade = AsyncSecretStore(store)
        ticker = Ticker()
        reader = asyncio.create_task(facade.get("slow"))
        await asyncio.to_thread(driver.entered["read"].wait, 5)
        before = ticker.ticks
        await until(lambda: ticker.ticks >= before + 20)  # the read is held in the backend meanwhile
        assert not gate.is_set() and not reader.done()
        gate.set()
        assert (await reader).text == "v"
        ticker.stop()
        await facade.close()

    try:
        asyncio.run(main())
    finally:
        safety.cancel()


def test_a_hit_is_answered_on_the_loop_and_a_miss_in_the_pool() -> None:
    store, _ = cached_store()
    store.put("k", "v")
    threads: list[tuple[str | None, str]] = []
    store.add_audit_hook(lambda e: threads.append((e.cache, threading.current_thread().name)))

    async def main() -> str:
        async with AsyncSecretStore(store) as facade:
            await facade.get("k")  # miss: the load's event comes from a pool thread
            await facade.get("k")  # hit: from the loop's own thread
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert threads[0][0] == "miss" and threads[0][1].startswith("secretkit-aio")
    assert threads[1] == ("hit", loop_thread)


def _timeout_cases() -> list[str]:
    return ["cancel", "wait_for", *(["asyncio.timeout"] if sys.version_info >= (3, 11) else [])]


@pytest.mark.parametrize("how", _timeout_cases())
def test_a_waiter_that_gives_up_does_not_cancel_the_shared_load(how: str) -> None:
    store, driver = cached_store()
    store.put("shared", "value")
    driver.calls.clear()
    gate = driver.gate("read")
    thread_got: list[str] = []

    async def main() -> None:
        facade = AsyncSecretStore(store)
        quitter = asyncio.create_task(facade.get("shared"))
        stayer = asyncio.create_task(facade.get("shared"))
        await asyncio.to_thread(driver.entered["read"].wait, 5)
        waiter = threading.Thread(target=lambda: thread_got.append(store.get("shared").text))
        waiter.start()
        if how == "cancel":
            quitter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await quitter
        elif how == "wait_for":
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(quitter, 0.02)
        else:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.02):  # type: ignore[attr-defined]
                    await quitter
        assert not stayer.done()
        gate.set()
        assert (await stayer).text == "value"
        await asyncio.to_thread(waiter.join, 5)
        assert (await facade.get("shared")).text == "value"  # cached: a hit, no new read
        await facade.close()

    asyncio.run(main())
    assert thread_got == ["value"]
    assert driver.calls["read"] == 1


def test_when_every_waiter_gives_up_the_load_still_lands_whole() -> None:
    store, driver = cached_store()
    store.put("orphan", "value")
    driver.calls.clear()
    gate = driver.gate("read")

    async def main() -> None:
        facade = AsyncSecretStore(store)
        tasks = [asyncio.create_task(facade.get("orphan")) for _ in range(5)]
        await asyncio.to_thread(driver.entered["read"].wait, 5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert store.cache_stats().size == 0  # nothing cached before the load is done
        gate.set()
        await until(lambda: store.cache_stats().size == 1)
        assert (await facade.get("orphan")).text == "value"
        await facade.close()

    asyncio.run(main())
    assert driver.calls["read"] == 1


@pytest.mark.parametrize("error", [UnavailableError("backend down"), PermissionDeniedError("denied")])
def test_a_failed_shared_load_after_a_cancel_leaves_nothing_cached(error: Exception) -> None:
    store, driver = cached_store()
    store.put("flaky", "value")
    driver.calls.clear()
    gate = driver.gate("read")
    driver.fail("read", error)  # type: ignore[arg-type]

    async def main() -> None:
        facade = AsyncSecretStore(store)
        quitter = asyncio.create_task(facade.get("flaky"))
        stayer = asyncio.create_task(facade.get("flaky"))
        await asyncio.to_thread(driver.entered["read"].wait, 5)
        quitter.cancel()
        gate.set()
        with pytest.raises(type(error)):
            await stayer
        assert store.cache_stats().size == 0
        assert (await facade.get("flaky")).text == "value"  # a fresh load, not a stuck flight
        await facade.close()

    asyncio.run(main())
    assert driver.calls["read"] == 2
