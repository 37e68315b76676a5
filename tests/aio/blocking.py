"""Run the sync conformance suites THROUGH the async facade, without copying a single case.

``BlockingFacade`` presents the ``SecretStore`` API; each call runs the matching
``AsyncSecretStore`` coroutine on a background event loop and waits for it. So every
conformance case exercises the async path (hits on the loop, misses through the pool and the
flight callbacks, rotation in the pool, the async watch) while the suite stays written once.

To put another backend through it (test_aio_conformance_remote.py does so for OpenBao, GCP and
Kubernetes), reuse that backend's conformance store fixture::

    from tests.aio.blocking import ThroughAsync, ThroughAsyncRotation, through_async

    class TestVaultThroughAsync(ThroughAsync):
        @pytest.fixture
        def store(self, bao):
            with open_vault_store(bao) as sync, through_async(sync) as store:   # the module's own opener
                yield store

    class TestVaultRotationThroughAsync(ThroughAsyncRotation):
        store = TestVaultThroughAsync.store

Callbacks given to ``watch`` run on the background loop's thread: they must not call the
facade back (the conformance suite's callbacks only record what they get).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from secretkit.aio import AsyncSecretStore, AsyncWatch
from secretkit.secret import Secret
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.rotation import RotationConformance
from secretkit.testing.spy import CountingDriver

T = TypeVar("T")


class LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="aio-conformance-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class BlockingWatch:
    """The sync ``Watcher`` API (``poll``, ``streaming``, ``stop``, ``with``) over ``AsyncWatch``:
    a task on the loop iterates the watch and calls ``callback`` with each value."""

    def __init__(self, runner: LoopThread, watch: AsyncWatch, callback: Callable[[Secret], Any]) -> None:
        self._runner, self._watch, self._callback = runner, watch, callback
        self.delivered = 0
        runner.run(watch.start())
        self.streaming = watch.streaming
        self._consumer = asyncio.run_coroutine_threadsafe(self._consume(), runner.loop)

    async def _consume(self) -> None:
        async for secret in self._watch:
            self._callback(secret)
            self.delivered += 1

    @property
    def errors(self) -> int:
        return self._watch.errors

    def poll(self) -> bool:
        """Check once; True if a change was found (and, once this returns, delivered)."""

        async def poll_and_deliver() -> bool:
            changed = await self._watch.poll()
            while self.delivered < self._watch.reported and not self._consumer.done():
                await asyncio.sleep(0.001)
            return changed

        return self._runner.run(poll_and_deliver())

    def stop(self, timeout: float = 2.0) -> None:
        self._runner.run(self._watch.aclose())
        try:
            self._consumer.result(timeout=timeout)
        finally:
            self._consumer.cancel()

    def __enter__(self) -> BlockingWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BlockingFacade:
    """The ``SecretStore`` API, every call run through an ``AsyncSecretStore`` on a loop thread."""

    def __init__(self, store: AsyncSecretStore, runner: LoopThread) -> None:
        self.aio, self._runner = store, runner
        self._wrapped: list[BlockingFacade] = []

    def wrap(self, sync: SecretStore) -> BlockingFacade:
        """Another sync store through an async facade on the same loop (closed with this one)."""
        facade = BlockingFacade(AsyncSecretStore(sync, max_workers=self.aio.max_workers), self._runner)
        self._wrapped.append(facade)
        return facade

    def __getattr__(self, attr: str) -> Any:
        # backend, capabilities, stages, names, pending_prefix, driver, options, url, client,
        # cache_policy, cache_stats, add/remove_audit_hook, invalidate: the facade's own
        return getattr(self.aio, attr)

    def __repr__(self) -> str:
        return repr(self.aio)

    def get(self, name: str, **kwargs: Any) -> Secret:
        return self._runner.run(self.aio.get(name, **kwargs))

    def refresh(self, name: str) -> Secret:
        return self._runner.run(self.aio.refresh(name))

    def get_many(self, names: Any) -> Any:
        return self._runner.run(self.aio.get_many(names))

    def exists(self, name: str) -> bool:
        return self._runner.run(self.aio.exists(name))

    def versions(self, name: str) -> Any:
        return self._runner.run(self.aio.versions(name))

    def list(self, prefix: str = "") -> Iterator[str]:
        async def collect() -> list[str]:
            return [name async for name in self.aio.list(prefix)]

        return iter(self._runner.run(collect()))

    def put(self, name: str, value: Any, **kwargs: Any) -> Any:
        return self._runner.run(self.aio.put(name, value, **kwargs))

    def delete(self, name: str, **kwargs: Any) -> None:
        self._runner.run(self.aio.delete(name, **kwargs))

    def rotate(self, name: str, **kwargs: Any) -> Any:
        return self._runner.run(self.aio.rotate(name, **kwargs))

    def discard_pending(self, name: str) -> str | None:
        return self._runner.run(self.aio.discard_pending(name))

    def watch(self, name: str, callback: Callable[[Secret], Any], *, interval: float = 30.0) -> BlockingWatch:
        return BlockingWatch(self._runner, self.aio.watch(name, interval=interval), callback)

    def close(self) -> None:
        for facade in self._wrapped:
            facade.close()
        self._runner.run(self.aio.close())


@contextmanager
def through_async(store: SecretStore, *, max_workers: int | None = None) -> Iterator[BlockingFacade]:
    """``store`` (left open: its own fixture closes it) behind an ``AsyncSecretStore`` and a
    background loop, as a ``SecretStore`` look-alike for the conformance suites."""
    runner = LoopThread()
    facade = BlockingFacade(AsyncSecretStore(store, max_workers=max_workers), runner)
    try:
        yield facade
    finally:
        try:
            facade.close()
        finally:
            runner.stop()


class ThroughAsync(StoreConformance):
    """``StoreConformance`` through the async facade: give it a ``store`` fixture yielding
    ``through_async(sync_store)``. Its I/O-counting cases count through the facade too."""

    @staticmethod
    def counting(store: SecretStore) -> tuple[SecretStore, CountingDriver]:
        assert isinstance(store, BlockingFacade), "ThroughAsync's store fixture yields through_async(...)"
        spy = CountingDriver(store.driver)
        return store.wrap(SecretStore(spy, options=store.options)), spy  # type: ignore[arg-type,return-value]


class ThroughAsyncRotation(RotationConformance):
    """``RotationConformance`` through the async facade (same fixture as ``ThroughAsync``).
    The crash cases build their crashing store from ``store.driver`` as the suite does; every
    other step, the resumed rotation included, runs through the facade."""
