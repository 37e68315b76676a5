"""Benchmark push invalidation against polling for a simulated fleet.

    python3 benchmarks/bench_fleet.py [--stores 200] [--secrets 50] [--changes 20] [--seed 1]

A fleet of ``--stores`` stores (the real ``SecretStore``, cache and change consumer; one
consumer thread per store in push mode) reads ``--secrets`` secrets, each store each secret
every 30 simulated seconds, for one simulated hour after a warm-up read, while ``--changes``
secrets change at random times. The backend is the in-memory driver behind a counting wrapper
(``secretkit.testing.changes.HearingDriver``), one per store; the clock of the caches is a fake
one advanced a second at a time.

* **polling**: the cache TTL is 5 minutes (the usual answer to "how stale may it be").
* **push**: ``changes=`` set (the default TTL becomes an hour, the safety net); every change is
  published on an in-memory topic every store's consumer subscribes to (fan-out, as SNS does).

Printed: backend calls in the hour (reads and version checks, the warm-up excluded), and the
staleness after each change, per store: how long it went on serving the old value. Under
polling that is simulated seconds (checked every simulated second); under push the event
path is real threads, so it is wall-clock time from publish to the new value being served.
Targets: push makes >= 10x fewer backend calls, with a p99 staleness < 5 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from secretkit.changes.source import ChangeEvent  # noqa: E402
from secretkit.drivers.memory import MemoryDriver  # noqa: E402
from secretkit.policies import CachePolicy, StoreOptions  # noqa: E402
from secretkit.store import SecretStore  # noqa: E402
from secretkit.testing.changes import HearingDriver, topic  # noqa: E402

HOUR = 3600
READ_EVERY = 30


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(mode: str, stores_n: int, secrets_n: int, changes_n: int, seed: int) -> tuple[int, list[float]]:
    rng = random.Random(seed)
    inner = MemoryDriver()
    writer = SecretStore(inner)
    names = [f"app/secret-{i}" for i in range(secrets_n)]
    for name in names:
        writer.put(name, "v0")
    clock = Clock()
    channel = f"fleet-{uuid.uuid4().hex[:8]}"
    options = StoreOptions(changes=f"memory:{channel}") if mode == "push" else StoreOptions(cache=CachePolicy(ttl=300))
    drivers = [HearingDriver(inner) for _ in range(stores_n)]
    stores = [SecretStore(d, options=options, clock=clock) for d in drivers]
    for store in stores:  # warm-up: every store reads every secret once (both modes pay it once)
        for name in names:
            store.get(name)
    for store in stores:
        if store._changes is not None:
            store._changes.ready.wait(10)
            for name in names:  # what was loaded before the source listened was dropped once
                store.get(name)
    for d in drivers:
        d.calls.clear()
    plan = sorted((rng.uniform(1, HOUR - 300), rng.choice(names)) for _ in range(changes_n))
    staleness: list[float] = []
    pending: list[tuple[float, str, str, SecretStore]] = []  # polling: (changed at, name, value, store)
    version = 0
    phases = [(i * 7) % READ_EVERY for i in range(stores_n)]
    for tick in range(1, HOUR + 1):
        clock.now = float(tick)
        while plan and plan[0][0] <= tick:
            _, name = plan.pop(0)
            version += 1
            value = f"v{version}"
            writer.put(name, value)
            if mode == "push":
                start = time.perf_counter()
                topic(channel).publish(ChangeEvent(name, "changed", event_id=str(version)))
                waiting = list(stores)
                while waiting:
                    still = []
                    for store in waiting:
                        if store.get(name).text == value:
                            staleness.append(time.perf_counter() - start)
                        else:
                            still.append(store)
                    waiting = still
                    if waiting:
                        time.sleep(0.0005)
            else:
                pending += [(float(tick), name, value, store) for store in stores]
        if pending:
            still_pending = []
            for changed_at, name, value, store in pending:
                if store.get(name).text == value:
                    staleness.append(clock.now - changed_at)
                else:
                    still_pending.append((changed_at, name, value, store))
            pending = still_pending
        for i, store in enumerate(stores):  # the application's own reads
            if (tick + phases[i]) % READ_EVERY == 0:
                for name in names:
                    store.get(name)
    time.sleep(0.2)  # background refreshes started in the last ticks
    calls = sum(d.total for d in drivers)
    for store in stores:
        store.close()
    return calls, staleness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--secrets", type=int, default=50)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    results = {}
    for mode in ("polling", "push"):
        started = time.perf_counter()
        results[mode] = run(mode, args.stores, args.secrets, args.changes, args.seed)
        print(f"{mode}: simulated in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    print(f"fleet: {args.stores} stores x {args.secrets} secrets, {args.changes} changes in one simulated hour")
    print("| mode | backend calls / hour | staleness p50 | p99 | max |")
    print("|---|---:|---:|---:|---:|")
    for mode, (calls, stale) in results.items():
        print(f"| {mode} | {calls:,} | {percentile(stale, 0.5):.3f} s | {percentile(stale, 0.99):.3f} s "
              f"| {max(stale):.3f} s |")
    (poll_calls, _), (push_calls, push_stale) = results["polling"], results["push"]
    ratio = poll_calls / max(push_calls, 1)
    p99 = percentile(push_stale, 0.99)
    print(f"push makes {ratio:.1f}x fewer backend calls (target >= 10x): {'PASS' if ratio >= 10 else 'FAIL'}")
    print(f"push p99 staleness {p99:.3f} s (target < 5 s): {'PASS' if p99 < 5 else 'FAIL'}")


if __name__ == "__main__":
    main()
