"""Monotonic reads: within one store, no reader ever gets a value older than one any reader
already got, whatever mix of misses, forced refreshes, batch reads and background refreshes
runs at the same time (issue: hardening, item 2)."""

from __future__ import annotations

import random
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence

import pytest

import secretkit
import secretkit.cache
from secretkit.cache import CachePolicy
from secretkit.config import StoreOptions
from secretkit.drivers.base import Record
from secretkit.drivers.memory import MemoryDriver
from secretkit.errors import SecretError
from secretkit.retry import RetryPolicy
from secretkit.secret import Value
from secretkit.store import SecretStore
from secretkit.testing.faulty import FaultyDriver
from tests.unit.test_cache import BatchMemory


class SlowAnswers(MemoryDriver):
    """memory:// with a batch read whose answers travel slowly: each read takes its snapshot at
    once, then is delayed (a random 0-3 ms, or held on ``hold`` for the first read), so an
    older answer can arrive after a newer one, as on a real network."""

    def __init__(self, *, jitter: float = 0.0, hold_first: bool = False) -> None:
        super().__init__()
        self.jitter = jitter
        self.hold = threading.Event()
        self.entered = threading.Event()
        self._hold_next = hold_first
        self.batches = 0

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        record = super().read(name, version=version, stage=stage)
        self._travel()
        return record

    def read_many(self, names: Sequence[str]) -> dict[str, Record | SecretError]:
        self.batches += 1
        out: dict[str, Record | SecretError] = {}
        for name in names:
            try:
                out[name] = super().read(name)
            except SecretError as exc:
                out[name] = exc
        self._travel()
        return out

    def _travel(self) -> None:
        if self._hold_next:
            self._hold_next = False
            self.entered.set()
            self.hold.wait(5)
        elif self.jitter:
            time.sleep(random.random() * self.jitter)


def _external_write(driver: MemoryDriver, name: str, text: str) -> None:
    """Another process writes: the store is not told."""
    driver.write(name, Value.of(text), if_version=None, create_only=False, token=uuid.uuid4().hex)


def _store(driver: MemoryDriver, **policy: object) -> SecretStore:
    options = StoreOptions(cache=CachePolicy(check_version=False, **policy), retry=RetryPolicy.none())  # type: ignore[arg-type]
    return SecretStore(driver, options=options)


def test_a_held_refresh_cannot_overwrite_a_newer_answer() -> None:
    """A refresh that read v1 and is held back, while the secret becomes v2 and a second
    refresh asks: the second answer is v2, and after both land the cache holds v2."""
    driver = SlowAnswers()
    store = _store(driver)
    _external_write(driver, "db", "v1")
    assert store.get("db").text == "v1"
    driver._hold_next = True  # the next answer (v1) is held back
    first: list[str] = []
    a = threading.Thread(target=lambda: first.append(store.refresh("db").text))
    a.start()
    assert driver.entered.wait(5)
    _external_write(driver, "db", "v2")
    second: list[str] = []
    b = threading.Thread(target=lambda: second.append(store.refresh("db").text))
    b.start()
    b.join(0.2)  # it queues behind the held load instead of racing it
    driver.hold.set()
    a.join(5)
    b.join(5)
    assert first == ["v1"] and second == ["v2"]
    assert store.get("db").text == "v2"


def test_a_batch_read_joins_the_load_in_flight() -> None:
    driver = SlowAnswers(hold_first=True)
    store = _store(driver)
    _external_write(driver, "db", "v1")
    got: list[str] = []
    a = threading.Thread(target=lambda: got.append(store.get("db").text))
    a.start()
    assert driver.entered.wait(5)
    _external_write(driver, "db", "v2")
    batch: list[str] = []
    b = threading.Thread(target=lambda: batch.append(store.get_many(["db"])["db"].text))
    b.start()
    b.join(0.2)
    driver.hold.set()
    a.join(5)
    b.join(5)
    # one backend read served both (the batch made no call of its own) ...
    assert got == ["v1"] and batch == ["v1"] and driver.batches == 0
    assert store.refresh("db").text == "v2"  # ... and a later forced read sees the new value
    assert store.get("db").text == "v2"


def test_concurrent_readers_never_go_back_in_time() -> None:
    """Readers mixing get, refresh, get_many and refresh-ahead while another process keeps
    writing newer versions: each answer is at least as new as every answer already given."""
    driver = SlowAnswers(jitter=0.003)
    store = _store(driver, ttl=0.02, refresh_ahead=0.3, jitter=0.5)
    _external_write(driver, "db", "0")
    newest = [0]
    lock = threading.Lock()
    violations: list[tuple[int, int]] = []
    stop = threading.Event()

    def reader(kind: int) -> None:
        while not stop.is_set():
            with lock:
                floor = newest[0]
            if kind == 0:
                value = int(store.get("db").text)
            elif kind == 1:
                value = int(store.refresh("db").text)
            else:
                value = int(store.get_many(["db"])["db"].text)
            with lock:
                if value < floor:
                    violations.append((floor, value))
                newest[0] = max(newest[0], value)
            time.sleep(0.0002)

    threads = [threading.Thread(target=reader, args=(i % 3,)) for i in range(6)]
    for t in threads:
        t.start()
    for version in range(1, 300):
        _external_write(driver, "db", str(version))
        time.sleep(0.002)
    stop.set()
    for t in threads:
        t.join(10)
    assert violations == []
    assert newest[0] > 100  # the readers really followed the writer


class Answer:
    """A read run in a thread of its own: ``value()`` waits for its text."""

    def __init__(self, read: Callable[[], str]) -> None:
        self._got: list[str | BaseException] = []

        def run() -> None:
            try:
                self._got.append(read())
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                self._got.append(exc)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def waiting(self) -> bool:
        """Still waiting after a short while (it joined a load that is held)."""
        self._thread.join(0.2)
        return self._thread.is_alive()

    def value(self) -> str:
        self._thread.join(10)
        assert self._got, "the read never returned"
        got = self._got[0]
        if isinstance(got, BaseException):
            raise got
        return got


@pytest.mark.parametrize("later", ["joins the load in flight", "hits the cache"])
def test_an_answer_a_write_left_behind_is_never_followed_by_an_older_one(later: str) -> None:
    """A load the store's own write detached from the cache (it started before the write)
    still answers the readers waiting for it, and its answer may be newer than that of the
    load started after the write: it reached the backend later. A reader served that newer
    answer must not get the older one next, whether its next read joins the later load or
    hits what that load cached. (On aws-sm: "22" then "21" under puts and max_age reads.)"""
    inner = MemoryDriver()
    driver = FaultyDriver(inner)
    store = _store(driver)  # type: ignore[arg-type]
    store.put("db", "1")
    early = driver.hold("read")  # the first load waits before it reaches the backend
    reader = Answer(lambda: store.get("db", max_age=5).text)
    assert early.entered.wait(5)
    store.put("db", "2")  # detaches the early load: it must not fill the cache
    late = driver.hold("read", after=True)  # the next load reads "2"; its answer waits
    other = Answer(lambda: store.get("db").text)
    assert late.entered.wait(5)
    _external_write(inner, "db", "3")  # another process writes: nothing tells the store
    if later == "hits the cache":
        late.release()
        assert other.value() == "2"  # cached: it was the current value when read
        early.release()
        assert reader.value() == "3"
        assert store.get("db").text == "3"  # not the "2" cached before "3" was served
    else:
        early.release()
        assert reader.value() == "3"
        again = Answer(lambda: store.get("db").text)
        assert again.waiting()  # it joined the load of "2", still held
        late.release()
        assert again.value() == "3"
        assert other.value() in ("2", "3")  # that reader asked before "3" was served
    assert store.get("db").text == "3"



def test_an_overtaken_batch_load_reads_that_name_again_alone() -> None:
    inner = BatchMemory()
    driver = FaultyDriver(inner)
    store = _store(driver)  # type: ignore[arg-type]
    store.put("db", "1")
    early = driver.hold("read")
    reader = Answer(lambda: store.get("db").text)
    assert early.entered.wait(5)
    store.put("db", "2")
    late = driver.hold("read_many", after=True)  # the batch reads "2"; its answer waits
    batch = Answer(lambda: store.get_many(["db"])["db"].text)
    assert late.entered.wait(5)
    _external_write(inner, "db", "3")
    early.release()
    assert reader.value() == "3"
    late.release()
    assert batch.value() == "3"  # "2" may be older than the "3" served meanwhile: read again
    assert driver.calls["read_many"] == 1 and driver.calls["read"] == 2
    assert store.get("db").text == "3"


def test_a_load_overtaken_by_the_same_version_does_not_read_again() -> None:
    """The usual case after a put: the load left behind and the one started after it both
    read the new version; the later load's answer stands, at no extra backend read."""
    inner = MemoryDriver()
    driver = FaultyDriver(inner)
    store = _store(driver)  # type: ignore[arg-type]
    store.put("db", "1")
    early = driver.hold("read")
    reader = Answer(lambda: store.get("db").text)
    assert early.entered.wait(5)
    store.put("db", "2")
    late = driver.hold("read", after=True)
    other = Answer(lambda: store.get("db").text)
    assert late.entered.wait(5)
    early.release()
    assert reader.value() == "2"
    late.release()
    assert other.value() == "2"
    assert driver.calls["read"] == 2
    assert store.get("db").text == "2" and driver.calls["read"] == 2  # cached


def test_readers_never_go_back_on_aws_sm_under_puts() -> None:
    """aws-sm on moto: 150 puts through the store while 16 readers mix ``max_age`` reads and
    plain gets; no answer is older than one that reader, or any reader before it asked, already
    had. Calls travel with random latency (``FaultyDriver.delay``), so loads overtake each other
    on the way to and from the backend as over a network; without it the race shows only now
    and then. (Before the fix: 3 to 40 answers went back per run.)"""
    moto = pytest.importorskip("moto")
    from secretkit.drivers.aws.moto import aws_faithful_moto, fake_aws_env

    with fake_aws_env(), aws_faithful_moto(), moto.mock_aws():
        opened = secretkit.open("aws-sm://?region=us-east-1")
        driver = FaultyDriver(opened.driver)
        driver.delay("read", 0.002, jitter=True)
        driver.delay("read", 0.001, jitter=True, after=True)
        driver.delay("write", 0.002)
        driver.delay("write", 0.002, after=True)  # the put has landed; the store does not know yet
        store = SecretStore(driver, options=opened.options)
        assert store.cache_policy is not None  # a remote backend: cached by default
        store.put("db", "0")
        newest = [0]
        lock = threading.Lock()
        violations: list[tuple[int, int]] = []
        stop = threading.Event()

        def reader(seed: int) -> None:
            choose = random.Random(seed)
            mine = 0
            while not stop.is_set():
                floor = max(newest[0], mine)
                if choose.random() < 0.5:
                    value = int(store.get("db", max_age=choose.choice((0, 0.001))).text)
                else:
                    value = int(store.get("db").text)
                if value < floor:
                    violations.append((floor, value))
                mine = max(mine, value)
                if value > newest[0]:
                    with lock:
                        newest[0] = max(newest[0], value)
                time.sleep(0)  # let the other threads run between reads, hits included

        threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(16)]
        for t in threads:
            t.start()
        try:
            for version in range(1, 151):
                store.put("db", str(version))
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        assert violations == []
        assert store.get("db").text == "150"  # read your writes
        assert newest[0] > 100  # the readers really followed the writer
        store.close()


def test_names_written_and_deleted_leave_nothing_behind_in_the_cache() -> None:
    """The cache keeps state only for cached entries (at most ``max_entries``) and loads in
    flight: 2,000 names put, read and deleted through a cached store leave its memory where it
    was. (Before: a per-name write counter was kept forever, +51 KiB here, +18 MiB for
    200,000 names.)"""
    store = SecretStore(MemoryDriver(), options=StoreOptions(cache=CachePolicy(max_entries=64)))

    def churn(names: range) -> None:
        for i in names:
            store.put(f"app/{i}", "v")
            assert store.get(f"app/{i}").text == "v"  # cached ...
            store.delete(f"app/{i}")  # ... and dropped

    def held_by_the_cache() -> int:
        only = [tracemalloc.Filter(True, secretkit.cache.__file__)]
        return sum(stat.size for stat in tracemalloc.take_snapshot().filter_traces(only).statistics("filename"))

    churn(range(100))  # warm up: the dicts' first allocations, the refresh worker
    tracing = tracemalloc.is_tracing()  # e.g. python -X tracemalloc: leave it on
    tracemalloc.start()
    try:
        before = held_by_the_cache()
        churn(range(100, 2100))
        grown = held_by_the_cache() - before
    finally:
        if not tracing:
            tracemalloc.stop()
    assert store.cache_stats().size == 0
    assert grown < 8 * 1024, f"the cache kept {grown} bytes for names it no longer holds"
