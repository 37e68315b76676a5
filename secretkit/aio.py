"""AsyncSecretStore: the portable store for asyncio code, without blocking the event loop.

It is a facade over a ``SecretStore``, not a second store: the same driver, the same cache,
the same single-flight and the same audit stream serve sync threads and async tasks at once.

Why it is shaped like this:

* A cache hit is answered on the event loop with the store's own hit path (one dict lookup,
  no lock, no thread hop), so ``await store.get(name)`` on a hit costs about what a sync hit
  costs plus one coroutine.
* Everything that can block (an SDK call, a driver's lock, a retry's backoff) runs in a
  bounded thread pool owned by the facade (``max_workers``). A cold read joins the cache's
  flight for its key (``Cache.join``): the first reader, task or thread, starts one load in
  the pool and every other reader of that key waits for it, tasks on an asyncio future that
  the flight resolves through one ``loop.call_soon_threadsafe`` when it settles. So N tasks and
  M threads reading one cold name cost one backend read, and the loop keeps running.
* A task that stops waiting (cancelled, or timed out by ``asyncio.timeout``/``wait_for``)
  leaves a shared load running for the others and the cache gets its complete answer or
  nothing. An operation only that task asked for (a put, a delete, a read without cache) is
  abandoned: if it has not started it never runs, and if it is running it makes no further
  retry (``retry.abandon_when``). A cancelled ``put`` may still have landed; the cache entry
  of the name is dropped either way and the put is never retried.
* Rotation runs the sync protocol (``secretkit.rotation``) in the pool; ``generate``,
  ``apply`` and ``verify`` may be plain callables (called in the worker thread, so blocking
  I/O in them is fine) or async ones (awaited on the caller's event loop).
* ``watch`` is an async iterator (``secretkit.aio_watch``): polling on the loop, or the
  driver's change stream followed by a thread where the backend has one (Kubernetes).

The pool and the bridges between its threads and the event loops are ``secretkit.aio_pool``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from secretkit.aio_pool import Pool, Step, rotation_step
from secretkit.aio_watch import AsyncWatch
from secretkit.audit import AuditHook
from secretkit.drivers.base import Capabilities, Driver
from secretkit.entries import CacheStats
from secretkit.lease_keeper import check_lease_request
from secretkit.leases import AsyncLeasing, Lease
from secretkit.errors import DeadlineExceededError, InvalidArgumentError, NotFoundError
from secretkit.names import NameRules
from secretkit.policies import CachePolicy, StoreOptions
from secretkit.rotation import RotationResult
from secretkit.secret import BatchResult, Secret, SecretInput, VersionInfo
from secretkit.store import SecretStore

if TYPE_CHECKING:
    from secretkit.registry import Layers

__all__ = ["AsyncSecretStore", "AsyncWatch", "open_async"]

T = TypeVar("T")


def default_max_workers() -> int:
    """The pool size when ``max_workers`` is not given: what ``ThreadPoolExecutor`` picks."""
    return min(32, (os.cpu_count() or 1) + 4)


def open_async(
    url: str | Layers | None = None,
    *,
    max_workers: int | None = None,
    client: Any = None,
    config: str | os.PathLike[str] | None = None,
    **options: Any,
) -> AsyncSecretStore:
    """Open the store a URL names, for asyncio code: ``secretkit.open`` with the same
    arguments and options (a list opens a layered store), plus ``max_workers`` (threads for
    backend calls). The store it opens belongs to the returned facade and is closed with it.
    To share a store the application already has (and its cache), wrap it instead:
    ``AsyncSecretStore(store)``."""
    from secretkit.registry import open as open_store

    store = open_store(url, client=client, config=config, **options)
    facade = AsyncSecretStore(store, max_workers=max_workers)
    facade._owns_store = True
    return facade


class AsyncSecretStore:
    """Every ``SecretStore`` operation as a coroutine, over a sync store.

    ``AsyncSecretStore(store)`` wraps a store the application already has (closing the
    facade then leaves that store open); ``secretkit.open_async(url)`` opens one it owns.
    Use it from any number of tasks (and event loops); ``async with`` closes it.
    """

    def __init__(self, store: SecretStore, *, max_workers: int | None = None) -> None:
        if not isinstance(store, SecretStore):
            raise TypeError(f"AsyncSecretStore wraps a SecretStore, not {type(store).__name__}")
        if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int)
                                        or max_workers < 1):
            raise InvalidArgumentError("max_workers is a whole number >= 1", backend=store.backend)
        self._store = store
        self._owns_store = False
        # a remote call's time limit is enforced by the awaiting task (see ``aio_pool``); a local
        # backend's calls are never cut off, on any thread
        remote = store.driver.capabilities.remote
        self._pool = Pool(max_workers or default_max_workers(), policy=store.options.retry if remote else None,
                          backend=store.backend)
        self._watches: weakref.WeakSet[AsyncWatch] = weakref.WeakSet()
        self._cached = store.cached  # the hit path: bound once

    # -- what the sync store knows (no I/O) ------------------------------------------------

    @property
    def store(self) -> SecretStore:
        """The sync store below (same cache, single-flight and audit hooks)."""
        return self._store

    @property
    def max_workers(self) -> int:
        """Threads for backend calls (the bound of the pool)."""
        return self._pool.max_workers

    @property
    def backend(self) -> str:
        return self._store.backend

    @property
    def url(self) -> str:
        return self._store.url

    @property
    def options(self) -> StoreOptions:
        return self._store.options

    @property
    def capabilities(self) -> Capabilities:
        return self._store.capabilities

    @property
    def stages(self) -> str | None:
        return self._store.stages

    @property
    def names(self) -> NameRules:
        return self._store.names

    @property
    def pending_prefix(self) -> str:
        return self._store.pending_prefix

    @property
    def driver(self) -> Driver:
        return self._store.driver

    @property
    def client(self) -> Any:
        return self._store.client

    @property
    def cache_policy(self) -> CachePolicy | None:
        return self._store.cache_policy

    def cache_stats(self) -> CacheStats:
        return self._store.cache_stats()

    def add_audit_hook(self, hook: AuditHook) -> None:
        """Call ``hook(AuditEvent)`` after every operation, from whichever thread ran it
        (the event loop's for cache hits, a pool thread for backend calls)."""
        self._store.add_audit_hook(hook)

    def remove_audit_hook(self, hook: AuditHook) -> None:
        self._store.remove_audit_hook(hook)

    def invalidate(self, name: str) -> None:
        """Forget everything cached about ``name`` (never blocks on I/O)."""
        self._store.invalidate(name)

    def __repr__(self) -> str:
        return f"AsyncSecretStore(backend={self.backend!r}, url={self.url!r})"

    # -- reads -------------------------------------------------------------------------

    async def get(
        self,
        name: str,
        *,
        version: str | None = None,
        stage: str | None = None,
        max_age: float | None = None,
        refresh: bool = False,
    ) -> Secret:
        """``SecretStore.get`` as a coroutine: a hit is answered on the loop, a miss joins the
        load in flight for the key (or starts it in the pool)."""
        if not refresh:
            secret = self._cached(name, version=version, stage=stage, max_age=max_age)
            if secret is not None:
                return secret
        return await self._miss(name, version, stage, max_age, refresh)

    async def _miss(self, name: str, version: str | None, stage: str | None, max_age: float | None,
                    refresh: bool) -> Secret:
        store = self._store
        if refresh:  # a forced read queues behind the load in flight; others may join it
            return await self._call(lambda: store.get(name, version=version, stage=stage, max_age=max_age,
                                                      refresh=True), shared=True, name=name)
        start = time.perf_counter()
        began = time.monotonic()
        joined = store.join(name, version=version, stage=stage, max_age=max_age)
        if joined is None:  # no cache, nothing to share: the read is this task's alone
            return await self._call(lambda: store.get(name, version=version, stage=stage, max_age=max_age), name=name)
        flight, load = joined
        pool = self._pool
        if load is None:
            if not flight.done.is_set():  # waited for until this task's deadline; the load goes on
                await pool.within(pool.waiter(flight), None, began, name)
        else:
            # Hand the load to the pool once the loop has run what is ready now: a burst of
            # cold reads is then registered (joined) before pool threads start competing for
            # the GIL, so the loop does not stall behind them. If this task ends before that
            # (cancelled, or its loop closed), the finally block hands it over at once.
            context = contextvars.copy_context()  # the load's: the time limit reads its attempt's end
            handover = pool.handover(load, context)
            asyncio.get_running_loop().call_soon(handover)
            try:
                await pool.within(pool.waiter(flight), context, began, name)
            finally:
                handover()
        return store.settled(name, flight, start)

    async def refresh(self, name: str) -> Secret:
        """Read the current value from the backend, bypassing the cache, and cache it."""
        return await self.get(name, refresh=True)

    async def get_many(self, names: Iterable[str]) -> BatchResult:
        """``SecretStore.get_many`` as a coroutine: answered on the loop when every name is a
        cache hit, else in the pool (one batch call for the names no load is running for)."""
        wanted = list(dict.fromkeys(names))
        found: dict[str, Secret] = {}
        cached = self._cached
        for name in wanted:
            secret = cached(name)
            if secret is None:
                break
            found[name] = secret
        else:
            return BatchResult(found, {})
        store = self._store
        return await self._call(lambda: store.get_many(wanted), shared=True)

    async def exists(self, name: str) -> bool:
        """True if the secret currently has a readable value."""
        try:
            await self.get(name)
        except NotFoundError:
            return False
        return True

    async def versions(self, name: str) -> list[VersionInfo]:
        """The secret's versions, newest first (``NotSupportedError`` on stores without history)."""
        store = self._store
        return await self._call(lambda: store.versions(name), name=name)

    async def list(self, prefix: str = "") -> AsyncIterator[str]:
        """``async for name in store.list(prefix)``: names starting with ``prefix``, sorted.
        The backend is listed when iteration starts; an invalid prefix raises there."""
        store = self._store
        names = await self._call(lambda: list(store.list(prefix)))
        for name in names:
            yield name

    # -- writes ------------------------------------------------------------------------

    async def put(
        self, name: str, value: SecretInput, *, if_version: str | None = None, create_only: bool = False
    ) -> VersionInfo:
        """``SecretStore.put`` as a coroutine. Cancelled while it runs, the put may still have
        landed (it was sent); it is never retried, and the name's cache entry is dropped. So
        too when it is given up on at its deadline (``DeadlineExceededError``)."""
        store = self._store
        try:
            return await self._call(lambda: store.put(name, value, if_version=if_version, create_only=create_only),
                                    name=name)
        except (asyncio.CancelledError, DeadlineExceededError):
            self._forget(name)
            raise

    async def delete(self, name: str, *, purge: bool = False, missing_ok: bool = False) -> None:
        """``SecretStore.delete`` as a coroutine (cancelled, it may have landed, like ``put``)."""
        store = self._store
        try:
            await self._call(lambda: store.delete(name, purge=purge, missing_ok=missing_ok), name=name)
        except (asyncio.CancelledError, DeadlineExceededError):
            self._forget(name)
            raise

    def _forget(self, name: str) -> None:
        try:
            self._store.invalidate(name)
        except TypeError:  # an unhashable name never reached the cache
            pass

    # -- rotation and watching ---------------------------------------------------------

    async def rotate(
        self,
        name: str,
        *,
        generate: Step | None = None,
        apply: Step | None = None,
        verify: Step | None = None,
        token: str | None = None,
        resume: bool = False,
        if_older_than: timedelta | None = None,
        field: str | None = None,
        allow_native_rotation: bool = False,
    ) -> RotationResult | None:
        """``SecretStore.rotate`` as a coroutine. ``generate``, ``apply`` and ``verify`` may be
        async (awaited on this loop) or plain (called in a pool thread). Cancelled, the rotation
        stops before its next step and is left as a crash leaves it: the current value
        untouched or already promoted, resumable with ``resume=True`` or ``discard_pending``."""
        loop = asyncio.get_running_loop()
        gave_up = threading.Event()
        running: set[concurrent.futures.Future[Any]] = set()
        steps = {step: rotation_step(fn, loop, gave_up, running)
                 for step, fn in (("generate", generate), ("apply", apply), ("verify", verify))}
        store = self._store
        try:
            return await self._call(
                lambda: store.rotate(name, token=token, resume=resume, if_older_than=if_older_than, field=field,
                                     allow_native_rotation=allow_native_rotation, **steps),
                gave_up=gave_up, name=name,
            )
        except asyncio.CancelledError:
            for future in list(running):
                future.cancel()
            raise

    async def discard_pending(self, name: str) -> str | None:
        """Abandon an unfinished rotation; returns the pending version dropped, if any."""
        store = self._store
        return await self._call(lambda: store.discard_pending(name), name=name)

    def watch(self, name: str, *, interval: float = 30.0) -> AsyncWatch:
        """``async for secret in store.watch(name)``: each new current value of ``name`` after
        the watch starts (at ``async with`` or the first iteration); see ``AsyncWatch``."""
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise InvalidArgumentError("interval is a number of seconds > 0", name=name, backend=self.backend)
        watch = AsyncWatch(self, name, float(interval))
        self._watches.add(watch)
        return watch

    def lease(self, path: str, *, params: Mapping[str, Any] | None = None) -> AsyncLeasing:
        """``await store.lease(path)`` or ``async with store.lease(path) as creds``: the sync
        store's ``lease`` issued in the pool (see docs/leases.md); ``on_change`` takes async callbacks."""
        store = self._store

        async def issue() -> Lease:
            check_lease_request(store, path, params)  # before any I/O, as the sync store does
            return await self._call(lambda: store.lease(path, params=params), name=path)

        return AsyncLeasing(issue)

    # -- closing -----------------------------------------------------------------------

    async def __aenter__(self) -> AsyncSecretStore:
        """Start the pool's threads now, from a helper thread: the first burst of cold reads
        then does not stall the loop while threads are created one by one."""
        await asyncio.to_thread(self._pool.prestart)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the watches, let started backend calls finish (off the loop), and close the
        store if this facade opened it (``open_async``); a store it was given stays open."""
        for watch in list(self._watches):
            await watch.aclose()
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        """The blocking part of ``close`` (also for sync teardown, e.g. a pytest fixture)."""
        for watch in list(self._watches):
            watch.stop_soon()
        self._pool.shutdown()
        if self._owns_store:
            self._store.close()

    # -- running blocking work (secretkit.aio_pool) --------------------------------------

    async def _call(self, fn: Callable[[], T], *, shared: bool = False, gave_up: threading.Event | None = None,
                    name: str | None = None) -> T:
        """Run blocking ``fn`` in the pool and await it, until its deadline; see ``Pool.call``."""
        return await self._pool.call(fn, shared=shared, gave_up=gave_up, name=name)
