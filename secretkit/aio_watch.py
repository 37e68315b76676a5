"""Async change watching: ``async for secret in store.watch(name, interval=...)``.

The async twin of ``secretkit.watch.Watcher``, with the same rules: a change drops the name
from the cache first, so the value yielded (and every later read) is the new one; a deletion
is not yielded (there is no value), a re-created secret is; a failing check is counted in
``errors`` and never ends the watch.

* Polling (every backend without a change stream) happens on the event loop, and only while
  the consumer waits for the next value: each check is one cheap ``current_version`` call
  (``VersionProbe``) or a read, run in the store's pool and retried with ``asyncio.sleep``
  backoff. A consumer that breaks out simply stops asking; ``aclose()`` (or ``async with``,
  or ``contextlib.aclosing``) marks it closed.
* A change stream (``ChangeStream``: Kubernetes' watch API) is a blocking iterator, so one
  daemon thread follows it and hands each version to the loop; if the stream breaks, the
  watch checks once by polling (nothing is missed) and the thread resumes the stream after a
  backoff. ``aclose()``, a cancelled consumer or garbage collection stops the thread.
* Across ``os.fork()``: event loops do not survive a fork, so in the child a started watch
  forgets the parent's loop, queue and stream thread and starts again on the loop that next
  iterates it, from the last version seen (no change is lost, none reported twice).
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from secretkit import forking
from secretkit import retry as _retry
from secretkit.drivers.base import ChangeStream, Driver, VersionProbe
from secretkit.errors import NotFoundError, SecretError
from secretkit.secret import Secret
from secretkit.store import SecretStore

T = TypeVar("T")


class WatchedStore(Protocol):
    """What a watch uses of ``AsyncSecretStore`` (named here so neither module imports the other)."""

    @property
    def store(self) -> SecretStore: ...

    @property
    def backend(self) -> str: ...

    @property
    def driver(self) -> Driver: ...

    def invalidate(self, name: str) -> None: ...

    async def get(self, name: str, *, version: str | None = None, stage: str | None = None,
                  max_age: float | None = None, refresh: bool = False) -> Secret: ...

    async def _call(self, fn: Callable[[], T], *, shared: bool = False,
                    gave_up: threading.Event | None = None, name: str | None = None) -> T: ...

#: An item the stream thread hands to the loop: ("version", id or None) or ("poll", None).
_Item = tuple[str, "str | None"]


class AsyncWatch:
    """An async iterator of the new current values of one secret; make one with
    ``AsyncSecretStore.watch``.

    The baseline (the version that is *not* reported) is taken when the watch starts: at
    ``async with`` or ``start()``, else at the first ``__anext__``. ``poll()`` checks at once.
    ``streaming`` says whether a change stream is followed; ``errors`` counts failed checks.
    """

    def __init__(self, store: WatchedStore, name: str, interval: float) -> None:
        self.store, self.name, self.interval = store, name, interval
        self.errors = 0
        #: values found and queued for the consumer so far
        self.reported = 0
        driver = store.driver
        self.streaming = isinstance(driver, ChangeStream)
        self._seen: str | None = None
        self._baseline = False  # _seen holds the version not to report
        self._started = False
        self._closed = False
        self._start_lock: asyncio.Lock | None = None
        self._change_lock: asyncio.Lock | None = None
        self._ready: collections.deque[Secret] = collections.deque()
        self._inbox: asyncio.Queue[_Item] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        forking.at_fork(self, AsyncWatch._after_fork)

    def _after_fork(self) -> None:
        """In a forked child: the loop, its queue and locks, and the stream thread were the
        parent's; the next ``start`` (the next iteration) makes the child's own, and keeps the
        baseline."""
        if self._closed:
            return
        self._started = False
        self._start_lock = self._change_lock = None
        self._inbox = None
        self._loop = None
        self._stop = threading.Event()
        self._thread = None

    def __repr__(self) -> str:
        return f"AsyncWatch(name={self.name!r}, backend={self.store.backend!r}, streaming={self.streaming})"

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Take the baseline and, on a streaming backend, start following the stream (done
        by ``async with`` and the first iteration; calling it again does nothing)."""
        if self._started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._started or self._closed:
                return
            self._inbox = asyncio.Queue()
            self._loop = loop = asyncio.get_running_loop()
            self._change_lock = asyncio.Lock()
            if not self._baseline:  # (a watch resumed in a forked child keeps the parent's)
                self._seen = await self._version()
                self._baseline = True
            if self.streaming:
                self._thread = threading.Thread(
                    target=self._follow, args=(loop, self._inbox), name=f"secretkit-aio-watch-{self.name}", daemon=True)
                self._thread.start()
            self._started = True

    async def aclose(self) -> None:
        """Stop watching: iteration ends, no check runs afterwards, the stream thread stops."""
        self.stop_soon()

    def stop_soon(self) -> None:
        """``aclose`` without awaiting (from any thread): the stream thread ends at its next
        event or timeout and is never waited for."""
        self._closed = True
        self._stop.set()
        inbox, loop = self._inbox, self._loop
        if inbox is not None and loop is not None:
            try:  # asyncio.Queue is not thread-safe: hand the wake-up to its loop
                loop.call_soon_threadsafe(inbox.put_nowait, ("wake", None))
            except RuntimeError:  # its loop is closed
                pass

    def wake(self) -> None:
        """Check now rather than at the next poll (from any thread): the store heard a change
        of this secret (``secretkit.changes``)."""
        inbox, loop = self._inbox, self._loop
        if inbox is not None and loop is not None and not self._closed:
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, ("poll", None))
            except RuntimeError:  # its loop is closed
                pass

    async def __aenter__(self) -> AsyncWatch:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        self._stop.set()  # a watch dropped without aclose() must not keep its thread

    # -- iteration ---------------------------------------------------------------------

    def __aiter__(self) -> AsyncWatch:
        return self

    async def __anext__(self) -> Secret:
        try:
            await self.start()
            inbox = self._inbox
            assert inbox is not None
            while True:
                if self._ready:
                    return self._ready.popleft()
                if self._closed:
                    raise StopAsyncIteration
                try:
                    kind, version = await asyncio.wait_for(inbox.get(), None if self.streaming else self.interval)
                except asyncio.TimeoutError:
                    await self.poll()
                    continue
                if kind == "version":
                    await self._report(version)
                elif kind == "poll":
                    await self.poll()
        except asyncio.CancelledError:
            self.stop_soon()  # the consumer's task was cancelled: stop watching
            raise

    async def poll(self) -> bool:
        """Check once now; True if a new value was found (the iteration yields it next)."""
        await self.start()
        try:
            version = await self._version()
        except SecretError:
            self.errors += 1  # a transient outage must not end the watch
            return False
        return await self._report(version)

    # -- checks ------------------------------------------------------------------------

    async def _version(self) -> str | None:
        """The current version id, or None while the secret does not exist."""
        store, name = self.store, self.name
        sync = store.store
        driver = sync.driver
        try:
            if isinstance(driver, VersionProbe):
                def probe() -> str:
                    return sync.call_driver("watch", name, lambda: driver.current_version(name), retry=False)

                version, _ = await _retry.call_async(sync.options.retry, lambda: store._call(probe))
                return version
            return (await store.get(name, refresh=True)).version
        except NotFoundError:
            return None

    async def _report(self, version: str | None) -> bool:
        """Queue the value of ``version`` if it is new (see the module docstring)."""
        lock = self._change_lock
        assert lock is not None
        async with lock:  # a poll() and the iteration must not report one change twice
            if version == self._seen or self._closed:
                return False
            self.store.invalidate(self.name)
            if version is None:
                self._seen = None
                return False
            try:
                secret = await self.store.get(self.name)
            except NotFoundError:  # deleted since the check: reported when it comes back
                self._seen = None
                return False
            except SecretError:
                self.errors += 1
                return False
            self._seen = version
            self._ready.append(secret)
            self.reported += 1
        inbox = self._inbox
        assert inbox is not None
        inbox.put_nowait(("wake", None))  # a consumer waiting for the stream or the timer looks again
        return True

    def _follow(self, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[_Item]) -> None:
        """The stream thread: hand every version the stream yields to the loop."""
        driver: Any = self.store.driver
        stop = self._stop

        def hand(item: _Item) -> bool:
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody will consume
                stop.set()
                return False
            return True

        failures = 0
        while not stop.is_set():
            try:
                for version in driver.watch_versions(self.name, stop):
                    failures = 0
                    if stop.is_set() or not hand(("version", version)):
                        return
            except Exception:  # noqa: BLE001 - any stream failure: check once by polling, back off, resume
                self.errors += 1
                failures += 1
                if not hand(("poll", None)):
                    return
                stop.wait(min(self.interval, 0.1 * 2 ** min(failures, 8)))
