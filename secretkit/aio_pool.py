"""The async facade's bounded thread pool, and the bridges between its threads and event loops.

* One pool thread per call, never two. The store call runs its attempts in the pool thread
  itself (``attempts.inline``), and the awaiting task enforces the call's time limit: with a
  ``deadline``, it stops waiting that long after the call was made (time queued for a thread
  included); with only an ``attempt_timeout``, once the running attempt has overrun its end by
  ``OVERRUN`` seconds. Then it raises ``DeadlineExceededError`` and abandons the thread, whose
  SDK requests are still bounded by ``request_timeout`` (the attempt's end) and which makes no
  further retry. So an attempt is ended at its ``attempt_timeout`` by the SDK's own timeouts
  (fitted to it by ``request_timeout``) and retried from the same thread; one that ignores its
  timeouts (a server that drips its answer) is not cut off and retried as on a sync thread:
  the call waits for it until the deadline.
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
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from secretkit import attempts as _attempts
from secretkit import forking
from secretkit import retry as _retry
from secretkit.deadline import ATTEMPT_END
from secretkit.errors import DeadlineExceededError
from secretkit.flight import Flight
from secretkit.policies import RetryPolicy
from secretkit.secret import Secret

T = TypeVar("T")

#: A rotation step: a plain callable, or one returning an awaitable (``async def``).
Step = Callable[[Secret], Any]


class Pool:
    """``max_workers`` threads, started on first use (or all at once by ``prestart``).

    ``policy`` is the time limit the awaiting tasks enforce (the store's ``RetryPolicy``; None
    for a local backend, whose calls the store never cuts off either); ``backend`` names the
    backend in the ``DeadlineExceededError`` of a call given up on."""

    def __init__(self, max_workers: int, *, policy: RetryPolicy | None = None, backend: str | None = None) -> None:
        self.max_workers = max_workers
        self.policy = policy
        self.backend = backend
        #: the futures of calls given up on at their deadline, still running: ``shutdown`` does not wait for them
        self._abandoned: set[concurrent.futures.Future[Any]] = set()
        self._running: set[concurrent.futures.Future[Any]] = set()
        self._executor: Threads | None = None
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
        self._abandoned = set()
        self._running = set()

    def executor(self) -> Threads:
        executor = self._executor
        if executor is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError("this AsyncSecretStore is closed")
                if self._executor is None:
                    self._executor = Threads(self.max_workers, "secretkit-aio")
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
        a load a task started, so queued loads still run), but not for those given up on at
        their deadline: they end when the backend answers or their requests time out."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is None:
            return
        executor.shutdown()
        while True:
            waited = [f for f in list(self._running) if f not in self._abandoned]
            if not waited:
                return
            concurrent.futures.wait(waited)

    def submit(self, context: contextvars.Context, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run ``fn`` in ``context`` on a pool thread, its attempts inline (no second thread)."""

        def job() -> T:
            with _attempts.inline():
                return fn()

        future = self.executor().submit(context.run, job)
        self._running.add(future)
        future.add_done_callback(self._settled)
        return future

    def _settled(self, future: concurrent.futures.Future[Any]) -> None:
        self._running.discard(future)
        self._abandoned.discard(future)

    def end_of(self, context: contextvars.Context | None, began: float) -> float | None:
        """When a task that made its call at ``began`` (run in ``context``) stops waiting."""
        policy = self.policy
        if policy is None:
            return None
        if policy.deadline is not None:
            return began + policy.deadline
        attempt = None if context is None else context.get(ATTEMPT_END)
        return None if attempt is None else attempt + OVERRUN

    async def within(self, waiting: asyncio.Future[T], context: contextvars.Context | None, began: float,
                     name: str | None) -> T:
        """Await ``waiting`` until the call's end (``end_of``); past it, ``DeadlineExceededError``."""
        while True:
            end = self.end_of(context, began)
            if end is None:
                return await waiting
            left = end - time.monotonic()
            if left > 0:
                done, _ = await asyncio.wait({waiting}, timeout=left)
                if done:
                    return waiting.result()
                if self.end_of(context, began) != end:  # another attempt started: its own end
                    continue
            if waiting.done():
                return waiting.result()
            waiting.add_done_callback(_consume)
            limit = "deadline" if self.policy is not None and self.policy.deadline is not None else "attempt's end"
            raise DeadlineExceededError(
                f"no answer by the call's {limit} (abandoned; a write may still land)", name=name,
                backend=self.backend,
            )

    async def call(self, fn: Callable[[], T], *, shared: bool = False, gave_up: threading.Event | None = None,
                   name: str | None = None) -> T:
        """Run blocking ``fn`` in the pool and await it, until its deadline (see the module
        docstring); ``name`` is the secret a ``DeadlineExceededError`` names."""
        loop = asyncio.get_running_loop()
        began = time.monotonic()
        gave_up = gave_up or threading.Event()
        context = contextvars.copy_context()  # audit hooks see the caller's context variables

        def job() -> T:
            if shared:
                return fn()
            if gave_up.is_set():  # cancelled while queued, before the pool dropped the job
                raise asyncio.CancelledError()
            with _retry.abandon_when(gave_up):
                return fn()

        future = self.submit(context, job)
        waiting = asyncio.wrap_future(future, loop=loop)
        try:
            return await self.within(waiting, context, began, name)
        except asyncio.CancelledError:
            waiting.cancel()
            if not shared:
                gave_up.set()
            raise
        except DeadlineExceededError:
            if not future.done():
                self._abandoned.add(future)
                if not shared:
                    gave_up.set()  # no further retry, and never started if still queued
            raise

    def start_load(self, load: Callable[[], None], context: contextvars.Context | None = None) -> None:
        """Run a flight's load in the pool; it is never cancelled (other readers wait for it)."""
        context = context or contextvars.copy_context()
        try:
            self.submit(context, load)
        except RuntimeError:  # closed meanwhile: the flight must still settle for its waiters
            threading.Thread(target=context.run, args=(load,), name="secretkit-aio-load", daemon=True).start()

    def handover(self, load: Callable[[], None], context: contextvars.Context | None = None) -> Callable[[], None]:
        """``start_load(load)`` once, by whichever calls the result first: the loop, through
        ``call_soon`` (so a burst of cold reads is registered before pool threads start
        competing with the loop for the GIL), or the leader task as it ends, if that is sooner."""
        pending: list[Callable[[], None]] = [load]

        def hand_over() -> None:
            if pending:
                self.start_load(pending.pop(), context)

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


class Threads:
    """At most ``max_workers`` daemon threads running submitted calls in order, started one per
    submit while none is idle. ``ThreadPoolExecutor``'s threads are joined at interpreter exit,
    and a call given up on at its deadline may be stuck on a server that never answers: it must
    not hold up the exit (the attempt workers of a sync call are daemon threads for the same reason)."""

    def __init__(self, max_workers: int, prefix: str) -> None:
        self.max_workers = max_workers
        self._prefix = prefix
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...]] | None]
        self._jobs = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._shut = False

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._shut:
                raise RuntimeError("this AsyncSecretStore is closed")
            self._jobs.put((future, fn, args))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self.max_workers:
                thread = threading.Thread(target=self._work, name=f"{self._prefix}_{len(self._threads)}", daemon=True)
                thread.start()
                self._threads.append(thread)
        return future

    def shutdown(self) -> None:
        """Refuse new calls; each thread ends once the calls queued before this have run."""
        with self._lock:
            self._shut = True
            for _ in self._threads:
                self._jobs.put(None)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, args = job
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args)
                except BaseException as exc:  # noqa: BLE001 - it belongs to the caller
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del job, future, fn, args  # nothing of a finished call stays referenced from here
            self._idle.release()


#: Seconds past its end an attempt may still answer (when no deadline bounds the call): its SDK
#: timeout, fitted to the end by ``request_timeout``, fires then and the call retries.
OVERRUN = 0.25


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned call's outcome, so asyncio does not report it as never retrieved."""
    if not future.cancelled():
        future.exception()


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
