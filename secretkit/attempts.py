"""Running an attempt where its caller can stop waiting for it: ``AttemptRunner``.

SDK timeouts are per socket read, so a server that answers a byte at a time never trips them.
The store therefore runs each attempt of a remote call in a worker thread and stops waiting at
the attempt's end (``deadline.time_left()``); ``deadline.request_timeout`` ends the abandoned
attempt's requests too. Each runner owns its worker threads: a store creates one and stops its
threads with ``close()``, so no thread outlives the object that started it.
"""

from __future__ import annotations

import collections
import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from secretkit import forking
from secretkit.deadline import no_time, time_left
from secretkit.errors import DeadlineExceededError, UnavailableError

T = TypeVar("T")

#: Seconds a worker thread waits for another attempt before it ends.
IDLE_SECONDS = 30.0
#: Abandoned attempts still running, per runner (per store), beyond which no further one is started.
MAX_ABANDONED = 16
#: The name of every worker thread.
WORKER_NAME = "secretkit-attempt"
#: Seconds ``close`` waits for each idle worker to end.
_JOIN_SECONDS = 1.0


_INLINE: ContextVar[bool] = ContextVar("secretkit_attempts_inline", default=False)


@contextmanager
def inline() -> Iterator[None]:
    """Within this block (this thread or context), ``AttemptRunner.run`` runs each attempt on the
    calling thread: its caller stops waiting at the end itself (the async facade's task awaits
    the pool thread with the call's deadline), so a second thread would only double the cost.
    The attempt's SDK requests are still bounded by ``request_timeout``."""
    token = _INLINE.set(True)
    try:
        yield
    finally:
        _INLINE.reset(token)


class AttemptRunner:
    """Runs attempts in worker threads, so the caller stops waiting at the attempt's end.

    ``run(fn)`` hands ``fn`` (with the caller's context: its end time, its audit context) to an
    idle worker, or a new one, and waits until the attempt's end (``time_left()``); an attempt
    with no end runs on the calling thread, with no hop, and so does one run ``inline()``. An
    attempt still queued at its end
    never starts; one still running is abandoned (``DeadlineExceededError``) and finishes in
    the background, ended by its SDK timeouts (``request_timeout`` fits them into the attempt)
    or by ``request_timeout`` refusing to start another request. While ``max_abandoned`` of
    this runner's abandoned attempts are still running, ``run`` starts no further one
    (``UnavailableError``, transient, so the retry policy backs off): a backend that never
    answers holds at most that many threads and sockets beyond the calls in flight when it
    stopped answering.

    The workers belong to this runner: started only when none is idle, ended after
    ``IDLE_SECONDS`` without work, and by ``close()`` (idle ones at once; an abandoned one when
    its attempt ends). A later ``run`` starts workers again. They are daemon threads: one stuck
    on a dead server never holds up interpreter exit. A forked child starts with no workers and
    no abandoned attempts: the parent's threads do not exist there.
    """

    def __init__(self, *, max_abandoned: int | None = None) -> None:
        self.max_abandoned = MAX_ABANDONED if max_abandoned is None else max_abandoned
        self._lock = threading.Lock()
        self._abandoned = 0
        self._workers = _Workers()
        forking.at_fork(self, AttemptRunner._after_fork)

    def _after_fork(self) -> None:
        # the abandoned attempts ran in the parent's threads, which the child does not have; its
        # idle tokens and queued jobs describe them (a call handed to them would wait its whole deadline)
        self._lock = threading.Lock()
        self._abandoned = 0
        self._workers = _Workers()

    @property
    def abandoned(self) -> int:
        """This runner's abandoned attempts still running."""
        return self._abandoned

    @property
    def threads(self) -> int:
        """This runner's worker threads alive now (idle, busy or abandoned)."""
        return self._workers.count

    def run(self, fn: Callable[[], T]) -> T:
        left = time_left()
        if left is None:
            return fn()
        if left <= 0:
            raise no_time()
        if _INLINE.get():
            return fn()
        if self._abandoned >= self.max_abandoned:
            raise UnavailableError(
                f"{self._abandoned} earlier calls to this backend are still unanswered; not starting another"
            )
        job = _Job(fn, contextvars.copy_context(), self)
        self._workers.submit(job)
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

    def close(self) -> None:
        """End the idle workers now and every busy one once its attempt ends. Calls made later
        start new workers (a store's ``close`` is final for the driver, not for this runner)."""
        workers, self._workers = self._workers, _Workers()
        workers.stop()

    def _count_abandoned(self, change: int) -> None:
        with self._lock:
            self._abandoned += change


class _Workers:
    """One runner's worker threads and their queue of jobs.

    Every hand-over decision is an atomic deque operation or a non-blocking lock acquire, so a
    caller and a worker never wait for each other (each such wait costs a context switch)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._idle: collections.deque[None] = collections.deque()  # a token per idle, unpromised worker
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._stopped = False
        self.count = 0

    def submit(self, job: _Job) -> None:
        self._jobs.put(job)
        try:
            self._idle.pop()  # an idle worker will take it
        except IndexError:
            self._start()

    def _start(self) -> None:
        thread = threading.Thread(target=self._work, name=WORKER_NAME, daemon=True)
        with self._lock:
            self.count += 1
            self._threads.add(thread)
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self.count -= 1
                self._threads.discard(thread)
            raise

    def stop(self) -> None:
        """Wake every worker with an end-of-work marker, and wait briefly for the idle ones."""
        with self._lock:
            self._stopped = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(_JOIN_SECONDS)

    def _work(self) -> None:
        try:
            while not self._stopped:
                try:
                    job = self._jobs.get(timeout=IDLE_SECONDS)
                except queue.Empty:
                    try:
                        self._idle.pop()  # retire, unless a caller counts on an idle worker
                    except IndexError:
                        continue
                    return
                if job is None:  # stopped (a job queued behind the marker belongs to a closed runner)
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
                self._threads.discard(threading.current_thread())


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
