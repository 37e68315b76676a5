"""The read cache of the portable store: TTL with jitter, LRU, refresh-ahead, single-flight.

One ``Cache`` belongs to one ``SecretStore`` and behaves the same whatever the driver.

Why it is shaped like this:

* A hit must be cheap and never wait: ``hit()`` reads an entry from a dict
  without a lock and checks it against ``clock()``. Only misses, inserts and invalidation
  take the lock.
* A hot entry should never expire under its readers: after ``refresh_ahead`` of its TTL, the
  first hit hands ONE refresh to a background worker and every reader keeps getting the
  cached value. The worker is a long-lived thread fed by a queue, so the reader that
  triggers a refresh does not even wait for a thread to start.
* Every load of a key is a *flight*, and a key has at most one flight readers can join at a
  time: concurrent misses, batch reads (``fetch_many``), forced refreshes and background
  refreshes of one key share or queue behind it. So one backend read serves every concurrent
  reader, and loads land in the cache in the order they were made.
* Reads are monotonic: no reader gets an answer older than one this store already served for
  the key (see ``_land``). Two loads of a key overlap only around a write: the load that
  started before it is *detached* (it may not fill the cache, and later readers start a new
  load), yet it still answers the readers already waiting for it. Having reached the backend
  later, its answer may be newer than the new load's; so when a detached load answers, it
  drops the key's cached entry and marks the key's current load *overtaken*, which then loads
  again unless it read the same version. Nothing of this outlives a load: no per-name state is
  kept for names no load is running for, so the cache's memory is bounded by ``max_entries``
  and the loads in flight.
* Stale data is served only when the backend is *transiently* unavailable (throttled,
  unavailable, deadline), never to hide a missing secret or a denied permission.
* Writes through the store invalidate every entry of the name and detach its loads in
  flight, so a load that started before the write cannot re-insert the old value.

No thread-locals and no blocking on the hit path, so an async facade can share one cache:
its tasks join the same flights as threads (``join``) and are called back when a load
settles (``Flight.add_done_callback``, ``secretkit.flight``) instead of blocking on it. The
policy model is ``secretkit.policies``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from secretkit import forking
from secretkit.background import Worker
from secretkit.entries import CachedNotFoundError, CacheStats, Entry, Key, Negative, key_of, name_of, parts_of
from secretkit.errors import NotFoundError, SecretError
from secretkit.flight import SEVERAL, Flight, mark_of
from secretkit.policies import CachePolicy
from secretkit.secret import Secret, Stage

# CachePolicy is public API here too (``from secretkit.cache import CachePolicy``); Flight is what
# ``Cache.join`` returns.
__all__ = ["Cache", "CachePolicy", "CacheStats", "CachedNotFoundError", "Flight", "Key", "key_of", "name_of", "parts_of"]

Clock = Callable[[], float]

_log = logging.getLogger("secretkit.cache")


#: Reads a key from the backend (the store wraps retry, translation and audit around it).
Loader = Callable[[Key], Secret]
#: Reads several current-value keys in one go; a failure of the whole call raises.
BatchLoader = Callable[[list[Key]], Mapping[Key, Secret | SecretError]]
#: The driver's cheap current-version probe, or None when it has none.
Probe = Callable[[str], str]


class Cache:
    """The cache of one store; see the module docstring for the design."""

    def __init__(
        self, policy: CachePolicy, load: Loader, probe: Probe | None = None, *,
        clock: Clock | None = None,
    ) -> None:
        self.policy = policy
        self.clock: Clock = clock or time.monotonic
        self._load_key = load
        self._probe = probe
        # A plain dict keeps insertion order, and costs less per entry than an OrderedDict;
        # recency is kept by re-inserting a hit key once eviction is near (track_recency).
        self.entries: dict[Key, Entry] = {}
        self._lock = threading.Lock()
        # The flight readers of a key join. One no longer here (done, or detached by invalidate)
        # may not change the cache (see _land); no other per-key state is kept.
        self._flights: dict[Key, Flight] = {}
        self._worker: Worker | None = None
        # LRU order matters only once eviction is near: below half of max_entries, hits skip
        # re-inserting their key (a lock and two dict operations); insertion order stands in until then.
        self.track_recency = policy.max_entries < 2
        self._closed = False
        # plain ints: a lost increment under contention is acceptable for statistics
        self.hits = 0
        self.misses = 0
        self.stale_served = 0
        self.refreshes = 0
        self.evictions = 0
        self.negative_hits = 0  # of ``hits``: answered by a cached "not found" (telemetry tells them apart)
        #: ``hit(key, max_age=None)``: the cached secret of ``key`` if it may be served now, else
        #: None; never blocks. One dict lookup and one clock read; past ``refresh_ahead`` it also
        #: starts a background refresh. A negative entry is None here (``fetch`` raises it).
        self.hit = self._make_hit()
        forking.at_fork(self, Cache._after_fork)

    def _after_fork(self) -> None:
        """In a forked child: the entries stay (they are as true as in the parent), but the loads
        in flight and the refresh worker were the parent's threads, and the lock may have been
        held by one of them. Readers of the child start loads of their own."""
        self._lock = threading.Lock()
        self._flights = {}
        self._worker = None

    # -- reads -------------------------------------------------------------------------

    def _make_hit(self) -> Callable[[Key, float | None], Secret | None]:
        """Build ``hit``: the store's hot path, so a closure over its collaborators (each cell
        read is cheaper than an attribute lookup on ``self``); see ``hit``."""
        entries, clock, cache, secret_class = self.entries, self.clock, self, Secret

        def hit(key: Key, max_age: float | None = None) -> Secret | None:
            try:
                entry = entries[key]
            except KeyError:
                return None
            if entry.__class__ is not secret_class:
                return None
            now = clock()
            if now < entry._refresh_at and max_age is None:
                pass  # the common case, in one comparison: refresh_at never lies past expiry
            elif now >= cache.expires(key, entry) or (max_age is not None and now - cache.fetched(key, entry) > max_age):
                return None
            elif now >= entry._refresh_at:
                cache._refresh_ahead(key, entry)
            if cache.track_recency:
                cache._touch(key, entry)
            cache.hits += 1
            return entry  # its class was checked above

        return hit

    def fetch(self, key: Key, *, max_age: float | None = None, refresh: bool = False) -> tuple[Secret, str]:
        """Answer ``key`` from the cache or by a (shared) backend load. Returns the secret and
        how it was served: ``"hit"``, ``"miss"`` or ``"stale"``. ``refresh`` reads the backend
        whatever is cached (after any load already running, so the answer is newer than it)."""
        if not refresh:
            found = self._cached(key, max_age)
            if found is not None:
                return found, "hit"
        if refresh:
            self.refreshes += 1
        else:
            self.misses += 1
        while True:
            with self._lock:
                flight = self._flights.get(key)
                if flight is None:
                    flight = self._start(key)
                    break
            if not refresh:
                return flight.outcome()
            flight.done.wait()  # a refresh must start after the load in flight: queue behind it
        self._run(key, flight, stale_ok=max_age is None and not refresh)
        return flight.outcome()

    def join(self, key: Key, *, max_age: float | None = None, start: bool = True,
             ) -> tuple[Flight, Callable[[], None] | None] | None:
        """``fetch`` without waiting, for readers that must not block their thread (the async
        facade): the flight that answers ``key`` and, when this call started it, the load to
        run (on some other thread; it settles the flight). Wait for the flight with
        ``add_done_callback``, then read ``outcome()``. A reader that stops waiting leaves the
        load running for everyone else who joined it, threads and tasks alike.

        A key the cache can answer comes back as an already settled flight and no load; a
        negative entry raises its ``CachedNotFoundError`` here. With ``start=False`` nothing is
        started: None when there is neither an answer nor a load to join (so a caller can check
        a key's name only when it is the one to start a load).
        """
        flight = self._flights.get(key)
        if flight is None:  # else join it: its answer is at least as fresh as any cached one
            found = self._cached(key, max_age)
            if found is not None:
                return Flight.answered(found, "hit"), None
            with self._lock:
                flight = self._flights.get(key)
                if flight is None:
                    if not start:
                        return None
                    leader = self._start(key)
                    self.misses += 1
                    return leader, lambda: self._run(key, leader, stale_ok=max_age is None)
        self.misses += 1
        return flight, None

    def fetch_many(self, keys: Iterable[Key], load_many: BatchLoader) -> dict[Key, Secret | SecretError]:
        """Answer current-value ``keys``: hits from the cache; every other key joins the load in
        flight for it or is loaded in ONE ``load_many`` call. Per-key failures are returned.
        If the batch call fails as a whole and nothing could be served, that error is raised."""
        out: dict[Key, Secret | SecretError] = {}
        joined: dict[Key, Flight] = {}
        led: dict[Key, Flight] = {}
        for key in keys:
            try:
                found = self._cached(key, None)
            except NotFoundError as exc:
                out[key] = exc
                continue
            if found is not None:
                out[key] = found
                continue
            self.misses += 1
            with self._lock:
                flight = self._flights.get(key)
                if flight is None:
                    led[key] = self._start(key)
                else:
                    joined[key] = flight
        whole_failure = self._run_batch(led, load_many) if led else None
        for key, flight in {**led, **joined}.items():
            try:
                out[key] = flight.outcome()[0]
            except SecretError as exc:
                out[key] = exc
        if whole_failure is not None and not any(isinstance(out.get(k), Secret) for k in led):
            raise whole_failure  # the batch call failed and nothing could be served stale
        return out

    def _cached(self, key: Key, max_age: float | None) -> Secret | None:
        """Like ``hit``, but a negative entry raises its ``NotFoundError``."""
        secret = self.hit(key, max_age)
        if secret is not None:
            return secret
        entry = self.entries.get(key)
        if isinstance(entry, Negative) and self.clock() < self.expires(key, entry):
            self.hits += 1
            self.negative_hits += 1
            error = entry.error
            raise CachedNotFoundError(error.message, name=error.name, backend=error.backend)
        return None

    # -- loads -------------------------------------------------------------------------

    def _start(self, key: Key) -> Flight:
        """Register a new flight for ``key`` (call with the lock held)."""
        flight = self._flights[key] = Flight()
        return flight

    def _finish(self, key: Key, flight: Flight) -> None:
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.settle()

    def _run(self, key: Key, flight: Flight, *, stale_ok: bool, background: bool = False) -> None:
        """Load ``key`` for ``flight`` (its leader or the background worker) and publish the
        outcome; load again if it was overtaken meanwhile (see ``_land``)."""
        try:
            landed = False
            while not landed:
                old = self.entries.get(key)
                started = self.clock()
                outcome: Secret | SecretError
                try:
                    outcome = self._load(key, old)
                except SecretError as exc:
                    outcome = exc
                landed = self._land(key, flight, outcome, started, old=old, stale_ok=stale_ok, count=not background)
        except BaseException as exc:  # noqa: BLE001 - not a portable error: share it with the waiters, cache nothing
            flight.error = exc
        finally:
            self._finish(key, flight)

    def _run_batch(self, flights: dict[Key, Flight], load_many: BatchLoader) -> SecretError | None:
        """Load every key of ``flights`` in one call; returns the error of a whole-call failure."""
        started = self.clock()
        olds = {key: self.entries.get(key) for key in flights}
        whole_failure: SecretError | None = None
        again: dict[Key, Flight] = {}  # overtaken while the batch ran: each loads again alone
        try:
            try:
                results = load_many(list(flights))
            except SecretError as exc:
                whole_failure = exc
                results = {key: exc for key in flights}
            for key, flight in flights.items():
                outcome = results.get(key) or NotFoundError("secret not found", name=name_of(key))
                if not self._land(key, flight, outcome, started, old=olds[key], stale_ok=True):
                    again[key] = flight
        except BaseException as exc:  # noqa: BLE001 - share an unexpected failure with every waiter
            again.clear()
            for flight in flights.values():
                if flight.result is None and flight.error is None:
                    flight.error = exc
        finally:
            for key, flight in flights.items():
                if key not in again:
                    self._finish(key, flight)
        for key, flight in again.items():
            self._run(key, flight, stale_ok=True)
        return whole_failure

    def _land(
        self, key: Key, flight: Flight, outcome: Secret | SecretError, started: float, *,
        old: Entry | None, stale_ok: bool, count: bool = True,
    ) -> bool:
        """Apply a load's outcome (read since ``started``) to the cache and to ``flight``, in
        one step under the lock; False, changing nothing, if the load must be made again.

        Reads stay monotonic because answers reach readers in the order their loads reached
        the backend:

        * The key's current flight (the one in ``_flights``) started after the previous current
          flight had read the backend (it was registered once that one landed), so its answer
          is at least as new; it may fill the cache, and leaves ``_flights`` in this same step,
          so no reader joins it after it answered.
        * A detached flight (``invalidate`` took it out of ``_flights``: it started before a
          write) never fills the cache, but answers its waiters, and may have read the backend
          after the current flight did. So, in this same step, it drops the key's entry and
          marks the current flight overtaken, unless they hold what it answers: every reader
          served this answer later gets it again or something loaded after it.
        * An overtaken flight loads again unless it read what overtook it. Only detached
          flights overtake, and only while the flight is current, so it reloads a bounded
          number of times.
        """
        with self._lock:
            mark = mark_of(outcome)
            if flight.overtaken is not None:
                overtaken, flight.overtaken = flight.overtaken, None
                if mark is None or overtaken != mark:
                    return False
            current = self._flights.get(key) is flight
            if current:
                del self._flights[key]
            error: SecretError | None = None
            if isinstance(outcome, Secret):
                answer: Secret | None = outcome
                if current:
                    self._keep(key, outcome, started)
            else:
                error = outcome
                answer = self._failed(key, error, started, old=old, stale_ok=stale_ok, count=count, current=current)
                if answer is not None:
                    mark = mark_of(answer)  # served stale
            if not current and mark is not None:
                self._overtake(key, mark)
        if answer is None:
            flight.error = error
        else:
            flight.result = answer
            if error is not None:
                flight.how = "stale"
        return True

    def _overtake(self, key: Key, mark: object) -> None:
        """A detached flight of ``key`` answers ``mark`` (call with the lock held): drop a cached
        entry that says otherwise, and have the current flight check its answer against it."""
        entry = self.entries.get(key)
        if entry is not None and mark_of(entry) != mark:
            del self.entries[key]
        current = self._flights.get(key)
        if current is not None:
            current.overtaken = mark if current.overtaken in (None, mark) else SEVERAL

    def _load(self, key: Key, old: Entry | None) -> Secret:
        name, version, stage = (key, None, None) if isinstance(key, str) else key  # parts_of, inline: the miss path
        current = version is None and stage in (None, Stage.CURRENT)
        if (
            self.policy.check_version and self._probe is not None and current
            and isinstance(old, Secret)
            and self._probe(name) == old.version
        ):
            return old  # unchanged on the backend: keep the value, skip reading it
        return self._load_key(key)

    def _refresh_ahead(self, key: Key, entry: Entry) -> None:
        """Start one background refresh of ``key`` unless a load is running or the entry changed."""
        if key in self._flights or self._closed:
            return
        with self._lock:
            if key in self._flights or self.entries.get(key) is not entry:
                return
            flight = self._start(key)
            worker = self._ensure_worker()
        self.refreshes += 1
        worker.submit(lambda: self._run(key, flight, stale_ok=True, background=True))

    # -- writes to the cache -------------------------------------------------------------

    def insert(self, key: Key, value: Secret | NotFoundError, started: float) -> None:
        """Cache ``value``, read since ``started``, as ``key``'s current answer. Loads land
        through their flight instead (``_land``); this is for seeding a cache (tests, tools)."""
        with self._lock:
            self._keep(key, value, started)

    def _keep(self, key: Key, value: Secret | NotFoundError, started: float) -> None:
        """Cache ``value`` read since ``started`` (call with the lock held)."""
        entry: Entry
        if self._closed:
            return
        if isinstance(value, Secret):
            # set under the lock: a Secret kept as unchanged (check_version) is re-inserted
            object.__setattr__(value, "_refresh_at", started + self.ttl(key) * self.policy.refresh_ahead)
            entry = value
        else:  # negative entries: no refresh-ahead, never served stale; they expire at refresh_at
            entry = Negative(value, started + self.policy.negative_ttl)
        self.entries.pop(key, None)  # re-inserted last: the most recently used
        self.entries[key] = entry
        while len(self.entries) > self.policy.max_entries:
            del self.entries[next(iter(self.entries))]
            self.evictions += 1
        if len(self.entries) * 2 > self.policy.max_entries:
            self.track_recency = True
        if self.policy.refresh_ahead < 1:
            self._ensure_worker()  # start it here, on a path that already waited for the backend

    def ttl(self, key: Key) -> float:
        """The lifetime of ``key``'s entries: ``ttl`` shortened by a fraction in ``[0, jitter]``.

        The fraction comes from the key's hash, which Python salts per process: keys of one
        process, and one key in different processes of a fleet, expire at different times,
        while an entry needs no field of its own to remember its lifetime.
        """
        return self.policy.ttl * (1.0 - self.policy.jitter * ((hash(key) & 0xFFFF) / 0x10000))

    def fetched(self, key: Key, entry: Entry) -> float:
        """When ``entry`` was read (the start of the load that made it)."""
        if entry.__class__ is not Secret:
            return entry._refresh_at - self.policy.negative_ttl
        return entry._refresh_at - self.ttl(key) * self.policy.refresh_ahead

    def expires(self, key: Key, entry: Entry) -> float:
        """When ``entry`` stops being served (a negative entry: at its refresh time)."""
        if entry.__class__ is not Secret:
            return entry._refresh_at
        return self.fetched(key, entry) + self.ttl(key)

    def stale_until(self, key: Key, entry: Entry) -> float:
        """Until when ``entry`` may be served on transient errors past its expiry."""
        return self.expires(key, entry) + self.policy.max_stale

    def _touch(self, key: Key, entry: Entry) -> None:
        """Mark ``key`` most recently used (a plain dict: move it to the end), unless it changed."""
        with self._lock:
            if self.entries.get(key) is entry:
                del self.entries[key]
                self.entries[key] = entry

    def _failed(
        self, key: Key, exc: SecretError, started: float, *,
        old: Entry | None, stale_ok: bool, count: bool = True, current: bool = True,
    ) -> Secret | None:
        """Apply a failed load of ``key`` to the cache (only a ``current`` flight's; call with
        the lock held). Returns ``old``'s value to answer instead (a transient failure within
        ``max_stale``, where ``stale_ok``), else None."""
        if isinstance(exc, NotFoundError) or not exc.transient:
            if current:
                self.entries.pop(key, None)  # never serve data a denied caller may no longer see
                if isinstance(exc, NotFoundError) and self.policy.negative_ttl > 0:
                    self._keep(key, exc, started)
        elif stale_ok and isinstance(old, Secret) and self.clock() < self.stale_until(key, old):
            if count:
                self.stale_served += 1
            return old
        return None

    def invalidate(self, name: str) -> bool:
        """Drop every entry of ``name`` (all versions and stages) and detach its loads in
        flight: they still answer the readers waiting for them, never the cache. True when an
        entry was dropped."""
        with self._lock:
            cached = [k for k in list(self.entries) if name_of(k) == name]
            for key in cached:
                self.entries.pop(key, None)
            for key in [k for k in self._flights if name_of(k) == name]:
                del self._flights[key]  # later readers start a new load instead of joining an old one
            return bool(cached)

    def clear(self) -> None:
        """Drop every entry and detach every load in flight (as ``invalidate`` does for one name)."""
        with self._lock:
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

    def _ensure_worker(self) -> Worker:
        """The background worker, started on first need (call with the lock held)."""
        if self._worker is None:
            self._worker = Worker()
        return self._worker
