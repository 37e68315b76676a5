"""``SecretStore.close()`` stops everything the store started: the watchers started through it,
the cache's refresh worker and the attempt workers of remote calls."""

from __future__ import annotations

import dataclasses
import threading
import time

from secretkit.drivers.memory import MemoryDriver
from secretkit.policies import CachePolicy, RetryPolicy, StoreOptions
from secretkit.secret import Secret
from secretkit.store import SecretStore


def _started_since(baseline: set[threading.Thread]) -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t not in baseline and t.name.startswith("secretkit-"))


def test_close_stops_watchers_refresh_and_attempt_workers() -> None:
    baseline = set(threading.enumerate())
    driver = MemoryDriver()
    # declared remote: calls run on attempt workers, and the cache is on with refresh-ahead
    driver.capabilities = dataclasses.replace(driver.capabilities, remote=True)
    store = SecretStore(driver, options=StoreOptions(retry=RetryPolicy(deadline=5), cache=CachePolicy(ttl=60)))
    store.put("a", "v")
    seen: list[Secret] = []
    store.watch("a", seen.append, interval=0.05)
    assert store.get("a").text == "v"
    started = _started_since(baseline)
    # each kind of thread a store starts is running before close
    assert {"secretkit-attempt", "secretkit-cache-refresh", "secretkit-watch-a"} <= set(started), started

    store.close()

    deadline = time.monotonic() + 5
    while _started_since(baseline) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _started_since(baseline) == []
