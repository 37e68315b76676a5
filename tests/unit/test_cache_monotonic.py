"""Monotonic reads: within one store, no reader ever gets a value older than one any reader
already got, whatever mix of misses, forced refreshes, batch reads and background refreshes
runs at the same time (issue: hardening, item 2)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Sequence

from secretkit.cache import CachePolicy
from secretkit.config import StoreOptions
from secretkit.drivers.base import Record
from secretkit.drivers.memory import MemoryDriver
from secretkit.errors import SecretError
from secretkit.retry import RetryPolicy
from secretkit.secret import Value
from secretkit.store import SecretStore


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
