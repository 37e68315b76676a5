"""The async facade's bounded thread pool, and the bridges between its threads and event loops.

* ``Pool.call`` runs a blocking call in the pool and awaits it. A call only its caller waits
  for is abandoned when that caller is cancelled: never started if still queued, and no
  further retry if running (``retry.abandon_when``). A call that starts a load others may
  join (``shared``) always runs to its end.
* ``Pool.waiter`` lets the tasks of one loop wait for a cache flight without a thread: the
  flight's done-callback wakes the loop once (``call_soon_threadsafe``) and every waiting task
  has a future of its own, so one cancelled waiter cancels nobody else's wait.
* ``Pool.handover`` hands a flight's load to the pool once the loop has run what is ready.
* ``rotation_step`` turns a plain or async rotation step into one the worker thread can call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from secretkit import forking
from secretkit import retry as _retry
from secretkit.flight import Flight
from secretkit.secret import Secret

T = TypeVar("T")

#: A rotation step: a plain callable, or one returning an awaitable (``async def``).
Step = Callable[[Secret], Any]


class Pool:
    """``max_workers`` threads, started on first use (or all at once by ``prestart``)."""

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        #: the futures of the tasks of one loop waiting for one flight
        self._waits: dict[tuple[Flight, asyncio.AbstractEventLoop], list[asyncio.Future[None]]] = {}
        forking.at_fork(self, Pool._after_fork)

    def _after_fork(self) -> None:
        """In a forked child the executor's threads do not exist (it would queue every call
        behind an "idle" thread of the parent): the next call starts a new executor. The waits
        belonged to the parent's event loops, which do not survive a fork either."""
        self._executor = None
        self._lock = threading.Lock()
        self._waits = {}

    def executor(self) -> concurrent.futures.ThreadPoolExecutor:
        executor = self._executor
        if executor is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError("this AsyncSecretStore is closed")
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        self.max_workers, thread_name_prefix="secretkit-aio")
                executor = self._executor
        return executor

    def prestart(self) -> None:
        """Start every thread now (blocking: call it off the loop). Threads started later, one
        per submit, would each take the GIL from the loop in the middle of a burst."""
        executor = self.executor()
        started = threading.Semaphore(0)
        all_started = threading.Event()

        def hold() -> None:  # each job keeps its thread busy, so every submit starts a new one
            started.release()
            all_started.wait(5)

        for _ in range(self.max_workers):
            executor.submit(hold)
        for _ in range(self.max_workers):
            started.acquire(timeout=5)
        all_started.set()

    def shutdown(self) -> None:
        """Refuse new calls; wait for the started and queued ones (threads may be waiting for
        a load a task started, so queued loads still run)."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    async def call(self, fn: Callable[[], T], *, shared: bool = False, gave_up: threading.Event | None = None) -> T:
        """Run blocking ``fn`` in the pool and await it (see the module docstring)."""
        loop = asyncio.get_running_loop()
        gave_up = gave_up or threading.Event()
        context = contextvars.copy_context()  # audit hooks see the caller's context variables

        def job() -> T:
            if shared:
                return fn()
            if gave_up.is_set():  # cancelled while queued, before the pool dropped the job
                raise asyncio.CancelledError()
            with _retry.abandon_when(gave_up):
                return fn()

        future = self.executor().submit(context.run, job)
        try:
            return await asyncio.wrap_future(future, loop=loop)
        except asyncio.CancelledError:
            if not shared:
                gave_up.set()
            raise

    def start_load(self, load: Callable[[], None]) -> None:
        """Run a flight's load in the pool; it is never cancelled (other readers wait for it)."""
        context = contextvars.copy_context()
        try:
            self.executor().submit(context.run, load)
        except RuntimeError:  # closed meanwhile: the flight must still settle for its waiters
            threading.Thread(target=context.run, args=(load,), name="secretkit-aio-load", daemon=True).start()

    def handover(self, load: Callable[[], None]) -> Callable[[], None]:
        """``start_load(load)`` once, by whichever calls the result first: the loop, through
        ``call_soon`` (so a burst of cold reads is registered before pool threads start
        competing with the loop for the GIL), or the leader task as it ends, if that is sooner."""
        pending: list[Callable[[], None]] = [load]

        def hand_over() -> None:
            if pending:
                self.start_load(pending.pop())

        return hand_over

    def waiter(self, flight: Flight) -> asyncio.Future[None]:
        """A future of the running loop, done once ``flight`` has settled."""
        loop = asyncio.get_running_loop()
        key = (flight, loop)
        mine: asyncio.Future[None] = loop.create_future()
        waiters = self._waits.get(key)
        if waiters is not None:
            waiters.append(mine)
            return mine
        self._waits[key] = [mine]
        waits = self._waits

        def resolve() -> None:
            for future in waits.pop(key, ()):
                if not future.done():
                    future.set_result(None)

        def wake(_: Flight) -> None:
            try:
                loop.call_soon_threadsafe(resolve)
            except RuntimeError:  # the loop was closed: nobody is left to wake
                waits.pop(key, None)

        flight.add_done_callback(wake)
        return mine


class GaveUp(BaseException):
    """Ends a rotation in its worker thread after the awaiting task was cancelled. Not an
    ``Exception``: the rotation's step wrapper must not turn it into a ``RotationError``."""


def rotation_step(fn: Step | None, loop: asyncio.AbstractEventLoop, gave_up: threading.Event,
                  running: set[concurrent.futures.Future[Any]]) -> Step | None:
    """A rotation step for the worker thread: a plain ``fn`` is called there; an awaitable it
    returns is awaited on ``loop`` (tracked in ``running`` so a cancel can cancel it). After
    the caller gave up, no step starts."""
    if fn is None:
        return None

    def step(secret: Secret) -> Any:
        if gave_up.is_set():
            raise GaveUp()
        result = fn(secret)
        if not inspect.isawaitable(result):
            return result
        future = asyncio.run_coroutine_threadsafe(_awaited(result), loop)
        running.add(future)
        if gave_up.is_set():  # the caller gave up before it could see this step
            future.cancel()
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise GaveUp() from None
        finally:
            running.discard(future)

    return step


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable
