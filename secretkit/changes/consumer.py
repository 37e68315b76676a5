"""The change-event consumer: one thread per store that hears changes and drops cached entries.

Started by the store's first backend read (a store that never read has nothing cached to keep
fresh) or its first watch, stopped by ``close()``, reset in a forked child (which builds a source
of its own on its next read and never closes the parent's). An event only invalidates: the
cached entries of the secret it names (every version and stage) are dropped, so the next read
goes to the backend once (single-flight holds), and the watches of that name check at once
instead of at their next poll.

Events are best effort, so the cache keeps a TTL (an hour by default, ``DEFAULT_TTL``) as the
safety net, and entries loaded before the source was listening are dropped once it is (a change
made in between would otherwise be missed for a whole TTL). Bad input never kills the thread:
a malformed, foreign or duplicated message is acknowledged and dropped with a DEBUG log line
(the body only at DEBUG); an unreachable queue is retried with backoff while reads keep being
served from the cache.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from secretkit import forking
from secretkit.changes import spec as _spec
from secretkit.changes.source import ChangeEvent, ChangeSource, Delivery, EventsLost, SourceContext, SourceFactory
from secretkit.drivers.base import ChangeEvents
from secretkit.entries import CacheStats
from secretkit.observer import NO_OBSERVER, Observer
from secretkit.policies import CachePolicy, StoreOptions, backoff, default_policy

_log = logging.getLogger("secretkit.changes")

#: event ids remembered to drop redelivered duplicates (SQS and Pub/Sub deliver at least once)
SEEN_IDS = 4096


class Listener(Protocol):
    """A watch the consumer wakes when its secret changes (``Watcher``, ``AsyncWatch``)."""

    name: str

    def wake(self) -> None: ...


class Cached(Protocol):
    """What the consumer uses of the store's cache."""

    def invalidate(self, name: str) -> bool: ...

    def clear(self) -> None: ...


def cache_policy(options: StoreOptions, remote: bool) -> CachePolicy:
    """The store's cache policy: its options', else the backend's default; with ``changes`` set,
    a TTL the options do not name is ``DEFAULT_TTL`` (events keep entries fresh, not the TTL)."""
    policy = options.cache or default_policy(remote)
    if options.changes and "ttl" not in policy.model_fields_set:
        policy = policy.model_copy(update={"ttl": _spec.DEFAULT_TTL})
    return policy


def hear(driver: Any, options: StoreOptions, calls: Any, cache: Cached | None) -> Consumer | None:
    """The consumer of ``options.changes`` for a store of ``driver`` (None when unset), started
    by the first read through ``calls`` and dropping entries of ``cache``. Checks the option
    and builds the source factory's context without I/O (``ConfigError`` if bad)."""
    if not options.changes:
        return None
    factory, context = _spec.context(options.changes, driver)
    factory(context)  # no I/O: a bad target is a ConfigError now, not a warning in the consumer's thread
    consumer = Consumer(factory, context)
    consumer.cache = cache
    consumer.observer = lambda: calls.observer  # the store's, which telemetry may replace after opening
    calls.on_read = consumer.start
    return consumer


def listen(consumer: Consumer | None, listener: Listener) -> None:
    """Have ``consumer`` (a store's, if it hears changes) wake ``listener`` on its secret's events."""
    if consumer is not None:
        consumer.listen(listener)


def close(consumer: Consumer | None) -> None:
    """Stop ``consumer`` (a store's, if it hears changes) and delete what its source created."""
    if consumer is not None:
        consumer.close()


def stats(consumer: Consumer | None, cache: CacheStats) -> CacheStats:
    """``cache``'s counters with the event counts of ``consumer`` (unchanged without one)."""
    return cache if consumer is None else consumer.stats(cache)


@dataclasses.dataclass
class Counts:
    """Events so far: ``received`` (every message pulled), ``matched`` (an event that dropped a
    cached entry or woke a watch), ``dropped`` (malformed, foreign, duplicated, or empty)."""

    received: int = 0
    matched: int = 0
    dropped: int = 0


class Consumer:
    """Pulls a ``ChangeSource`` in one daemon thread and applies its events to a store's cache."""

    #: longest wait between attempts to reach an unreachable queue (seconds; doubled from 0.5)
    max_backoff = 30.0

    def __init__(self, factory: SourceFactory, context: SourceContext) -> None:
        self._factory, self.context = factory, context
        self.cache: Cached | None = None  # set by the store once its cache exists
        #: the store's telemetry observer (a no-op unless telemetry is on)
        self.observer: Callable[[], Observer] = lambda: NO_OBSERVER
        self.counts = Counts()
        self._names: Callable[[str], tuple[str, ...]] = (
            context.driver.event_names if isinstance(context.driver, ChangeEvents) else lambda s: (s,))
        self._listeners: weakref.WeakSet[Any] = weakref.WeakSet()
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._reset()
        forking.at_fork(self, Consumer._after_fork)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._source: ChangeSource | None = None
        self._closed = False
        #: set once the source listens (after a fork: once the child's does)
        self.ready = threading.Event()
        #: failed attempts to reach the queue since the last success
        self.failures = 0

    def _after_fork(self) -> None:
        """In a forked child the thread is gone and the source is the parent's (its queue, its
        client): forget both without closing them; the child's next read starts its own."""
        closed = self._closed
        self._reset()
        self._closed = closed

    @property
    def description(self) -> str:
        return f"changes={self.context.prefix}:{self.context.target}"

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread unless it runs (cheap when it does: called on every backend read)."""
        if self._thread is not None or self._closed:
            return
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._run, name="secretkit-changes", daemon=True)
            self._thread.start()

    def listen(self, listener: Listener) -> None:
        self._listeners.add(listener)
        self.start()

    def close(self, timeout: float = 0.5) -> None:
        """Stop the thread and delete what the source created. The source is closed under a
        running long poll, and the thread waited for ``timeout`` seconds only (a daemon, it
        ends when that pull returns or fails, applying nothing)."""
        with self._lock:
            self._closed = True
            self._stop.set()
            thread = self._thread
            source, self._source = self._source, None
        if source is not None:
            source.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=timeout)

    def stats(self, stats: CacheStats) -> CacheStats:
        """``stats`` with this consumer's event counts."""
        counts = self.counts
        return dataclasses.replace(stats, events_received=counts.received, events_matched=counts.matched,
                                   events_dropped=counts.dropped)

    # -- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        stop = self._stop
        while not stop.is_set():
            try:
                source = self._source
                if source is None:
                    source = self._open()
                    if source is None:
                        return
                deliveries = source.pull(self.context.wait)
                if stop.is_set():  # closed during the long poll: what was pulled comes again elsewhere
                    return
                for delivery in deliveries:
                    self.apply(delivery)
                if deliveries:
                    source.ack(deliveries)
                self.failures = 0
            except EventsLost as exc:
                _log.warning("secretkit: %s may have missed change events (%s); its cache is dropped",
                             self.context.backend, _short(exc))
                self._forget()
            except Exception as exc:  # noqa: BLE001 - the queue is unreachable (or the source broke): back off, retry
                if stop.is_set():  # close() released the source under a running pull
                    return
                self.failures += 1
                wait = backoff(self.failures, 0.5, self.max_backoff)
                _log.warning("secretkit: cannot reach the change events of %s (%s, %s: %s); reads are served "
                             "from the cache, retrying in %.1fs", self.context.backend, self._safe_description(),
                             type(exc).__name__, _short(exc), wait)
                _log.debug("change source failure", exc_info=True)
                stop.wait(wait)

    def _open(self) -> ChangeSource | None:
        source = self._factory(self.context)
        source.open()
        with self._lock:
            if self._closed:  # closed while opening: undo what open() created
                source.close()
                return None
            self._source = source
        # Entries loaded before the source listened may have missed a change: drop them once;
        # and let every watch check once, for the same reason.
        self._forget()
        self.ready.set()
        _log.info("secretkit: %s hears changes from %s", self.context.backend, self._safe_description())
        return source

    def _forget(self) -> None:
        """Drop every cached entry and wake every watch: changes may have been missed."""
        if self.cache is not None:
            self.cache.clear()
        for listener in list(self._listeners):
            listener.wake()

    def _safe_description(self) -> str:
        source = self._source
        return source.description if source is not None else f"{self.context.prefix}:{self.context.target}"

    def apply(self, delivery: Delivery) -> None:
        """Count ``delivery``, drop its events' cached entries and wake their watches."""
        self.counts.received += 1
        self.observer().change_event("received")
        if not delivery.events:
            self._drop(delivery.dropped or "no event in the message", delivery)
            return
        for event in delivery.events:
            if self._duplicate(event):
                self._drop("duplicate of an event already applied", delivery)
                continue
            names = self._names(event.secret)
            if not names:
                self._drop(f"names a secret of another store ({event.secret!r})", delivery)
                continue
            matched = False
            for name in names:
                matched = self._invalidate(name) or matched
                for listener in list(self._listeners):
                    if listener.name == name:
                        listener.wake()
                        matched = True
            if matched:
                self.counts.matched += 1
                self.observer().change_event("matched")
            _log.debug("change event %s %s: %s", event.kind, event.secret, "applied" if matched else "not cached")

    def _invalidate(self, name: str) -> bool:
        return self.cache is not None and self.cache.invalidate(name)

    def _duplicate(self, event: ChangeEvent) -> bool:
        if event.event_id is None:
            return False
        key = f"{event.event_id}/{event.secret}"
        if key in self._seen:
            return True
        self._seen[key] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        return False

    def _drop(self, why: str, delivery: Delivery) -> None:
        self.counts.dropped += 1
        self.observer().change_event("dropped")
        _log.debug("change message dropped: %s", why)
        if delivery.body is not None and _log.isEnabledFor(logging.DEBUG):
            _log.debug("dropped change message body: %.2000s", delivery.body)


def _short(exc: BaseException) -> str:
    """The first line of an error's message, at most 200 characters (no bodies in warnings)."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""

