"""``async for secret in store.watch(name)``: polling on the loop (VersionProbe or reads), the
Kubernetes change stream on the API double, and stopping on aclose, break and cancellation."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import aclosing
from typing import Any

import pytest

import secretkit
from secretkit.aio import AsyncSecretStore
from secretkit.drivers.base import VersionProbe
from secretkit.errors import PermissionDeniedError
from secretkit.store import SecretStore
from tests.aio.helpers import cached_store, until


class WithoutProbe:
    """A driver without ``current_version``: the watch then polls with reads."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, attr: str) -> Any:
        if attr == "current_version":
            raise AttributeError(attr)
        return getattr(self._inner, attr)


@pytest.mark.parametrize("probe", [True, False], ids=["version-probe", "reads"])
def test_yields_each_new_value_after_the_start_in_order(probe: bool) -> None:
    store, driver = cached_store()
    if not probe:
        store = SecretStore(WithoutProbe(driver), options=store.options)  # type: ignore[arg-type]
    assert isinstance(store.driver, VersionProbe) is probe
    store.put("app/token", "v0")

    async def main() -> list[str]:
        facade = AsyncSecretStore(store)
        watch = facade.watch("app/token", interval=0.01)
        await facade.put("app/token", "v1")  # before the start: the baseline, not a change
        got = []
        async with watch:
            assert not watch.streaming
            for value in ("v2", "v3"):
                await facade.put("app/token", value)
                secret = await asyncio.wait_for(anext(watch), 5)
                got.append(secret.text)
                assert (await facade.get("app/token")).text == value  # the cache has the new value
        await facade.close()
        return got

    assert asyncio.run(main()) == ["v2", "v3"]


def test_a_deletion_is_not_yielded_a_recreation_is() -> None:
    store, _ = cached_store()
    store.put("x", "old")

    async def main() -> str:
        async with AsyncSecretStore(store) as facade, facade.watch("x", interval=3600) as watch:
            await facade.delete("x")
            assert await watch.poll() is False
            with pytest.raises(secretkit.NotFoundError):
                await facade.get("x")
            await facade.put("x", "reborn")
            assert await watch.poll() is True
            assert await watch.poll() is False  # reported once
            return (await anext(watch)).text

    assert asyncio.run(main()) == "reborn"


def test_breaking_out_stops_polling() -> None:
    store, driver = cached_store()
    store.put("x", "v0")

    async def first(watch: Any) -> str:
        async for secret in watch:
            return secret.text  # breaks out
        return ""

    async def main() -> None:
        async with AsyncSecretStore(store) as facade:
            async with aclosing(facade.watch("x", interval=0.005)) as watch:
                await watch.start()  # the baseline; a plain `async for` takes it at its first step
                await facade.put("x", "v1")
                assert await asyncio.wait_for(first(watch), 5) == "v1"
                probes = driver.calls["current_version"]
                assert probes >= 2
                await asyncio.sleep(0.1)  # twenty intervals: nobody asks, nothing polls
                assert driver.calls["current_version"] == probes
            assert await anext(watch, None) is None  # aclose()d: the iteration has ended

    asyncio.run(main())


def test_a_cancelled_consumer_stops_the_watch() -> None:
    store, driver = cached_store()
    store.put("x", "v0")

    async def main() -> None:
        async with AsyncSecretStore(store) as facade:
            watch = facade.watch("x", interval=0.005)
            got: list[str] = []

            async def consume() -> None:
                async for secret in watch:
                    got.append(secret.text)

            consumer = asyncio.create_task(consume())
            await until(lambda: driver.calls["current_version"] >= 3)
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
            probes = driver.calls["current_version"]
            await facade.put("x", "v1")
            await asyncio.sleep(0.1)
            assert driver.calls["current_version"] == probes and got == []
            assert await anext(watch, None) is None

    asyncio.run(main())


def test_failed_checks_are_counted_and_the_watch_goes_on() -> None:
    store, driver = cached_store()
    store.put("x", "v0")

    async def main() -> str:
        async with AsyncSecretStore(store) as facade, facade.watch("x", interval=3600) as watch:
            driver.fail("current_version", PermissionDeniedError("denied"))
            await facade.put("x", "v1")
            assert await watch.poll() is False and watch.errors == 1
            assert await watch.poll() is True
            return (await anext(watch)).text

    assert asyncio.run(main()) == "v1"


def test_checks_run_off_the_loop() -> None:
    store, driver = cached_store()
    store.put("x", "v0")
    gate = driver.gate("current_version")
    gate.set()

    async def main() -> None:
        async with AsyncSecretStore(store) as facade, facade.watch("x", interval=3600) as watch:
            gate.clear()
            check = asyncio.create_task(watch.poll())
            await asyncio.sleep(0.05)  # the loop runs while the probe is held in the backend
            assert not check.done()
            gate.set()
            assert await check is False

    asyncio.run(main())


def test_closing_the_store_ends_its_watches() -> None:
    store, _ = cached_store()
    store.put("x", "v0")

    async def main() -> None:
        facade = AsyncSecretStore(store)
        watch = facade.watch("x", interval=3600)
        waiting = asyncio.create_task(anext(watch, None))
        await asyncio.sleep(0.01)
        await facade.close()
        assert await asyncio.wait_for(waiting, 5) is None

    asyncio.run(main())


# -- the Kubernetes change stream, on the API double ------------------------------------


@pytest.fixture(scope="module")
def kube() -> Iterator[Any]:
    k8s_api = pytest.importorskip("tests.doubles.k8s_api")
    pytest.importorskip("kubernetes")
    with k8s_api.FakeKubeAPI() as server:
        yield server


@pytest.fixture
def kube_store(kube: Any) -> Iterator[SecretStore]:
    with secretkit.open(f"k8s://async-watch?host={kube.url}&watch_timeout=2", cache=False,
                        retry={"initial_backoff": 0.01, "max_backoff": 0.05}) as store:
        yield store


def _stream_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("secretkit-aio-watch-") and t.is_alive()]


def test_kubernetes_changes_arrive_by_the_stream(kube_store: SecretStore) -> None:
    name = f"app/db-{uuid.uuid4().hex[:6]}"
    kube_store.put(name, "v1")

    async def main() -> list[str]:
        got = []
        async with AsyncSecretStore(kube_store) as facade, facade.watch(name, interval=3600) as watch:
            assert watch.streaming  # no polling: the interval is an hour
            await asyncio.sleep(0.2)
            for value in ("v2", "v3"):
                await facade.put(name, value)
                got.append((await asyncio.wait_for(anext(watch), 8)).text)
        return got

    assert asyncio.run(main()) == ["v2", "v3"]
    deadline = asyncio.run(_wait_for_no_stream_threads())
    assert deadline, "the stream thread kept running after aclose()"


async def _wait_for_no_stream_threads() -> bool:
    for _ in range(500):  # the open watch request ends within watch_timeout (2 s)
        if not _stream_threads():
            return True
        await asyncio.sleep(0.01)
    return False


def test_kubernetes_stream_stops_when_the_consumer_is_cancelled(kube_store: SecretStore) -> None:
    name = f"app/db-{uuid.uuid4().hex[:6]}"
    kube_store.put(name, "v1")
    seen: list[str] = []

    async def main() -> None:
        async with AsyncSecretStore(kube_store) as facade:
            watch = facade.watch(name, interval=3600)

            async def consume() -> None:
                async for secret in watch:
                    seen.append(secret.text)

            consumer = asyncio.create_task(consume())
            await until(lambda: bool(_stream_threads()))
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
            await facade.put(name, "after-cancel")
            await asyncio.sleep(0.3)

    asyncio.run(main())
    assert seen == []
    assert asyncio.run(_wait_for_no_stream_threads())
