"""The lease worker of one store: renews, re-issues and revokes every lease the store holds.

One daemon thread per store (started with the first lease, stopped by ``close``), not one per
lease. Each lease has one next action, the keeper sleeps until the earliest:

* renew every two thirds of the TTL ``T`` the engine first granted (a third left: the rule the
  Vault token keeper uses), asking for ``2T/3 + lead``, where ``lead = max(grace, T/3)`` -- just
  ``T`` unless ``lease_grace`` is longer than ``T/3`` (see ``renewal_increment``);
* issue a new credential when a renewal grants less than asked (the lease nears its max TTL),
  when the lease is not renewable, or when the engine gave an expiry but no lease (a PKI
  certificate) -- at ``lead`` before its end, so the new one is in place well before the old one
  ends; the new credential is swapped in, ``on_change`` called, and the old lease revoked after
  the grace (``lease_grace``, default a third of its TTL) so that connections opened with it can
  drain (never past its end: the engine revokes it then, whatever the store asks);
* read a static role's credential again once its ``ttl`` ran out (the backend rotated it) and
  call ``on_change`` only if it changed.

A failed call is retried with the store's ``RetryPolicy`` backoff (its transient/permanent
classification: a renewal the backend refuses for good becomes a re-issue), each wait kept
inside what is left of the TTL. Past the expiry the lease reads as ``LeaseExpiredError`` and the
keeper keeps trying (at ``max_backoff``), so it recovers without the application re-opening it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from secretkit.drivers.base import Driver, Issued, Leases
from secretkit.errors import InvalidArgumentError, NotSupportedError, SecretError
from secretkit.forking import at_fork
from secretkit.observer import Observer
from secretkit.policies import StoreOptions, backoff

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")

_log = logging.getLogger("secretkit.leases")

#: How long after a static role's ``ttl`` ran out the credential is read again (the backend
#: rotates it at that moment), and the least wait between two such reads.
REREAD_DELAY = 0.25
MIN_REREAD = 0.5
#: The shortest wait between two attempts, so a backend that fails at once is not hammered.
MIN_RETRY = 0.05

#: An engine path: segments of letters, digits and ``-_.@+=,:`` (Vault role and mount names),
#: no empty segment and no ``..`` (it would climb out of the engine the path names).
_PATH = re.compile(r"[A-Za-z0-9_\-.@+=,:]+(/[A-Za-z0-9_\-.@+=,:]+)*")

#: A callback and, for a coroutine function, the event loop it was registered on.
Callback = tuple[Callable[[Any], Any], "asyncio.AbstractEventLoop | None"]


class LeaseHost(Protocol):
    """What the lease machinery uses of a store (``SecretStore`` implements it)."""

    @property
    def backend(self) -> str: ...

    @property
    def driver(self) -> Driver: ...

    @property
    def options(self) -> StoreOptions: ...

    @property
    def observer(self) -> Observer: ...

    def call_driver(
        self, operation: str, name: str | None, fn: Callable[[], T], *, retry: bool = True, sensitive: bool = False
    ) -> T: ...


def check_lease_request(host: LeaseHost, path: object, params: object) -> Leases:
    """The driver's ``Leases``, after checking the request; ``NotSupportedError`` (naming the
    capability) or ``InvalidArgumentError`` before any I/O."""
    driver = host.driver
    if not isinstance(driver, Leases):
        raise NotSupportedError("this backend issues no leases (the `Leases` capability: dynamic credentials)",
                                name=path if isinstance(path, str) else None, backend=host.backend)
    if not isinstance(path, str) or not _PATH.fullmatch(path) or ".." in path.split("/"):
        shown = repr(path) if isinstance(path, str) and len(path) < 200 else type(path).__name__
        raise InvalidArgumentError(f"a lease path is an engine path such as 'database/creds/app' (got {shown})",
                                   backend=host.backend)
    if params is not None and (not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params)):
        raise InvalidArgumentError("lease params must be a mapping with str keys (the engine's request body)",
                                   name=path, backend=host.backend)
    return driver


@dataclass
class Held:
    """The credential a lease holds now and what the keeper knows of it (guarded by the keeper's lock)."""

    issued: Issued
    #: clock time the credential stops working (None: never); for a ``rotated`` one, when the backend replaces it
    expires: float | None
    #: the TTL the engine first granted: it sets the renewal cadence and what a renewal asks
    #: (``LeaseKeeper.renewal_increment``)
    asked: float
    #: when the keeper acts next (None: nothing to do)
    due: float | None = None
    #: a renewal fell short or failed for good: the next action issues a new credential
    reissue: bool = False
    failures: int = 0
    last_error: str | None = None
    #: the credential was issued for the process this one was forked from: never revoke it here
    inherited: bool = False


class Kept(Protocol):
    """What the keeper uses of a ``secretkit.leases.Lease`` (it never imports that module)."""

    path: str
    backend: str
    params: dict[str, Any] | None
    _held: Held
    _closed: bool


class LeaseKeeper:
    """Every lease of one store, and the one thread that keeps them valid."""

    def __init__(self, host: LeaseHost, clock: Callable[[], float] = time.monotonic) -> None:
        self._host = host
        self.backend = host.backend
        self.clock = clock
        #: run by ``run_due`` only (``secretkit.testing.leases``): no thread
        self.manual = False
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._leases: dict[Kept, Held] = {}
        self._callbacks: dict[Kept, list[Callback]] = {}
        self._generations: dict[Kept, int] = {}
        #: (when, lease id, path) of replaced leases waiting out their grace
        self._revokes: list[tuple[float, str, str]] = []
        #: paths whose grace was shortened by a max TTL (logged once each)
        self._shortened: set[str] = set()
        self._thread: threading.Thread | None = None
        self._closed = False
        at_fork(self, LeaseKeeper._after_fork)

    # -- the application's calls ---------------------------------------------------------

    def obtain(self, driver: Leases, path: str, params: Mapping[str, Any] | None) -> Held:
        """Issue a credential now (in the caller's thread, with the store's retries)."""
        if self._closed:
            raise SecretError("the store is closed", name=path, backend=self.backend)
        issued = self._host.call_driver("lease_issue", path, lambda: driver.issue(path, params), sensitive=True)
        return self._held(issued, self.clock())

    def hold(self, lease: Kept, held: Held) -> None:
        """Keep ``lease`` valid from now on (the worker starts with the first one)."""
        with self._lock:
            self._leases[lease] = held
            self._generations[lease] = 1
            self._wakeup.notify()
        self._debug("issued", lease, held.issued)
        self._start()

    @property
    def has_worker(self) -> bool:
        """The worker thread was started (by the first lease)."""
        return self._thread is not None

    def add_callback(self, lease: Kept, callback: Callback) -> None:
        with self._lock:
            self._callbacks.setdefault(lease, []).append(callback)

    def generation(self, lease: Kept) -> int:
        return self._generations.get(lease, 0)

    def hard_expiry(self, held: Held) -> float | None:
        """When reading the lease starts to fail: its expiry; for a static role, a third of its
        rotation period later (the re-read normally lands within ``REREAD_DELAY``)."""
        if held.expires is None:
            return None
        if held.issued.rotated:
            return held.expires + max(1.0, held.asked / 3)
        return held.expires

    def wake(self) -> None:
        """Start the worker if it is not running (after a fork) and let it look at the schedule."""
        if self._thread is None and not self.manual and not self._closed:
            self._start()
        with self._lock:
            self._wakeup.notify()

    def release(self, lease: Kept) -> None:
        """Revoke ``lease`` (and what it replaced and still keeps for the grace) and forget it."""
        with self._lock:
            held = self._leases.pop(lease, None)
            self._callbacks.pop(lease, None)
            lease._closed = True
            pending = [r for r in self._revokes if r[2] == lease.path and held is not None]
            for entry in pending:
                self._revokes.remove(entry)
        if held is None:
            return
        ids = [lease_id for _, lease_id, _ in pending]
        if held.issued.lease_id and not held.inherited:
            ids.append(held.issued.lease_id)
        for lease_id in ids:
            self._revoke(lease.path, lease_id)

    def close(self) -> None:
        """Stop the worker, then revoke every lease still held (and those in their grace)."""
        with self._lock:
            self._closed = True
            leases = list(self._leases)
            self._wakeup.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        for lease in leases:
            self.release(lease)
        with self._lock:
            revokes, self._revokes = self._revokes, []
        for _, lease_id, path in revokes:
            self._revoke(path, lease_id)

    # -- the schedule ----------------------------------------------------------------------

    def _held(self, issued: Issued, now: float) -> Held:
        ttl = issued.ttl
        if ttl is not None and ttl <= 0 and not issued.rotated:
            ttl = None  # no lifetime given: nothing to keep alive
        held = Held(issued, None if ttl is None else now + max(ttl, 0.0), max(ttl or 0.0, 0.0))
        self._plan(held, now)
        return held

    def _plan(self, held: Held, now: float) -> None:
        """When to act next on a credential just obtained."""
        if held.expires is None:
            held.due = None
        elif held.issued.rotated:
            held.due = max(held.expires, now + MIN_REREAD) + REREAD_DELAY
        elif held.issued.lease_id and held.issued.renewable:
            held.due = held.expires - held.asked / 3
        else:
            # its expiry is its hard end: the replacement comes ``lead`` before it (at most two
            # thirds of its life, so a grace near the TTL does not re-issue without a pause)
            held.due = held.expires - min(self._lead(held), 2 * held.asked / 3)

    def _lead(self, held: Held) -> float:
        """How long before a credential's hard end its replacement must be issued: the grace,
        and never less than a third of the TTL (the slack retries need)."""
        grace = self._host.options.lease_grace
        return max(grace if grace is not None else 0.0, held.asked / 3)

    def renewal_increment(self, held: Held) -> float:
        """What a renewal asks for: ``2T/3 + lead`` (``T`` with the default grace).

        The engine revokes a lease at its max TTL whatever the store asks, and a renewal reply
        does not say when that is -- except by granting less than asked: it grants
        ``min(increment, time left until the max TTL)``. Renewals come every ``2T/3``, so asking
        ``2T/3 + lead`` makes the first capped reply arrive with at least ``lead`` left; the
        re-issue then happens at once and the old lease outlives the grace. This costs no extra
        call (``sys/leases/lookup`` does not give the max TTL either) and assumes nothing about
        later leases of the role. The price: the lease outlives its last renewal by that
        increment, ``grace - T/3`` more than ``T`` -- the exposure the grace asks for anyway."""
        return 2 * held.asked / 3 + self._lead(held)

    def next_due(self) -> float | None:
        """The earliest time something is to be done (None: nothing scheduled)."""
        with self._lock:
            times = [h.due for h in self._leases.values() if h.due is not None]
            times += [when for when, _, _ in self._revokes]
        return min(times) if times else None

    def run_due(self) -> None:
        """Do everything that is due now, in this thread."""
        now = self.clock()
        with self._lock:
            due = [(lease, held) for lease, held in self._leases.items() if held.due is not None and held.due <= now]
            revokes = [r for r in self._revokes if r[0] <= now]
            for entry in revokes:
                self._revokes.remove(entry)
        for _, lease_id, path in revokes:
            self._revoke(path, lease_id)
        for lease, held in due:
            self._act(lease, held)

    def _act(self, lease: Kept, held: Held) -> None:
        now = self.clock()
        driver = self._host.driver
        assert isinstance(driver, Leases)
        lease_id = held.issued.lease_id
        expired = held.expires is not None and now >= held.expires
        renew = bool(lease_id) and held.issued.renewable and not held.reissue and not held.inherited and not expired
        try:
            if renew:
                assert lease_id is not None
                asked = self.renewal_increment(held)
                granted = self._host.call_driver("lease_renew", lease.path, lambda: driver.renew(lease_id, asked),
                                                 retry=False)
                self._renewed(lease, held, granted, asked)
            else:
                issued = self._host.call_driver(
                    "lease_issue", lease.path, lambda: driver.issue(lease.path, lease.params), retry=False,
                    sensitive=True)
                self._replace(lease, held, issued)
        except SecretError as exc:
            self._failed(lease, held, exc, renew)

    def _renewed(self, lease: Kept, held: Held, granted: float, asked: float) -> None:
        now = self.clock()
        with self._lock:
            held.failures, held.last_error = 0, None
            held.expires = now + max(granted, 0.0)
            if granted < asked:  # capped by the max TTL: a new credential, while this one still works
                held.reissue = True
                held.due = now
            else:
                held.due = now + 2 * held.asked / 3
        self._host.observer.lease_renewed()
        _log.debug("renewed the lease of %s on %s for %.1fs (id %s)", lease.path, self.backend, granted,
                   held.issued.lease_id)
        if held.reissue:
            self._act(lease, held)

    def _replace(self, lease: Kept, old: Held, issued: Issued) -> None:
        now = self.clock()
        new = self._held(issued, now)
        changed = _essence(old.issued) != _essence(issued)
        grace = self._host.options.lease_grace
        wait = grace if grace is not None else old.asked / 3
        left = None if old.expires is None else old.expires - now
        shortened = left is not None and wait > left and lease.path not in self._shortened
        with self._lock:
            if lease not in self._leases or self._closed:
                stale = True  # closed meanwhile: the new credential is not wanted
            else:
                stale = False
                self._leases[lease] = new
                lease._held = new
                if changed:
                    self._generations[lease] = self._generations.get(lease, 0) + 1
                if old.issued.lease_id and not old.inherited and old.issued.lease_id != issued.lease_id:
                    self._revokes.append((now + wait, old.issued.lease_id, lease.path))
                callbacks = list(self._callbacks.get(lease, ())) if changed else []
        if stale:
            if issued.lease_id:
                self._revoke(lease.path, issued.lease_id)
            return
        if shortened and old.issued.lease_id:
            self._shortened.add(lease.path)
            _log.debug("the grace of the lease of %s on %s is shortened to %.1fs (of %.1fs): its max TTL ends it then",
                       lease.path, self.backend, max(left or 0.0, 0.0), wait)
        if changed:
            self._host.observer.lease_reissued()
        self._debug("re-issued" if changed else "read again", lease, issued)
        for callback in callbacks:
            _call_back(callback, lease)

    def _failed(self, lease: Kept, held: Held, exc: SecretError, renewing: bool) -> None:
        self._host.observer.lease_failed()
        now = self.clock()
        policy = self._host.options.retry
        with self._lock:
            held.last_error = exc.code.value
            if renewing and not exc.transient:  # expired, revoked or not renewable: issue a new one now
                held.reissue = True
                held.due = now
                again = True
            else:
                held.failures += 1
                wait = backoff(held.failures, policy.initial_backoff, policy.max_backoff)
                if held.expires is not None and now < held.expires:
                    wait = min(wait, (held.expires - now) / 2)  # leave time for another try before the end
                held.due = now + max(wait, MIN_RETRY)
                again = False
        # the first failure of a run is a warning, the retries that follow are at DEBUG (an outage would flood the log)
        log = _log.warning if held.failures == 1 and not again else _log.debug
        log("secretkit: %s the lease of %s on %s failed (%s: %s); %s", "renewing" if renewing else "issuing",
            lease.path, self.backend, exc.code.value, exc.message,
            "issuing a new credential" if again else f"trying again in {held.due - now:.2f}s")

    # -- the worker ----------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self.manual or self._closed:
                return
            self._thread = threading.Thread(target=self._loop, name="secretkit-leases", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                times = [h.due for h in self._leases.values() if h.due is not None]
                times += [when for when, _, _ in self._revokes]
                wait = (min(times) - self.clock()) if times else None
                if wait is None or wait > 0:
                    self._wakeup.wait(wait)
                    continue
            try:
                self.run_due()
            except Exception:  # noqa: BLE001 - the worker outlives any one lease's trouble
                _log.warning("secretkit: the lease worker hit an unexpected error", exc_info=True)

    def _revoke(self, path: str, lease_id: str) -> None:
        driver = self._host.driver
        assert isinstance(driver, Leases)
        try:
            self._host.call_driver("lease_revoke", path, lambda: driver.revoke(lease_id))
        except SecretError as exc:
            _log.warning("secretkit: revoking a lease of %s on %s failed (%s: %s); it ends at its TTL", path,
                         self.backend, exc.code.value, exc.message)
        else:
            _log.debug("revoked lease %s of %s on %s", lease_id, path, self.backend)

    def _debug(self, what: str, lease: Kept, issued: Issued) -> None:
        _log.debug("%s the credential of %s on %s (ttl %s, lease id %s)", what, lease.path, self.backend, issued.ttl,
                   issued.lease_id)

    def _after_fork(self) -> None:
        # Only the forking thread survives: fresh lock, no worker. The leases held are the
        # parent's, which keeps renewing and revoking them; the child never revokes them (its
        # close would cut the parent's connections) and issues its own credential on its first
        # use of each lease (the worker starts then).
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._thread = None
        self._revokes = []
        now = self.clock()
        for held in self._leases.values():
            held.inherited = True
            held.due = now if held.expires is not None or held.issued.lease_id else None


def _essence(issued: Issued) -> dict[str, Any]:
    return {k: v for k, v in issued.data.items() if k not in issued.volatile}


def _call_back(callback: Callback, lease: Kept) -> None:
    function, loop = callback
    try:
        if loop is not None:
            import asyncio  # a loop was given: asyncio is loaded already

            future = asyncio.run_coroutine_threadsafe(function(lease), loop)
            future.add_done_callback(lambda f: _report(f.exception(), lease) if not f.cancelled() else None)
            return
        function(lease)
    except Exception as exc:  # noqa: BLE001 - a failing callback must not stop the keeper
        _report(exc, lease)


def _report(exc: BaseException | None, lease: Kept) -> None:
    if exc is None:
        return
    # the callback's own message may quote the credential: its type only, the traceback at DEBUG
    _log.warning("secretkit: an on_change callback of the lease of %s on %s raised %s", lease.path, lease.backend,
                 type(exc).__name__)
    _log.debug("the on_change callback's error", exc_info=exc)
