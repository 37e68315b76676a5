"""The store's read cache, driven by a fake clock over a counting, fault-injecting memory driver."""

from __future__ import annotations

import dataclasses

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from pydantic import ValidationError

import secretkit
from secretkit.audit import AuditEvent
from secretkit.cache import CachedNotFoundError, CachePolicy, CacheStats
from secretkit.config import StoreOptions
from secretkit.drivers.base import Record
from secretkit.drivers.memory import MemoryDriver
from secretkit.errors import (
    AuthenticationError,
    ConfigError,
    NotFoundError,
    PermissionDeniedError,
    SecretError,
    ThrottledError,
    UnavailableError,
)
from secretkit.policies import default_policy
from secretkit.retry import RetryPolicy
from secretkit.secret import Secret, Stage, Value
from secretkit.store import SecretStore
from secretkit.testing.faulty import FaultyDriver


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class BatchMemory(MemoryDriver):
    """memory:// with a batch read, recording the names of each batch."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def read_many(self, names: Sequence[str]) -> dict[str, Record | SecretError]:
        self.batches.append(list(names))
        out: dict[str, Record | SecretError] = {}
        for name in names:
            try:
                out[name] = self.read(name)
            except SecretError as exc:
                out[name] = exc
        return out


class Env:
    def __init__(self, inner: MemoryDriver | None = None, **policy: Any) -> None:
        self.inner = inner or MemoryDriver()
        self.driver = FaultyDriver(self.inner)
        self.clock = FakeClock()
        policy.setdefault("jitter", 0.0)
        options = StoreOptions(cache=CachePolicy(**policy), retry=RetryPolicy.none())
        self.store = SecretStore(self.driver, options=options, clock=self.clock)  # type: ignore[arg-type]

    def backend_put(self, name: str, text: str) -> str:
        """Change the value behind the store's back (another process did it)."""
        info = self.inner.write(name, Value.of(text), if_version=None, create_only=False, token=uuid.uuid4().hex)
        return info.version

    @property
    def reads(self) -> int:
        return self.driver.calls["read"]


@pytest.fixture
def env() -> Any:
    e = Env(ttl=100, check_version=False)
    yield e
    e.store.close()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


# -- hits, misses, TTL ------------------------------------------------------------------


def test_hit_after_miss_and_stats(env: Env) -> None:
    env.backend_put("a", "one")
    first = env.store.get("a")
    second = env.store.get("a")
    assert first.text == second.text == "one" and second is first
    assert env.reads == 1
    assert env.store.cache_stats() == CacheStats(hits=1, misses=1, stale_served=0, refreshes=0, evictions=0, size=1)


def test_expired_entry_is_read_again() -> None:
    e = Env(ttl=10, refresh_ahead=1.0, check_version=False)
    e.backend_put("a", "one")
    e.store.get("a")
    e.backend_put("a", "two")
    e.clock.advance(9.9)
    assert e.store.get("a").text == "one" and e.reads == 1
    e.clock.advance(0.1)
    assert e.store.get("a").text == "two" and e.reads == 2


def test_ttl_jitter_shortens_each_entry_within_bounds() -> None:
    e = Env(ttl=100, jitter=0.5, refresh_ahead=1.0, check_version=False)
    names = [f"s{i}" for i in range(60)]
    for n in names:
        e.backend_put(n, "v")
        e.store.get(n)
    cache = e.store._cache
    assert cache is not None
    lifetimes = [cache.expires(n, cache.entries[n]) - cache.fetched(n, cache.entries[n]) for n in names]
    assert all(50 <= t <= 100 for t in lifetimes)
    assert max(lifetimes) - min(lifetimes) > 10  # really spread, not lockstep
    e.clock.advance(49.9)
    for n in names:
        e.store.get(n)
    assert e.reads == 60  # every entry still fresh
    e.clock.advance(50.2)
    for n in names:
        e.store.get(n)
    assert e.reads == 120  # every entry expired


def test_lru_evicts_least_recently_used() -> None:
    e = Env(ttl=100, max_entries=2, check_version=False)
    for n in "abc":
        e.backend_put(n, n)
    e.store.get("a")
    e.store.get("b")
    e.store.get("a")  # a is now more recent than b
    e.store.get("c")  # evicts b
    assert e.store.cache_stats().evictions == 1 and e.store.cache_stats().size == 2
    reads = e.reads
    e.store.get("a")
    assert e.reads == reads
    e.store.get("b")
    assert e.reads == reads + 1


def test_versions_and_stages_are_separate_entries(env: Env) -> None:
    v1 = env.backend_put("a", "one")
    env.backend_put("a", "two")
    assert env.store.get("a").text == "two"
    assert env.store.get("a", version=v1).text == "one"
    assert env.store.get("a", stage=Stage.PREVIOUS).text == "one"
    assert env.store.get("a", version=v1).text == "one"
    assert env.reads == 3


# -- refresh-ahead --------------------------------------------------------------------------


def test_refresh_ahead_runs_once_in_background_and_readers_do_not_wait(env: Env) -> None:
    env.backend_put("a", "old")
    env.store.get("a")
    env.backend_put("a", "new")
    gate = env.driver.gate("read")
    env.clock.advance(85)  # past refresh_ahead, before expiry
    try:
        started = time.perf_counter()
        answers = [env.store.get("a").text for _ in range(50)]
        elapsed = time.perf_counter() - started
        assert answers == ["old"] * 50  # answered from the cache while the refresh waits at the gate
        assert elapsed < 1.0
        assert env.driver.entered["read"].wait(10)
        answers = [env.store.get("a").text for _ in range(50)]
        assert answers == ["old"] * 50
        assert env.reads == 2  # the warm-up and ONE refresh
    finally:
        gate.set()
    wait_for(lambda: env.store.get("a").text == "new")
    assert env.reads == 2
    assert env.store.cache_stats().refreshes == 1


def test_refresh_ahead_failure_keeps_the_value_for_transient_errors(env: Env) -> None:
    env.backend_put("a", "old")
    env.store.get("a")
    env.driver.fail("read", UnavailableError("down"), times=None)
    env.clock.advance(85)
    assert env.store.get("a").text == "old"
    wait_for(lambda: env.reads == 2 and not env.store._cache._flights)  # type: ignore[union-attr]
    assert env.store.get("a").text == "old"


def test_refresh_ahead_permission_denied_drops_the_entry(env: Env) -> None:
    env.backend_put("a", "old")
    env.store.get("a")
    env.driver.fail("read", PermissionDeniedError("revoked"), times=None)
    env.clock.advance(85)
    assert env.store.get("a").text == "old"  # the reader that triggers the refresh is not blocked
    wait_for(lambda: env.store.cache_stats().size == 0)
    with pytest.raises(PermissionDeniedError):
        env.store.get("a")


# -- stale-if-error -------------------------------------------------------------------------


@pytest.mark.parametrize("error", [UnavailableError("down"), ThrottledError("slow down")])
def test_stale_value_served_on_transient_error(env: Env, error: SecretError) -> None:
    events: list[AuditEvent] = []
    env.store.add_audit_hook(events.append)
    env.backend_put("a", "old")
    env.store.get("a")
    env.clock.advance(150)
    env.driver.fail("read", error, times=None)
    assert env.store.get("a").text == "old"
    assert env.store.cache_stats().stale_served == 1
    assert [e.cache for e in events if e.operation == "get"][-2:] == ["miss", "stale"]
    env.driver.heal()
    env.backend_put("a", "new")
    assert env.store.get("a").text == "new"  # next read tries the backend again


def test_stale_value_only_up_to_max_stale() -> None:
    e = Env(ttl=10, max_stale=20, check_version=False)
    e.backend_put("a", "old")
    e.store.get("a")
    e.driver.fail("read", UnavailableError("down"), times=None)
    e.clock.advance(29)
    assert e.store.get("a").text == "old"
    e.clock.advance(2)
    with pytest.raises(UnavailableError):
        e.store.get("a")


@pytest.mark.parametrize(
    "error", [PermissionDeniedError("denied"), AuthenticationError("bad token"), NotFoundError("gone")]
)
def test_permanent_errors_are_never_hidden_by_stale_data(env: Env, error: SecretError) -> None:
    env.backend_put("a", "old")
    env.store.get("a")
    env.clock.advance(150)
    env.driver.fail("read", error, times=1)
    with pytest.raises(type(error)):
        env.store.get("a")
    assert env.store.cache_stats().stale_served == 0
    assert env.store.cache_stats().size == 0  # the entry is dropped, not kept for later


def test_deleted_secret_raises_not_found_after_expiry(env: Env) -> None:
    env.backend_put("a", "old")
    env.store.get("a")
    env.inner.delete("a", purge=True)
    env.clock.advance(150)
    with pytest.raises(NotFoundError):
        env.store.get("a")


def test_max_age_call_does_not_serve_stale(env: Env) -> None:
    env.backend_put("a", "old")
    env.store.get("a")
    env.clock.advance(10)
    env.driver.fail("read", UnavailableError("down"), times=None)
    with pytest.raises(UnavailableError):
        env.store.get("a", max_age=5)
    assert env.store.get("a").text == "old"  # a plain read still has its fresh entry


# -- negative caching -----------------------------------------------------------------------


def test_not_found_is_cached_only_with_negative_ttl(env: Env) -> None:
    for _ in range(3):
        with pytest.raises(NotFoundError):
            env.store.get("missing")
    assert env.reads == 3


def test_negative_caching() -> None:
    e = Env(ttl=100, negative_ttl=5, check_version=False)
    with pytest.raises(NotFoundError):
        e.store.get("missing")
    with pytest.raises(CachedNotFoundError) as cached:
        e.store.get("missing")
    assert cached.value.name == "missing" and e.reads == 1
    e.clock.advance(5)
    with pytest.raises(NotFoundError) as fresh:
        e.store.get("missing")
    assert not isinstance(fresh.value, CachedNotFoundError) and e.reads == 2
    e.store.put("missing", "here now")  # a write through the store ends the negative entry
    assert e.store.get("missing").text == "here now"


# -- single-flight --------------------------------------------------------------------------


def _many_readers(store: SecretStore, n: int, driver: FaultyDriver) -> list[Any]:
    gate = driver.gate("read")
    results: list[Any] = [None] * n
    arrived = threading.Semaphore(0)

    def reader(i: int) -> None:
        arrived.release()
        try:
            results[i] = store.get("a")
        except SecretError as exc:
            results[i] = exc

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for _ in range(n):
        assert arrived.acquire(timeout=10)
    assert driver.entered["read"].wait(10)
    time.sleep(0.3)  # let every reader reach the cache and join the one load
    gate.set()
    for t in threads:
        t.join(10)
    return results


def test_single_flight_32_threads_one_backend_call(env: Env) -> None:
    env.backend_put("a", "value")
    results = _many_readers(env.store, 32, env.driver)
    assert env.reads == 1
    assert all(isinstance(r, Secret) and r.text == "value" for r in results)
    assert len({id(r) for r in results}) == 1


def test_single_flight_shares_the_error(env: Env) -> None:
    env.backend_put("a", "value")
    env.driver.fail("read", UnavailableError("down"), times=None)
    results = _many_readers(env.store, 32, env.driver)
    assert env.reads == 1
    assert all(isinstance(r, UnavailableError) for r in results)
    assert len({id(r) for r in results}) == 1


# -- writes invalidate ----------------------------------------------------------------------


def test_put_and_delete_invalidate(env: Env) -> None:
    env.store.put("a", "one")
    assert env.store.get("a").text == "one"
    env.store.put("a", "two")
    assert env.store.get("a").text == "two"
    env.store.delete("a")
    with pytest.raises(NotFoundError):
        env.store.get("a")


def test_failed_put_still_invalidates(env: Env) -> None:
    env.store.put("a", "one")
    env.store.get("a")
    env.backend_put("a", "other")
    env.driver.fail("write", UnavailableError("timed out, maybe written"))
    with pytest.raises(UnavailableError):
        env.store.put("a", "two")
    assert env.store.get("a").text == "other"


def test_put_invalidates_all_versions_and_stages(env: Env) -> None:
    env.store.put("a", "one")
    env.store.put("a", "two")
    assert env.store.get("a", stage=Stage.PREVIOUS).text == "one"
    env.store.put("a", "three")
    assert env.store.get("a", stage=Stage.PREVIOUS).text == "two"


def test_load_in_flight_during_a_write_does_not_resurrect_the_old_value(env: Env) -> None:
    env.store.put("a", "old")
    gate = env.driver.gate("read", after=True)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(env.store.get("a").text))
    reader.start()
    assert env.driver.entered["read"].wait(10)
    env.store.put("a", "new")  # the reader's load has read "old" and is held before it returns
    gate.set()
    reader.join(10)
    assert got == ["old"]  # it began before the write: either answer was fine for it
    assert env.store.get("a").text == "new"  # but the old value was not cached


def test_rotate_and_discard_pending_invalidate(env: Env) -> None:
    env.store.put("a", "one")
    assert env.store.get("a").text == "one"
    with pytest.raises(NotFoundError):
        env.store.get("a", stage=Stage.PENDING)
    from secretkit.rotation import RotationError

    with pytest.raises(RotationError):
        env.store.rotate("a", generate=lambda c: "bad", verify=lambda p: False)
    assert env.store.get("a", stage=Stage.PENDING).text == "bad"
    env.store.discard_pending("a")
    with pytest.raises(NotFoundError):
        env.store.get("a", stage=Stage.PENDING)
    env.store.rotate("a", generate=lambda c: "two")
    assert env.store.get("a").text == "two"
    assert env.store.get("a", stage=Stage.PREVIOUS).text == "one"


def test_rotation_reads_current_bypassing_a_stale_cache(env: Env) -> None:
    env.store.put("a", "one")
    env.store.get("a")  # cached: version 1
    env.backend_put("a", "changed elsewhere")
    seen: list[str] = []
    env.store.rotate("a", generate=lambda current: seen.append(current.text) or "rotated")
    assert seen == ["changed elsewhere"]
    assert env.store.get("a", stage=Stage.PREVIOUS).text == "changed elsewhere"


def test_watcher_change_invalidates(env: Env) -> None:
    env.store.put("a", "one")
    env.store.get("a")
    got: list[str] = []
    with env.store.watch("a", lambda s: got.append(s.text), interval=3600) as watcher:
        env.backend_put("a", "two")
        assert watcher.poll() is True
    assert got == ["two"] and env.store.get("a").text == "two"


# -- per-call overrides -----------------------------------------------------------------------


def test_max_age(env: Env) -> None:
    env.backend_put("a", "one")
    env.store.get("a")
    env.clock.advance(10)
    env.backend_put("a", "two")
    assert env.store.get("a", max_age=20).text == "one" and env.reads == 1
    assert env.store.get("a", max_age=5).text == "two" and env.reads == 2
    assert env.store.get("a", max_age=5).text == "two" and env.reads == 2  # the new entry is young
    with pytest.raises(secretkit.InvalidArgumentError):
        env.store.get("a", max_age=-1)


def test_refresh_true_and_store_refresh(env: Env) -> None:
    env.backend_put("a", "one")
    env.store.get("a")
    env.backend_put("a", "two")
    assert env.store.get("a", refresh=True).text == "two"
    assert env.store.get("a").text == "two" and env.reads == 2  # the cache was updated
    env.backend_put("a", "three")
    assert env.store.refresh("a").text == "three"
    assert env.store.get("a").text == "three" and env.reads == 3


# -- version check ------------------------------------------------------------------------------


def test_refresh_checks_the_version_before_reading_the_value() -> None:
    e = Env(ttl=10, refresh_ahead=1.0, check_version=True)
    e.backend_put("a", "one")
    first = e.store.get("a")
    e.clock.advance(11)
    assert e.store.get("a") is first  # unchanged: kept without reading the value
    assert e.driver.calls["current_version"] == 1 and e.reads == 1
    e.clock.advance(5)
    assert e.store.get("a") is first and e.driver.calls["current_version"] == 1  # its lifetime was renewed
    e.backend_put("a", "two")
    e.clock.advance(11)
    assert e.store.get("a").text == "two"
    assert e.driver.calls["current_version"] == 2 and e.reads == 2


def test_background_refresh_uses_the_version_check() -> None:
    e = Env(ttl=10, check_version=True)
    e.backend_put("a", "one")
    e.store.get("a")
    e.clock.advance(9)
    e.store.get("a")
    wait_for(lambda: e.store.cache_stats().refreshes == 1 and not e.store._cache._flights)  # type: ignore[union-attr]
    assert e.driver.calls["current_version"] == 1 and e.reads == 1
    e.clock.advance(5)  # beyond the first lifetime: renewed by the check
    assert e.store.get("a").text == "one" and e.reads == 1


# -- get_many -------------------------------------------------------------------------------------


def test_get_many_serves_hits_and_batches_only_misses() -> None:
    e = Env(BatchMemory(), ttl=100, check_version=False)
    inner = e.inner
    assert isinstance(inner, BatchMemory)
    for n in ("h1", "h2", "h3", "m1", "m2"):
        e.backend_put(n, n)
    for n in ("h1", "h2", "h3"):
        e.store.get(n)
    result = e.store.get_many(["h1", "m1", "h2", "m2", "h3", "gone"])
    assert inner.batches == [["m1", "m2", "gone"]]
    assert {n: result[n].text for n in result} == {n: n for n in ("h1", "h2", "h3", "m1", "m2")}
    assert isinstance(result.errors["gone"], NotFoundError)
    e.store.get_many(["m1", "m2"])
    assert len(inner.batches) == 1  # the batch filled the cache
    e.store.put("m1", "changed")
    assert e.store.get_many(["m1", "m2"])["m1"].text == "changed"
    assert inner.batches[-1] == ["m1"]


def test_get_many_serves_stale_when_the_batch_call_fails_transiently() -> None:
    e = Env(BatchMemory(), ttl=10, check_version=False)
    e.backend_put("a", "old")
    e.store.get_many(["a"])
    e.clock.advance(20)
    e.driver.fail("read_many", UnavailableError("down"), times=None)
    assert e.store.get_many(["a"])["a"].text == "old"
    with pytest.raises(UnavailableError):
        e.store.get_many(["never-cached"])


# -- audit --------------------------------------------------------------------------------------


def test_audit_events_carry_the_cache_outcome(env: Env) -> None:
    events: list[AuditEvent] = []
    env.backend_put("a", "v")
    env.store.get("a")  # a hit without hooks emits nothing
    env.store.add_audit_hook(events.append)
    env.store.get("a")
    env.store.put("a", "w")
    env.store.get("a")
    assert [(e.operation, e.cache) for e in events] == [("get", "hit"), ("put", None), ("get", "miss")]
    assert events[0].version is not None and events[0].outcome == "ok"


# -- policy and options ----------------------------------------------------------------------------


def test_default_policy_follows_the_remote_capability() -> None:
    assert default_policy(True).enabled
    assert not default_policy(False).enabled
    assert secretkit.open("memory://").cache_policy is None
    assert secretkit.open("memory://").cache_stats() == CacheStats()

    class ThirdPartyRemote(MemoryDriver):  # any backend id: the capability decides, not a list of ids
        backend = "acme-vault"

        def __init__(self) -> None:
            super().__init__()
            self.capabilities = dataclasses.replace(self.capabilities, remote=True)

    assert SecretStore(ThirdPartyRemote()).cache_policy == CachePolicy()


def test_cache_options_from_url_and_keywords() -> None:
    store = secretkit.open("memory://?cache=true&cache_ttl=60&cache_max_stale=5")
    assert store.cache_policy == CachePolicy(ttl=60, max_stale=5)
    assert secretkit.open("memory://?cache=false").cache_policy is None
    assert secretkit.open("memory://", cache=True, cache_negative_ttl=2).cache_policy == CachePolicy(negative_ttl=2)
    assert secretkit.open("memory://", cache=CachePolicy(ttl=7)).cache_policy == CachePolicy(ttl=7)
    assert secretkit.CachePolicy is CachePolicy


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("memory://?cache_ttl=soon", "cache_ttl"),
        ("memory://?cache_ttl=-1", "cache_ttl"),
        ("memory://?cache=perhaps", "cache"),
        ("memory://?cache_max_stale=x", "cache_max_stale"),
        ("memory://?cache_bogus=1", "cache_bogus"),
    ],
)
def test_bad_cache_option_is_a_config_error_naming_it(url: str, named: str) -> None:
    with pytest.raises(ConfigError) as info:
        secretkit.open(url)
    assert f"{named}:" in str(info.value)


def test_policy_is_frozen_and_strict() -> None:
    with pytest.raises(ValidationError):
        CachePolicy(ttl=0)
    with pytest.raises(ValidationError):
        CachePolicy(unknown=1)  # type: ignore[call-arg]
    policy = CachePolicy()
    with pytest.raises(ValidationError):
        policy.ttl = 5  # type: ignore[misc]
    assert (policy.ttl, policy.jitter, policy.max_entries, policy.refresh_ahead) == (300, 0.1, 1024, 0.8)
    assert (policy.max_stale, policy.negative_ttl, policy.check_version) == (3600, 0, True)


def test_close_stops_the_background_worker(env: Env) -> None:
    env.backend_put("a", "v")
    env.store.get("a")
    worker = env.store._cache._worker  # type: ignore[union-attr]
    assert worker is not None
    env.store.close()
    assert not worker._thread.is_alive()
