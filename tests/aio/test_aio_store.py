"""The async facade over a sync store: shared cache and audit, ownership, writes that are
cancelled, retries that never sleep on the loop, and the lazy public names."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import threading

import pytest

import secretkit
from secretkit.aio import AsyncSecretStore, open_async
from secretkit.audit import AuditEvent
from secretkit.errors import InvalidArgumentError, NotFoundError, UnavailableError
from secretkit.retry import RetryPolicy
from tests.aio.helpers import Ticker, cached_store, until


def test_import_secretkit_loads_no_asyncio_and_names_the_async_api_lazily() -> None:
    code = (
        "import sys, secretkit; before = 'asyncio' in sys.modules or 'secretkit.aio' in sys.modules; "
        "secretkit.open('memory://').get_many([]); still = 'asyncio' in sys.modules; "
        "print(before, still, secretkit.open_async.__module__, secretkit.AsyncSecretStore.__name__, "
        "'open_async' in dir(secretkit), 'AsyncSecretStore' in secretkit.__all__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False", "secretkit.aio", "AsyncSecretStore", "True", "True"]


def test_a_wrapped_store_shares_cache_and_audit_and_stays_open() -> None:
    store, driver = cached_store()
    store.put("k", "v1")
    events: list[AuditEvent] = []
    store.add_audit_hook(events.append)
    closed: list[bool] = []
    store.close = lambda: closed.append(True)  # type: ignore[method-assign]

    async def main() -> None:
        async with AsyncSecretStore(store) as facade:
            assert (await facade.get("k")).text == "v1"
        assert facade.cache_stats() == store.cache_stats()

    asyncio.run(main())
    assert store.get("k").text == "v1" and driver.calls["read"] == 1  # the async miss filled the one cache
    assert [(e.operation, e.cache) for e in events] == [("get", "miss"), ("get", "hit")]
    assert closed == []  # a store it was given is not closed with the facade


def test_open_async_owns_its_store_and_takes_the_same_options() -> None:
    async def main() -> None:
        facade = open_async("memory://", max_workers=3, cache={"enabled": True, "ttl": 60})
        assert facade.max_workers == 3 and facade.cache_policy is not None and facade.cache_policy.ttl == 60
        closed: list[bool] = []
        facade.store.close = lambda: closed.append(True)  # type: ignore[method-assign]
        async with facade:
            await facade.put("a", "b")
        assert closed == [True]
        with pytest.raises(RuntimeError, match="closed"):
            await facade.versions("a")

    asyncio.run(main())


def test_bad_arguments() -> None:
    with pytest.raises(TypeError):
        AsyncSecretStore("memory://")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        AsyncSecretStore(secretkit.open("memory://"), max_workers=0)
    with pytest.raises(InvalidArgumentError):
        AsyncSecretStore(secretkit.open("memory://")).watch("x", interval=0)


def test_every_operation_with_the_sync_results_and_errors() -> None:
    async def main() -> None:
        async with open_async("memory://", cache={"enabled": True, "negative_ttl": 30}) as store:
            info = await store.put("app/a", "one")
            await store.put("app/b", {"user": "u", "password": "p"})
            assert (await store.get("app/a")).version == info.version
            assert (await store.refresh("app/a")).text == "one"
            with pytest.raises(NotFoundError) as missing:
                await store.get("app/missing")
            assert missing.value.name == "app/missing" and missing.value.backend == "memory"
            with pytest.raises(NotFoundError):  # now from the negative cache entry, on the loop
                await store.get("app/missing")
            with pytest.raises(InvalidArgumentError):
                await store.get("bad\nname")
            with pytest.raises(InvalidArgumentError):
                await store.get("app/a", max_age=-1)
            assert await store.exists("app/a") and not await store.exists("app/missing")
            batch = await store.get_many(["app/a", "app/b", "app/missing", "bad\nname"])
            assert batch["app/a"].text == "one" and batch["app/b"]["password"] == "p"
            assert isinstance(batch.errors["app/missing"], NotFoundError)
            assert isinstance(batch.errors["bad\nname"], InvalidArgumentError)
            hits = await store.get_many(["app/a", "app/b"])  # all cached: answered on the loop
            assert sorted(hits) == ["app/a", "app/b"] and not hits.errors
            assert [name async for name in store.list("app/")] == ["app/a", "app/b"]
            with pytest.raises(InvalidArgumentError):
                [name async for name in store.list("bad\nprefix")]
            v2 = await store.put("app/a", "two", if_version=info.version)
            assert [v.version for v in await store.versions("app/a")][:2] == [v2.version, info.version]
            assert (await store.get("app/a", stage="previous")).text == "one"
            await store.delete("app/a")
            with pytest.raises(NotFoundError):
                await store.delete("app/a")
            await store.delete("app/a", missing_ok=True)
            assert not await store.exists("app/a")

    asyncio.run(main())


def test_one_facade_serves_several_event_loops() -> None:
    store, driver = cached_store()
    facade = AsyncSecretStore(store)
    asyncio.run(facade.put("k", "v"))
    assert asyncio.run(facade.get("k")).text == "v"
    store.invalidate("k")
    assert asyncio.run(facade.get("k")).text == "v"
    asyncio.run(facade.close())
    assert driver.calls["read"] == 2


def test_pool_threads_see_the_callers_context_variables() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
    seen: list[str] = []
    store, _ = cached_store()
    store.add_audit_hook(lambda e: seen.append(f"{e.operation}:{request_id.get()}"))

    async def main() -> None:
        async with AsyncSecretStore(store) as facade:
            request_id.set("req-42")
            await facade.put("k", "v")
            await facade.get("k")

    asyncio.run(main())
    assert seen[:2] == ["put:req-42", "get:req-42"]


# -- cancelled writes ------------------------------------------------------------------


def test_a_put_cancelled_while_it_runs_may_land_drops_the_entry_and_is_not_retried() -> None:
    store, driver = cached_store()
    store.put("k", "old")
    gate = driver.gate("write")

    async def main() -> None:
        async with AsyncSecretStore(store, max_workers=1) as facade:
            assert (await facade.get("k")).text == "old"  # cached
            writer = asyncio.create_task(facade.put("k", "new"))
            await asyncio.to_thread(driver.entered["write"].wait, 5)
            writer.cancel()
            with pytest.raises(asyncio.CancelledError):
                await writer
            assert store.cache_stats().size == 0  # the old value is no longer trusted
            gate.set()
            await facade.discard_pending("other")  # one worker: runs after the put has finished
            assert (await facade.get("k")).text == "new"  # it landed

    asyncio.run(main())
    assert driver.calls["write"] == 2  # the seed put and the cancelled one, once


def test_a_put_cancelled_before_it_started_never_runs() -> None:
    store, driver = cached_store()
    store.put("k", "old")
    gate = driver.gate("versions")

    async def main() -> None:
        async with AsyncSecretStore(store, max_workers=1) as facade:
            await facade.get("k")
            busy = asyncio.create_task(facade.versions("k"))  # holds the only worker
            await asyncio.to_thread(driver.entered["versions"].wait, 5)
            writer = asyncio.create_task(facade.put("k", "new"))
            await asyncio.sleep(0.01)
            writer.cancel()
            with pytest.raises(asyncio.CancelledError):
                await writer
            gate.set()
            await busy
            await facade.discard_pending("other")  # the queue has drained
            assert store.cache_stats().size == 0
            assert (await facade.get("k")).text == "old"

    asyncio.run(main())
    assert driver.calls["write"] == 1  # only the seed put


def test_a_cancelled_put_makes_no_further_attempt() -> None:
    store, driver = cached_store(retry=RetryPolicy(max_attempts=10, initial_backoff=0.0, max_backoff=0.0))
    assert store.capabilities.idempotent_put  # so puts are retried at all
    driver.fail("write", UnavailableError("backend down"), times=None)
    gate = driver.gate("write")

    async def main() -> None:
        async with AsyncSecretStore(store, max_workers=1) as facade:
            writer = asyncio.create_task(facade.put("k", "v"))
            await asyncio.to_thread(driver.entered["write"].wait, 5)
            writer.cancel()
            await asyncio.sleep(0.01)
            gate.set()  # the first attempt fails now; without the cancel, 9 more would follow at once
            await facade.discard_pending("other")

    asyncio.run(main())
    assert driver.calls["write"] == 1


def test_sync_retries_of_a_blocking_call_never_stall_the_loop() -> None:
    store, driver = cached_store(cache=False, retry=RetryPolicy(max_attempts=3, initial_backoff=0.2, max_backoff=0.2))
    store.put("k", "v")
    driver.fail("read", UnavailableError("blip"), times=2)

    async def main() -> int:
        async with AsyncSecretStore(store) as facade:
            ticker = Ticker()
            assert (await facade.get("k")).text == "v"
            ticker.stop()
            return ticker.ticks

    assert asyncio.run(main()) > 0
    assert driver.calls["read"] == 3


def test_close_lets_started_loads_finish_for_threads_waiting_on_them() -> None:
    store, driver = cached_store()
    store.put("k", "v")
    gate = driver.gate("read")
    got: list[str] = []

    async def main() -> None:
        facade = AsyncSecretStore(store)
        reader = asyncio.create_task(facade.get("k"))
        await asyncio.to_thread(driver.entered["read"].wait, 5)
        thread = threading.Thread(target=lambda: got.append(store.get("k").text))
        thread.start()
        await until(lambda: store.cache_stats().misses >= 2)
        reader.cancel()
        threading.Timer(0.05, gate.set).start()
        await facade.close()  # waits for the load, off the loop
        await asyncio.to_thread(thread.join, 5)

    asyncio.run(main())
    assert got == ["v"]
