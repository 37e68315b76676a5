"""The read cache of the portable store: TTL with jitter, LRU, refresh-ahead, single-flight.

One ``Cache`` belongs to one ``SecretStore`` and behaves the same whatever the driver.

Why it is shaped like this:

* A hit must be cheap and never wait: entries are immutable tuples in a dict, read without
  a lock and checked against ``clock()``. Only misses, inserts and invalidation take the lock.
* A hot entry should never expire under its readers: after ``refresh_ahead`` of its TTL, the
  first hit hands ONE refresh to a background worker and every reader keeps getting the
  cached value. The worker is a long-lived thread fed by a queue, so the reader that
  triggers a refresh does not even wait for a thread to start.
* Concurrent misses of one key make one backend call (single-flight); the others wait for
  it and share its result or its error.
* Stale data is served only when the backend is *transiently* unavailable (throttled,
  unavailable, deadline), never to hide a missing secret or a denied permission.
* Writes through the store invalidate every entry of the name and bump a per-name
  generation, so a load that started before the write cannot re-insert the old value.

No thread-locals and no blocking on the hit path, so an async facade can share one cache.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from secretkit.errors import NotFoundError, SecretError
from secretkit.secret import Secret, Stage

#: Backends whose store caches by default (``StoreOptions.cache`` is None). memory:// and
#: file:// are local and cheap, and their users expect trivial read-your-writes.
REMOTE_BACKENDS = frozenset({"vault", "aws-sm", "gcp-sm", "k8s"})

#: (name, version, stage) — everything that changes the answer of a read.
Key = tuple[str, str | None, str | None]

#: An entry: (secret or the NotFoundError of a negative entry, fetched_at, refresh_at,
#: expires_at, stale_until). A plain tuple: immutable, so readers need no lock.
Entry = tuple[Secret | NotFoundError, float, float, float, float]

Clock = Callable[[], float]

_log = logging.getLogger("secretkit.cache")


class CachePolicy(BaseModel):
    """How a store caches reads. All times are seconds of a monotonic clock.

    Each entry lives ``ttl`` shortened by a random fraction in ``[0, jitter]`` (so a fleet
    does not refresh in lockstep). After ``refresh_ahead`` of that lifetime, a hit starts one
    background refresh while readers keep the cached value. Once expired, a read fetches
    again; if that fails *transiently*, the old value is served for up to ``max_stale``
    more seconds. ``negative_ttl`` caches "not found" briefly (0 = off). With
    ``check_version``, a refresh first asks the driver for the current version id (cheap
    metadata) and keeps the cached value when it has not changed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="False turns caching off")
    ttl: float = Field(300.0, gt=0, description="seconds an entry is served without asking the backend")
    jitter: float = Field(0.1, ge=0, lt=1, description="each entry's TTL is shortened by a random 0..jitter fraction")
    max_entries: int = Field(1024, ge=1, description="LRU bound on cached entries")
    refresh_ahead: float = Field(
        0.8, gt=0, le=1, description="fraction of the TTL after which a hit refreshes in the background (1 = never)"
    )
    max_stale: float = Field(3600.0, ge=0, description="seconds past expiry an entry may be served on transient errors")
    negative_ttl: float = Field(0.0, ge=0, description="seconds a NotFound is cached (0 = not cached)")
    check_version: bool = Field(True, description="on refresh, compare the current version id before re-reading the value")

    @classmethod
    def off(cls) -> CachePolicy:
        return cls(enabled=False)


def default_policy(backend: str) -> CachePolicy:
    """The policy used when ``StoreOptions.cache`` is None: on for remote backends only."""
    return CachePolicy(enabled=backend in REMOTE_BACKENDS)


@dataclass(frozen=True)
class CacheStats:
    """Counters of one store's cache (approximate under heavy concurrency: no lock on hits).

    ``misses`` counts reads not answered from a cached entry (each waiting caller counts);
    ``refreshes`` counts background and forced re-fetches; ``size`` is the current number
    of entries.
    """

    hits: int = 0
    misses: int = 0
    stale_served: int = 0
    refreshes: int = 0
    evictions: int = 0
    size: int = 0


class CachedNotFoundError(NotFoundError):
    """A ``NotFoundError`` answered from a negative cache entry (``negative_ttl``), not the backend."""


class _Flight:
    """One backend load that concurrent readers of the same key wait for."""

    __slots__ = ("done", "error", "how", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Secret | None = None
        self.error: BaseException | None = None
        self.how = "miss"


#: Reads a key from the backend (the store wraps retry, translation and audit around it).
Loader = Callable[[Key], Secret]
#: The driver's cheap current-version probe, or None when it has none.
Probe = Callable[[str], str]


class Cache:
    """The cache of one store; see the module docstring for the design."""

    def __init__(self, policy: CachePolicy, *, clock: Clock | None = None, rand: Callable[[], float] | None = None) -> None:
        self.policy = policy
        self.clock: Clock = clock or time.monotonic
        self._rand = rand or random.random
        self.entries: OrderedDict[Key, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._flights: dict[Key, _Flight] = {}
        self._generation: dict[str, int] = {}
        self._worker: _Worker | None = None
        # LRU order matters only once eviction is near: below half of max_entries, hits skip
        # the move_to_end (saves ~15% of a hit); insertion order stands in until then.
        self.track_recency = policy.max_entries < 2
        self._closed = False
        # plain ints: a lost increment under contention is acceptable for statistics
        self.hits = 0
        self.misses = 0
        self.stale_served = 0
        self.refreshes = 0
        self.evictions = 0

    # -- reads -------------------------------------------------------------------------

    def lookup(self, key: Key, max_age: float | None = None) -> Entry | None:
        """The usable (unexpired, young enough) entry of ``key``, or None. Never blocks."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        now = self.clock()
        if now >= entry[3] or (max_age is not None and now - entry[1] > max_age):
            return None
        return entry

    def hit(self, key: Key, entry: Entry, load: Loader, probe: Probe | None) -> Secret:
        """Answer from a usable entry: mark it recently used; past refresh_ahead, refresh it in the background."""
        if self.track_recency:
            try:
                self.entries.move_to_end(key)
            except KeyError:  # invalidated or evicted a moment ago; the value read is still valid
                pass
        self.hits += 1
        value = entry[0]
        if isinstance(value, NotFoundError):
            raise CachedNotFoundError(value.message, name=value.name, backend=value.backend)
        if self.clock() >= entry[2]:
            self.refresh_ahead(key, entry, load, probe)
        return value

    def fetch(self, key: Key, load: Loader, probe: Probe | None, *, max_age: float | None = None) -> tuple[Secret, str]:
        """Answer ``key``: from the cache, or by one (shared) backend load. Returns the secret and
        how it was served: ``"hit"``, ``"miss"`` or ``"stale"``."""
        entry = self.lookup(key, max_age)
        if entry is not None:
            return self.hit(key, entry, load, probe), "hit"
        self.misses += 1
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
                generation = self._generation.get(key[0], 0)
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.result is not None
            return flight.result, flight.how
        self._run(key, flight, generation, load, probe, stale_ok=max_age is None)
        if flight.error is not None:
            raise flight.error
        assert flight.result is not None
        return flight.result, flight.how

    def reload(self, key: Key, load: Loader) -> Secret:
        """Read ``key`` from the backend now, whatever is cached, and cache the answer."""
        self.refreshes += 1
        with self._lock:
            generation = self._generation.get(key[0], 0)
        started = self.clock()
        try:
            secret = load(key)
        except SecretError as exc:
            self._failed(key, exc, generation, started, old=None, stale_ok=False)
            raise
        self.insert(key, secret, generation, started)
        return secret

    def settle(self, key: Key, outcome: Secret | SecretError, generation: int, started: float) -> Secret | SecretError:
        """Cache one answer of a batch load; returns what to answer (the stale value for a
        transient failure where ``max_stale`` allows, else the outcome itself)."""
        if isinstance(outcome, Secret):
            self.insert(key, outcome, generation, started)
            return outcome
        stale = self._failed(key, outcome, generation, started, old=self.entries.get(key), stale_ok=True)
        return outcome if stale is None else stale

    def refresh_ahead(self, key: Key, entry: Entry, load: Loader, probe: Probe | None) -> None:
        """Start one background refresh of ``key`` unless one is running or the entry changed."""
        if key in self._flights or self._closed:
            return
        with self._lock:
            if key in self._flights or self.entries.get(key) is not entry:
                return
            flight = self._flights[key] = _Flight()
            generation = self._generation.get(key[0], 0)
            worker = self._ensure_worker()
        self.refreshes += 1
        worker.submit(lambda: self._run(key, flight, generation, load, probe, stale_ok=True, background=True))

    # -- the one place that loads ------------------------------------------------------

    def _run(
        self, key: Key, flight: _Flight, generation: int, load: Loader, probe: Probe | None,
        *, stale_ok: bool, background: bool = False,
    ) -> None:
        """Load ``key`` for ``flight`` (its leader or the background worker) and publish the outcome."""
        old = self.entries.get(key)
        started = self.clock()
        try:
            secret = self._load(key, old, load, probe)
        except SecretError as exc:
            stale = self._failed(key, exc, generation, started, stale_ok=stale_ok, old=old, count=not background)
            if stale is None:
                flight.error = exc
            else:
                flight.result, flight.how = stale, "stale"
        except BaseException as exc:  # noqa: BLE001 - not a portable error: share it with the waiters, cache nothing
            flight.error = exc
        else:
            self.insert(key, secret, generation, started)
            flight.result = secret
        finally:
            with self._lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]
            flight.done.set()

    def _load(self, key: Key, old: Entry | None, load: Loader, probe: Probe | None) -> Secret:
        name, version, stage = key
        current = version is None and stage in (None, Stage.CURRENT)
        if (
            self.policy.check_version and probe is not None and current
            and old is not None and isinstance(old[0], Secret)
            and probe(name) == old[0].version
        ):
            return old[0]  # unchanged on the backend: keep the value, skip reading it
        return load(key)

    # -- writes to the cache -------------------------------------------------------------

    def insert(self, key: Key, value: Secret | NotFoundError, generation: int, started: float, ttl: float | None = None) -> None:
        """Cache ``value`` read since ``started``, unless ``key``'s name was written meanwhile."""
        if ttl is None:
            ttl = self.policy.ttl * (1.0 - self._rand() * self.policy.jitter)
            refresh_at = started + ttl * self.policy.refresh_ahead if self.policy.refresh_ahead < 1 else started + ttl
            stale_until = started + ttl + self.policy.max_stale
        else:  # negative entries: no refresh-ahead, never served stale
            refresh_at = stale_until = started + ttl
        entry: Entry = (value, started, refresh_at, started + ttl, stale_until)
        with self._lock:
            if self._closed or self._generation.get(key[0], 0) != generation:
                return
            self.entries[key] = entry
            self.entries.move_to_end(key)
            while len(self.entries) > self.policy.max_entries:
                self.entries.popitem(last=False)
                self.evictions += 1
            if len(self.entries) * 2 > self.policy.max_entries:
                self.track_recency = True
            if self.policy.refresh_ahead < 1:
                self._ensure_worker()  # start it here, on a path that already waited for the backend

    def generation(self, name: str) -> int:
        """The write generation of ``name``; pass it to ``insert`` after a load."""
        return self._generation.get(name, 0)

    def _failed(
        self, key: Key, exc: SecretError, generation: int, started: float, *,
        old: Entry | None, stale_ok: bool, count: bool = True,
    ) -> Secret | None:
        """Apply a failed load of ``key`` to the cache. Returns ``old``'s value to answer
        instead (a transient failure within ``max_stale``, where ``stale_ok``), else None."""
        if isinstance(exc, NotFoundError):
            self._forget(key, generation)
            self._negative(key, exc, generation, started)
        elif not exc.transient:
            self._forget(key, generation)  # never serve data a denied caller may no longer see
        elif stale_ok and old is not None and isinstance(old[0], Secret) and self.clock() < old[4]:
            if count:
                self.stale_served += 1
            return old[0]
        return None

    def _negative(self, key: Key, exc: NotFoundError, generation: int, started: float) -> None:
        if self.policy.negative_ttl > 0:
            self.insert(key, exc, generation, started, ttl=self.policy.negative_ttl)

    def _forget(self, key: Key, generation: int) -> None:
        with self._lock:
            if self._generation.get(key[0], 0) == generation:
                self.entries.pop(key, None)

    def invalidate(self, name: str) -> None:
        """Drop every entry of ``name`` (all versions and stages); loads in flight will not re-insert."""
        with self._lock:
            self._generation[name] = self._generation.get(name, 0) + 1
            for key in [k for k in list(self.entries) if k[0] == name]:
                self.entries.pop(key, None)
            for key in [k for k in self._flights if k[0] == name]:
                del self._flights[key]  # later readers start a new load instead of joining an old one

    def clear(self) -> None:
        with self._lock:
            for name in {k[0] for k in self.entries} | {k[0] for k in self._flights}:
                self._generation[name] = self._generation.get(name, 0) + 1
            self.entries.clear()
            self._flights.clear()

    def stats(self) -> CacheStats:
        return CacheStats(self.hits, self.misses, self.stale_served, self.refreshes, self.evictions, len(self.entries))

    def close(self) -> None:
        """Stop the background worker; later inserts are ignored."""
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
            self.entries.clear()
        if worker is not None:
            worker.stop()

    def _ensure_worker(self) -> _Worker:
        """The background worker, started on first need (call with the lock held)."""
        if self._worker is None:
            self._worker = _Worker()
        return self._worker


class _Worker:
    """One daemon thread running background refreshes in order.

    Submitting is a non-blocking queue put, so the reader that triggers a refresh returns at
    once; one thread suffices because refresh-ahead leaves ``(1 - refresh_ahead) * ttl`` for
    each refresh to finish before its entry expires.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="secretkit-cache-refresh", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], Any]) -> None:
        self._queue.put(job)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                job()
            except BaseException:  # noqa: BLE001 - _run publishes errors to its flight; the worker must not die
                _log.debug("background cache refresh failed", exc_info=True)

    def stop(self) -> None:
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
