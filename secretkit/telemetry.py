"""OpenTelemetry metrics and traces of secretkit stores (the ``otel`` extra: opentelemetry-api).

Imported only when asked for: by a store opened with ``telemetry=True``, by ``instrument()``,
or by an application importing it. Instruments come from the global meter and tracer providers
unless ``instrument()`` is given others; nothing here picks an SDK or an exporter. The
instruments and what each number means are in docs/observability.md.

Why it is shaped like this:

* A cache hit records nothing: one SDK counter ``add`` costs about seven hits (5 µs against
  0.7 µs), so lookups, cache size and evictions are *observable* instruments, read from the
  cache's own counters when the SDK collects (the counts ``cache_stats()`` gives). The age of
  what was served is a histogram: every read answered off the hit path (a miss, a stale answer)
  is recorded, and one hit in ``HIT_AGE_SAMPLE`` (the first one included), which keeps the
  distribution and not the count (the count is ``secretkit.cache.lookups``).
* Backend calls get one span and one duration per *attempt*, made on the caller's thread
  around the attempt, so the span is a child of the caller's span. The attempt itself may run
  in a worker thread (``attempts.py``) or the async facade's pool: both run it in a copy of
  the caller's context, where this span is current, so an instrumented SDK's spans nest below.
* Never a value; never a secret name in a metric; a name in a span attribute only with
  ``telemetry_names``. An error is told by its portable code (``error.type``), never its
  message (which names the secret), so no exception event is recorded.
* An SDK meter keeps the first instrument of a name (a second one's callbacks would never
  run), so each meter provider gets one set of instruments (``Instruments``), shared by every
  store reporting to it; a store's observable counts are folded into the set when it closes,
  so the exported totals never go down.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode

from secretkit import forking, observer
from secretkit.entries import Key, name_of
from secretkit.errors import SecretError
from secretkit.observer import Hit, Observer

if TYPE_CHECKING:
    from secretkit.cache import Cache
    from secretkit.drivers.base import Driver
    from secretkit.policies import StoreOptions
    from secretkit.secret import Secret

__all__ = ["HIT_AGE_SAMPLE", "INSTRUMENTS", "Instruments", "StoreTelemetry", "instrument", "uninstrument"]

T = TypeVar("T")

#: The instrumentation scope (meter and tracer name).
SCOPE = "secretkit"
#: One cache hit in this many has its age recorded (the first one included).
HIT_AGE_SAMPLE = 64
#: Bucket bounds (seconds) of ``secretkit.backend.duration``: from a local call to a slow cloud one.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Bucket bounds (seconds) of ``secretkit.cache.age``: around the default TTL (300 s) and max_stale (3600 s).
AGE_BUCKETS = (0.1, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 240.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
#: Every instrument: name → (kind, unit, attributes, what it counts); docs/observability.md's table.
INSTRUMENTS: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "secretkit.cache.lookups": ("observable counter", "{lookup}", ("backend", "result"),
                                "reads asked of the cache: result hit, miss, stale (served stale on an outage), negative"),
    "secretkit.cache.size": ("observable up-down counter", "{entry}", ("backend",), "entries cached now"),
    "secretkit.cache.evictions": ("observable counter", "{entry}", ("backend",), "entries dropped by the LRU bound"),
    "secretkit.cache.age": ("histogram", "s", ("backend", "result"),
                            "seconds since the value served was fetched (hits sampled)"),
    "secretkit.backend.duration": ("histogram", "s", ("backend", "operation", "error.type"),
                                   "one attempt of a backend call"),
    "secretkit.backend.retries": ("counter", "{retry}", ("backend", "operation"), "attempts beyond a call's first"),
    "secretkit.rotations": ("counter", "{rotation}", ("backend", "result", "step"), "rotations, by how they ended"),
    "secretkit.lease.renewals": ("counter", "{renewal}", ("backend",), "leases renewed"),
    "secretkit.lease.reissues": ("counter", "{reissue}", ("backend",), "leases issued anew before expiry"),
    "secretkit.lease.failures": ("counter", "{failure}", ("backend",), "failed renewals and re-issues"),
    "secretkit.changes.events": ("counter", "{event}", ("backend", "result"),
                                 "change events: received, then matched or dropped"),
}
_LOOKUP_RESULTS = ("hit", "miss", "stale", "negative")
#: The scope's version: the package's (read, not imported: the package imports what imports this module).
__version__: str = getattr(sys.modules.get("secretkit"), "__version__", "")


class Instruments:
    """Every instrument of one meter, and the stores reporting to it (see the module docstring)."""

    def __init__(self, meter: metrics.Meter) -> None:
        self._lock = threading.Lock()
        self._stores: weakref.WeakSet[StoreTelemetry] = weakref.WeakSet()
        #: what closed stores last reported, by (backend, result), and evictions by backend
        self._retired: dict[tuple[str, str], int] = {}
        self._retired_evictions: dict[str, int] = {}
        forking.at_fork(self, Instruments._after_fork)

        def make(name: str, create: Callable[..., Any], **more: Any) -> Any:
            _, unit, _, description = INSTRUMENTS[name]
            return create(name, unit=unit, description=description, **more)

        make("secretkit.cache.lookups", meter.create_observable_counter, callbacks=[self._lookups])
        make("secretkit.cache.size", meter.create_observable_up_down_counter, callbacks=[self._sizes])
        make("secretkit.cache.evictions", meter.create_observable_counter, callbacks=[self._evictions])
        self.age = _histogram(meter, "secretkit.cache.age", AGE_BUCKETS)
        self.duration = _histogram(meter, "secretkit.backend.duration", DURATION_BUCKETS)
        self.retries = make("secretkit.backend.retries", meter.create_counter)
        self.rotations = make("secretkit.rotations", meter.create_counter)
        self.renewals = make("secretkit.lease.renewals", meter.create_counter)
        self.reissues = make("secretkit.lease.reissues", meter.create_counter)
        self.lease_failures = make("secretkit.lease.failures", meter.create_counter)
        self.changes = make("secretkit.changes.events", meter.create_counter)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # a collecting thread of the parent may have held it

    def add(self, store: StoreTelemetry) -> None:
        with self._lock:
            self._stores.add(store)

    def retire(self, store: StoreTelemetry) -> None:
        """``store`` stops reporting: keep what it counted, so the totals never go down."""
        with self._lock:
            if store not in self._stores:
                return
            self._stores.discard(store)
            for result, count in store.lookups().items():
                key = (store.backend, result)
                self._retired[key] = self._retired.get(key, 0) + count
            self._retired_evictions[store.backend] = self._retired_evictions.get(store.backend, 0) + store.evictions()

    def _live(self) -> list[StoreTelemetry]:
        with self._lock:
            return list(self._stores)

    def _lookups(self, options: CallbackOptions) -> Iterable[Observation]:
        totals = dict(self._retired)
        for store in self._live():
            for result, count in store.lookups().items():
                totals[(store.backend, result)] = totals.get((store.backend, result), 0) + count
        return [Observation(count, {"backend": backend, "result": result}) for (backend, result), count in totals.items()]

    def _sizes(self, options: CallbackOptions) -> Iterable[Observation]:
        sizes: dict[str, int] = {}
        for store in self._live():
            if store.cache is not None:
                sizes[store.backend] = sizes.get(store.backend, 0) + len(store.cache.entries)
        return [Observation(size, {"backend": backend}) for backend, size in sizes.items()]

    def _evictions(self, options: CallbackOptions) -> Iterable[Observation]:
        totals = dict(self._retired_evictions)
        for store in self._live():
            if store.cache is not None:
                totals[store.backend] = totals.get(store.backend, 0) + store.evictions()
        return [Observation(count, {"backend": backend}) for backend, count in totals.items()]


def _histogram(meter: metrics.Meter, name: str, buckets: Sequence[float]) -> metrics.Histogram:
    _, unit, _, description = INSTRUMENTS[name]
    try:
        return meter.create_histogram(name, unit=unit, description=description,
                                      explicit_bucket_boundaries_advisory=buckets)
    except TypeError:  # opentelemetry-api before 1.23 takes no bucket advice: the SDK's default buckets
        return meter.create_histogram(name, unit=unit, description=description)


_registry_lock = threading.Lock()
#: meter provider → its instruments; ``None`` is the global provider, whatever it is set to later
_registry: weakref.WeakKeyDictionary[Any, Instruments] = weakref.WeakKeyDictionary()
_global: list[Instruments] = []


@forking.reset_in_child
def _reset_registry_lock() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()


def instruments_for(meter_provider: metrics.MeterProvider | None) -> Instruments:
    """The instruments of ``meter_provider`` (None: the global one), made on first use."""
    with _registry_lock:
        if meter_provider is None:
            # the global meter follows a provider set later (the API's proxy), so one set serves it for good
            if not _global:
                _global.append(Instruments(metrics.get_meter(SCOPE, __version__)))
            return _global[0]
        found = _registry.get(meter_provider)
        if found is None:
            found = _registry[meter_provider] = Instruments(meter_provider.get_meter(SCOPE, __version__))
        return found


class StoreTelemetry(Observer):
    """The recording observer of one store (``secretkit.observer.Observer``'s calls, recorded)."""

    on = True

    def __init__(
        self, driver: Driver, options: StoreOptions, *, meter_provider: metrics.MeterProvider | None = None,
        tracer_provider: trace.TracerProvider | None = None, names: bool = False, cache_spans: bool = False,
    ) -> None:
        self.backend = driver.backend
        self.names = names or options.telemetry_names
        self.cache_spans = cache_spans or options.telemetry_cache_spans
        self.instruments = instruments_for(meter_provider)
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        self._span_attributes: dict[str, str] = {"backend": self.backend}
        address = _server_address(driver)
        if address:
            self._span_attributes["server.address"] = address
        self._attributes = {"backend": self.backend}
        self.cache: Cache | None = None
        self._baseline: dict[str, int] = {}  # the cache's counts when this observer started watching it
        self._reported: dict[str, int] = {}  # the highest count reported per result: never lower
        self.instruments.add(self)

    # -- backend calls -------------------------------------------------------------------

    def attempt(self, operation: str, name: str | None, run: Callable[[], T]) -> T:
        attributes = {"backend": self.backend, "operation": operation}
        span_attributes = {**self._span_attributes, "secretkit.operation": operation}
        if self.names and name is not None and operation != "list":
            span_attributes["secretkit.name"] = name
        start = time.perf_counter()
        # record_exception off: an error's message names the secret; its code says what happened
        with self.tracer.start_as_current_span(f"secretkit.{operation}", kind=SpanKind.CLIENT,
                                               attributes=span_attributes, record_exception=False,
                                               set_status_on_exception=False) as span:
            try:
                result = run()
            except BaseException as exc:
                error_type = _error_type(exc)
                span.set_attribute("error.type", error_type)
                span.set_status(Status(StatusCode.ERROR, error_type))
                self.instruments.duration.record(time.perf_counter() - start, {**attributes, "error.type": error_type})
                raise
        self.instruments.duration.record(time.perf_counter() - start, attributes)
        return result

    def retried(self, operation: str, retries: int) -> None:
        self.instruments.retries.add(retries, {"backend": self.backend, "operation": operation})

    # -- the cache -----------------------------------------------------------------------

    def watch_cache(self, cache: Cache, hit: Hit) -> Hit:
        self.cache = cache
        self._baseline = self._counts()
        record, fetched, clock = self.instruments.age.record, cache.fetched, cache.clock
        hit_attributes = {"backend": self.backend, "result": "hit"}
        left = 1  # the first hit is recorded, then one in HIT_AGE_SAMPLE

        def observed(key: Key, max_age: float | None = None) -> Secret | None:
            nonlocal left
            secret = hit(key, max_age)
            if secret is not None:
                left -= 1
                if not left:
                    left = HIT_AGE_SAMPLE
                    record(clock() - fetched(key, secret), hit_attributes)
            return secret

        if not self.cache_spans:
            return observed
        tracer, span_attributes, names = self.tracer, {**self._span_attributes, "secretkit.cache": "hit"}, self.names

        def traced(key: Key, max_age: float | None = None) -> Secret | None:
            start = time.time_ns()
            secret = observed(key, max_age)
            if secret is not None:
                attributes = {**span_attributes, "secretkit.name": name_of(key)} if names else span_attributes
                tracer.start_span("secretkit.get", kind=SpanKind.INTERNAL, attributes=attributes,
                                  start_time=start).end()
            return secret

        return traced

    def served(self, key: Key, secret: Secret, how: str) -> None:
        cache = self.cache
        # a value loaded by a load that could not fill the cache has no fetch time: it is fresh
        age = cache.clock() - cache.fetched(key, secret) if cache is not None and hasattr(secret, "_refresh_at") else 0.0
        self.instruments.age.record(max(0.0, age), {"backend": self.backend, "result": how})

    def _counts(self) -> dict[str, int]:
        cache = self.cache
        if cache is None:
            return {}
        negative, stale = cache.negative_hits, cache.stale_served
        return {"hit": cache.hits - negative, "miss": cache.misses - stale, "stale": stale, "negative": negative,
                "evictions": cache.evictions}

    def lookups(self) -> dict[str, int]:
        """Cache lookups by result since this observer started watching (never lower than reported)."""
        counts, base, reported = self._counts(), self._baseline, self._reported
        for result in _LOOKUP_RESULTS + ("evictions",):
            if result in counts:
                reported[result] = max(reported.get(result, 0), counts[result] - base.get(result, 0))
        return {result: reported[result] for result in _LOOKUP_RESULTS if result in reported}

    def evictions(self) -> int:
        self.lookups()
        return self._reported.get("evictions", 0)

    # -- what runs beside the store --------------------------------------------------------

    def rotation(self, result: str, step: str | None = None) -> None:
        attributes = {"backend": self.backend, "result": result}
        if step is not None:
            attributes["step"] = step
        self.instruments.rotations.add(1, attributes)

    def lease_renewed(self) -> None:
        self.instruments.renewals.add(1, self._attributes)

    def lease_reissued(self) -> None:
        self.instruments.reissues.add(1, self._attributes)

    def lease_failed(self) -> None:
        self.instruments.lease_failures.add(1, self._attributes)

    def change_event(self, result: str) -> None:
        self.instruments.changes.add(1, {"backend": self.backend, "result": result})

    def close(self) -> None:
        self.instruments.retire(self)


def _error_type(exc: BaseException) -> str:
    """``error.type``: the portable code of a secretkit error, else the exception's class name."""
    if isinstance(exc, SecretError):
        return exc.code.value
    return type(exc).__qualname__


def _server_address(driver: Driver) -> str | None:
    """The host the driver talks to, where it says (its optional ``server_address``)."""
    try:
        address = getattr(driver, "server_address", None)
    except Exception:  # a property reading an SDK client that is not what it expects
        return None
    return address if isinstance(address, str) and address else None


def instrument(
    *stores: Any, meter_provider: metrics.MeterProvider | None = None,
    tracer_provider: trace.TracerProvider | None = None, names: bool = False, cache_spans: bool = False,
) -> None:
    """Report OpenTelemetry metrics and traces of secretkit stores.

    With no store: every store opened from now on reports (``uninstrument()`` ends that; stores
    already open are not changed). With stores (a ``SecretStore``, an ``AsyncSecretStore`` or a
    layered store, whose layers then report): those stores report from now on, their counts
    starting now. ``meter_provider`` and ``tracer_provider`` default to the global ones;
    ``names=True`` puts secret names in span attributes (``telemetry_names``), ``cache_spans=True``
    makes a span for every cache hit (``telemetry_cache_spans``).
    """

    def make(driver: Driver, options: StoreOptions) -> Observer:
        return StoreTelemetry(driver, options, meter_provider=meter_provider, tracer_provider=tracer_provider,
                              names=names, cache_spans=cache_spans)

    if not stores:
        observer.default_factory = make
        return
    for store in stores:
        store = getattr(store, "store", store)  # an AsyncSecretStore: the store below it
        layers = getattr(store, "layers", None)
        if layers is not None:  # a layered store: its layers call the backends
            instrument(*layers, meter_provider=meter_provider, tracer_provider=tracer_provider, names=names,
                       cache_spans=cache_spans)
        else:
            store.observe(make(store.driver, store.options))

def uninstrument() -> None:
    """Stores opened from now on report only if opened with ``telemetry=True`` (undoes ``instrument()``
    with no store; stores already reporting go on until closed)."""
    observer.default_factory = None
