"""Retry policy: backoff with full jitter, only for transient portable codes (tenacity), and the
time limits of a call: a ``deadline`` for the whole call and an ``attempt_timeout`` per attempt.

``call`` runs a blocking call's attempts on the calling thread; ``call_async`` runs awaitable
attempts and backs off with ``asyncio.sleep``, so an event loop never sleeps in a retry. A
blocking call run for a caller that may give up (an asyncio task cancelled while the call runs
in a worker thread) runs under ``abandon_when(event)``: once the event is set, no further
attempt starts and a backoff in progress ends at once.

Time limits. Each attempt runs with an end time (``time_left()`` inside it): the earlier of
``attempt_timeout`` from its start and the call's ``deadline``. No backoff sleeps past the
deadline: a wait takes at most half of the time left, so the last attempt gets the rest and
is cut off at the deadline. A call made inside another's attempt (a driver call inside an
async facade's attempt) never outlives that attempt. SDK timeouts are per socket read, so a server that answers a byte at a time never trips them:
``AttemptRunner`` runs an attempt in a worker thread and stops waiting for it at its end
(``SecretStore`` does that for remote backends), and ``request_timeout`` gives a driver the
per-request SDK timeout that fits in what is left.
"""

from __future__ import annotations

import collections
import contextvars
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar, overload

import tenacity
from pydantic import BaseModel, ConfigDict, Field

from secretkit import forking
from secretkit.errors import DeadlineExceededError, SecretError, UnavailableError

T = TypeVar("T")


class RetryPolicy(BaseModel):
    """When and how often a failed backend call is tried again, and how long it may take.

    Only errors whose code is transient (throttled, unavailable, deadline exceeded) are
    retried; writes only where the driver makes them idempotent. The wait before retry *n*
    is uniform in ``[0, min(max_backoff, initial_backoff * 2**n))`` (full jitter).

    ``deadline`` bounds the whole call, every attempt and every wait included: a wait takes at
    most half of the time left before it, and the last attempt is cut off at it.
    ``attempt_timeout`` bounds each attempt (None: each may use what is left of the deadline).
    On remote backends an attempt that runs out of time is abandoned with
    ``DeadlineExceededError`` whatever the SDK is doing (a write so cut off may have landed).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(4, ge=1, description="total attempts, the first included")
    initial_backoff: float = Field(0.2, ge=0, description="seconds; scale of the first wait")
    max_backoff: float = Field(5.0, ge=0, description="seconds; cap of any one wait")
    deadline: float | None = Field(
        30.0, gt=0, description="seconds for the whole call, attempts and waits together; None: no bound"
    )
    attempt_timeout: float | None = Field(
        None, gt=0, description="seconds one attempt may take; None: what is left of the deadline"
    )

    @classmethod
    def none(cls) -> RetryPolicy:
        """One attempt, no retries, and no time limit of the store's own (the SDK's timeouts apply)."""
        return cls(max_attempts=1, deadline=None)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, SecretError) and exc.transient


_abandoned: ContextVar[threading.Event | None] = ContextVar("secretkit_retry_abandoned", default=None)
#: ``time.monotonic()`` by which the running attempt must end; None: no bound.
_attempt_end: ContextVar[float | None] = ContextVar("secretkit_attempt_end", default=None)


@contextmanager
def abandon_when(event: threading.Event) -> Iterator[None]:
    """Within this block (this thread or context), ``call`` starts no further attempt once
    ``event`` is set, and a backoff wait ends as soon as it is: the caller has given up."""
    token = _abandoned.set(event)
    try:
        yield
    finally:
        _abandoned.reset(token)


def time_left() -> float | None:
    """Seconds until the running attempt must end (negative once it is over); None outside an
    attempt, or when neither ``deadline`` nor ``attempt_timeout`` bounds it."""
    end = _attempt_end.get()
    return None if end is None else end - time.monotonic()


@overload
def request_timeout(limit: float) -> float: ...
@overload
def request_timeout(limit: None) -> float | None: ...
def request_timeout(limit: float | None) -> float | None:
    """The timeout to give one SDK request: ``limit`` (the driver's option; None for none)
    capped at the time left in the running attempt.

    Raises ``DeadlineExceededError`` once that time is spent, so an attempt the store has
    abandoned starts no further request."""
    left = time_left()
    if left is None:
        return limit
    if left <= 0:
        raise DeadlineExceededError("the attempt's time is spent; no further request is sent")
    return left if limit is None else min(limit, left)


def _end_of_call(policy: RetryPolicy) -> float | None:
    """When the whole call must end: its deadline, and never after the enclosing attempt."""
    end = None if policy.deadline is None else time.monotonic() + policy.deadline
    outer = _attempt_end.get()
    if outer is not None:
        end = outer if end is None else min(end, outer)
    return end


def _end_of_attempt(policy: RetryPolicy, call_end: float | None) -> float | None:
    if policy.attempt_timeout is None:
        return call_end
    end = time.monotonic() + policy.attempt_timeout
    return end if call_end is None else min(end, call_end)


def _no_time() -> DeadlineExceededError:
    return DeadlineExceededError("the deadline passed before the attempt could start")


#: Seconds an attempt needs at least: a retry that would get less before the deadline is not made.
MIN_ATTEMPT = 0.01


class _Schedule:
    """tenacity's wait and stop for one call. Waits are full jitter, but never more than half of
    the time left before the end of the call, so the next attempt gets the other half; no
    attempt is made that would get less than ``MIN_ATTEMPT``, none beyond ``max_attempts``, and
    none once the caller gave up."""

    def __init__(self, policy: RetryPolicy, end: float | None, abandoned: threading.Event | None) -> None:
        self._jitter = tenacity.wait_random_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff)
        self._attempts = policy.max_attempts
        self._end = end
        self._abandoned = abandoned
        self.by_deadline = False

    def wait(self, state: tenacity.RetryCallState) -> float:
        seconds: float = self._jitter(state)
        if self._end is not None:
            seconds = max(0.0, min(seconds, (self._end - time.monotonic()) / 2))
        return seconds

    def stop(self, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= self._attempts:
            return True
        if self._abandoned is not None and self._abandoned.is_set():
            return True
        if self._end is not None and self._end - time.monotonic() - state.upcoming_sleep < MIN_ATTEMPT:
            self.by_deadline = True
            return True
        return False


def _gave_up(exc: SecretError, attempts: int, by_deadline: bool) -> UnavailableError:
    why = "the deadline left no time for another attempt" if by_deadline else "out of attempts"
    return UnavailableError(
        f"gave up after {attempts} attempts ({why}); last error: {exc.code.value}: {exc.message}",
        name=exc.name,
        backend=exc.backend,
        attempts=attempts,
    )


def call(policy: RetryPolicy, fn: Callable[[], T], *, retry: bool = True, sleep: Callable[[float], None] | None = None) -> tuple[T, int]:
    """Run ``fn`` under ``policy``; return its result and the number of attempts made.

    Each attempt runs with its end time set (``time_left()``); no wait runs past the deadline.
    When retries are exhausted, raise ``UnavailableError`` carrying the attempt count, with
    the last error as its cause.
    """
    end = _end_of_call(policy)

    def run_attempt() -> T:
        ends = _end_of_attempt(policy, end)
        if ends is not None and ends <= time.monotonic():
            raise _no_time()
        token = _attempt_end.set(ends)
        try:
            return fn()
        finally:
            _attempt_end.reset(token)

    if not retry or policy.max_attempts == 1:
        return run_attempt(), 1
    abandoned = _abandoned.get()
    if abandoned is not None and sleep is None:
        event = abandoned

        def sleep(seconds: float) -> None:  # a backoff ends when the caller gives up
            event.wait(seconds)

    schedule = _Schedule(policy, end, abandoned)
    retrying = tenacity.Retrying(
        stop=schedule.stop,
        wait=schedule.wait,
        retry=tenacity.retry_if_exception(_retryable),
        reraise=True,
        sleep=sleep or tenacity.nap.sleep,
    )
    attempts = 0
    last: BaseException | None = None

    def attempt() -> T:
        nonlocal attempts, last
        if last is not None and abandoned is not None and abandoned.is_set():
            raise last  # given up during the backoff: no further attempt
        attempts += 1
        try:
            return run_attempt()
        except BaseException as exc:
            last = exc
            raise

    try:
        return retrying(attempt), attempts
    except SecretError as exc:
        if not exc.transient or attempts == 1:
            raise
        raise _gave_up(exc, attempts, schedule.by_deadline) from exc


async def call_async(
    policy: RetryPolicy, fn: Callable[[], Awaitable[T]], *, retry: bool = True,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> tuple[T, int]:
    """``call`` for awaitable attempts: ``fn()`` makes a fresh awaitable per attempt, and the
    backoff between attempts is ``asyncio.sleep`` (or ``sleep``), never a blocking sleep.
    Same policy, same time limits (an attempt still running at its end is cancelled and
    counts as ``DeadlineExceededError``), same errors, same attempt count; cancelling the
    caller ends it at once."""
    import asyncio  # here, not at module top: ``import secretkit`` must not import asyncio

    end = _end_of_call(policy)

    async def run_attempt() -> T:
        ends = _end_of_attempt(policy, end)
        if ends is None:
            return await fn()
        left = ends - time.monotonic()
        if left <= 0:
            raise _no_time()
        token = _attempt_end.set(ends)
        try:
            task = asyncio.ensure_future(fn())  # the task copies the context: it sees the end
        finally:
            _attempt_end.reset(token)
        try:
            done, _ = await asyncio.wait({task}, timeout=left)
        except BaseException:  # the caller was cancelled: the attempt goes with it
            task.cancel()
            raise
        if task in done:
            return task.result()
        task.cancel()
        task.add_done_callback(_consume)
        raise DeadlineExceededError(f"no answer within the attempt's {left:.3g} s")

    if not retry or policy.max_attempts == 1:
        return await run_attempt(), 1
    schedule = _Schedule(policy, end, None)
    retrying = tenacity.AsyncRetrying(
        stop=schedule.stop,
        wait=schedule.wait,
        retry=tenacity.retry_if_exception(_retryable),
        reraise=True,
        sleep=sleep or asyncio.sleep,
    )
    attempts = 0

    async def attempt() -> T:
        nonlocal attempts
        attempts += 1
        return await run_attempt()

    try:
        return await retrying(attempt), attempts
    except SecretError as exc:
        if not exc.transient or attempts == 1:
            raise
        raise _gave_up(exc, attempts, schedule.by_deadline) from exc


def _consume(task: Any) -> None:
    """Retrieve an abandoned task's outcome, so asyncio does not report it as never retrieved."""
    if not task.cancelled():
        task.exception()


# -- running an attempt where its caller can stop waiting for it --------------------------------

#: Seconds a worker thread waits for another attempt before it ends.
IDLE_SECONDS = 30.0
#: Abandoned attempts still running, per runner (per store), beyond which no further one is started.
MAX_ABANDONED = 16
#: The name of every worker thread.
WORKER_NAME = "secretkit-attempt"


class AttemptRunner:
    """Runs attempts in worker threads, so the caller stops waiting at the attempt's end.

    ``run(fn)`` hands ``fn`` (with the caller's context: its end time, its audit context) to an
    idle worker, or a new one, and waits until the attempt's end (``time_left()``); an attempt
    with no end runs on the calling thread, with no hop. An attempt still queued at its end
    never starts; one still running is abandoned (``DeadlineExceededError``) and finishes in
    the background, ended by its SDK timeouts (``request_timeout`` fits them into the attempt)
    or by ``request_timeout`` refusing to start another request. While ``max_abandoned`` of
    this runner's abandoned attempts are still running, ``run`` starts no further one
    (``UnavailableError``, transient, so the retry policy backs off): a backend that never
    answers holds at most that many threads and sockets beyond the calls in flight when it
    stopped answering.

    The worker threads are shared by every runner of the process (so idle ones do not pile up
    with the stores opened), started only when none is idle, and end after ``IDLE_SECONDS``
    without work. They are daemon threads: one stuck on a dead server never holds up
    interpreter exit. A forked child starts with no workers and no abandoned attempts: the
    parent's threads do not exist there.
    """

    def __init__(self, *, max_abandoned: int | None = None) -> None:
        self.max_abandoned = MAX_ABANDONED if max_abandoned is None else max_abandoned
        self._lock = threading.Lock()
        self._abandoned = 0
        forking.at_fork(self, AttemptRunner._after_fork)

    def _after_fork(self) -> None:
        # the abandoned attempts ran in the parent's threads, which the child does not have
        self._lock = threading.Lock()
        self._abandoned = 0

    @property
    def abandoned(self) -> int:
        """This runner's abandoned attempts still running."""
        return self._abandoned

    def run(self, fn: Callable[[], T]) -> T:
        left = time_left()
        if left is None:
            return fn()
        if left <= 0:
            raise _no_time()
        if self._abandoned >= self.max_abandoned:
            raise UnavailableError(
                f"{self._abandoned} earlier calls to this backend are still unanswered; not starting another"
            )
        job = _Job(fn, contextvars.copy_context(), self)
        _WORKERS.submit(job)
        if not job.done.acquire(timeout=left):
            if job.started.acquire(blocking=False):  # still queued: it never starts now
                raise DeadlineExceededError(f"no worker was free within the attempt's {left:.3g} s")
            if job.settled.acquire(blocking=False):  # still running: abandoned
                self._count_abandoned(+1)
                raise DeadlineExceededError(
                    f"no answer within the attempt's {left:.3g} s (abandoned; a write may still land)"
                )
            job.done.acquire()  # it finished at the last moment: its outcome stands
        if job.error is not None:
            error, job.error = job.error, None
            raise error
        return job.result  # type: ignore[no-any-return]

    def _count_abandoned(self, change: int) -> None:
        with self._lock:
            self._abandoned += change


class _Workers:
    """The process's worker threads and their queue of jobs.

    Every hand-over decision is an atomic deque operation or a non-blocking lock acquire, so a
    caller and a worker never wait for each other (each such wait costs a context switch)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._idle: collections.deque[None] = collections.deque()  # a token per idle, unpromised worker
        self._lock = threading.Lock()
        self.count = 0

    def submit(self, job: _Job) -> None:
        self._jobs.put(job)
        try:
            self._idle.pop()  # an idle worker will take it
        except IndexError:
            self._start()

    def _start(self) -> None:
        with self._lock:
            self.count += 1
        try:
            threading.Thread(target=self._work, name=WORKER_NAME, daemon=True).start()
        except BaseException:
            with self._lock:
                self.count -= 1
            raise

    def _work(self) -> None:
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=IDLE_SECONDS)
                except queue.Empty:
                    try:
                        self._idle.pop()  # retire, unless a caller counts on an idle worker
                    except IndexError:
                        continue
                    return
                if job.started.acquire(blocking=False):  # else its caller gave up while it was queued
                    job.run()
                    if not job.settled.acquire(blocking=False):  # its caller gave up on it meanwhile
                        job.owner._count_abandoned(-1)
                    self._idle.append(None)  # idle before its caller wakes: the next call finds this worker
                    job.done.release()
                else:
                    self._idle.append(None)
                del job  # nothing of a finished job stays referenced from here
        finally:
            with self._lock:
                self.count -= 1


_WORKERS = _Workers()


@forking.reset_in_child
def _no_workers_in_child() -> None:
    """A forked child has none of the parent's workers: its idle tokens and queued jobs describe
    threads that do not exist there (a call handed to them would wait out its whole deadline)."""
    global _WORKERS
    _WORKERS = _Workers()


class _Job:
    """One attempt handed to a worker: the call, its context and its outcome. ``started`` and
    ``settled`` are taken (never waited for) by whichever of the worker and the caller gets
    there first: the worker to start it, or the caller to cancel it; the worker to finish it,
    or the caller to abandon it. ``done`` is released when it finished."""

    __slots__ = ("context", "done", "error", "fn", "owner", "result", "settled", "started")

    def __init__(self, fn: Callable[[], Any], context: contextvars.Context, owner: AttemptRunner) -> None:
        self.fn: Callable[[], Any] | None = fn
        self.context = context
        self.owner = owner
        self.result: Any = None
        self.error: BaseException | None = None
        self.started = threading.Lock()
        self.settled = threading.Lock()
        self.done = threading.Lock()
        self.done.acquire()

    def run(self) -> None:
        fn, self.fn = self.fn, None
        assert fn is not None
        try:
            self.result = self.context.run(fn)
        except BaseException as exc:  # noqa: BLE001 - whatever it is, it belongs to the caller
            self.error = exc
