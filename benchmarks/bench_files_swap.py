"""files:// under kubelet updates: readers racing swaps, and how soon ``watch`` reports a swap.

1. Race: reader threads read a mounted Secret volume (the whole volume as fields, one key, the
   listing) while another process runs ``--swaps`` kubelet AtomicWriter updates, each after the
   readers made ``--reads-between`` more reads. Every read must be one generation: the figures
   are reads, swaps, inconsistent reads, errors and regressions (a reader seeing an older
   generation after a newer one); all but reads and swaps must be 0.
2. Change-detection latency: ``--samples`` swaps, each timed from just before the ``..data``
   rename to the ``watch`` callback, with inotify and with polling only, at ``--poll-interval``.

    python3 benchmarks/bench_files_swap.py [--swaps 50] [--reads-between 100] [--samples 20] [--poll-interval 1.0]

Needs nothing beyond secretkit; Linux for the inotify figures (elsewhere they fall back to polling).
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure this checkout, installed or not

import secretkit  # noqa: E402
from secretkit.secret import Secret  # noqa: E402
from secretkit.drivers.files.kubelet import (  # noqa: E402
    KubeletVolume,
    generation_of,
    generation_payload,
    swap_while_reading,
)


def race(swaps: int, reads_between: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        KubeletVolume(root / "app", generation_payload(0))
        store = secretkit.open(f"files://{root}")
        context = multiprocessing.get_context("fork")
        reads = context.Value("q", 0, lock=False)
        counts = {"inconsistent": 0, "errors": 0, "regressions": 0}
        done = threading.Event()

        def reader(read: Callable[[], int]) -> None:
            last = 0
            while not done.is_set():
                try:
                    gen = read()
                except AssertionError:
                    counts["inconsistent"] += 1
                    gen = last
                except Exception:  # noqa: BLE001 - counted
                    counts["errors"] += 1
                    gen = last
                reads.value += 1
                if gen < last:
                    counts["regressions"] += 1
                last = max(last, gen)

        def listing() -> int:
            keys = {n.split("/")[1] for n in store.list("app/")}
            if keys not in ({"user", "password", "big"}, {"user", "password", "big", "extra"}):
                raise AssertionError(sorted(keys))
            return 0

        threads = [
            threading.Thread(target=reader, args=(lambda: generation_of(store.get("app").fields),)),
            threading.Thread(target=reader, args=(lambda: int(store.get("app/password").text.split("-")[1]),)),
            threading.Thread(target=reader, args=(listing,)),
        ]
        writer = context.Process(target=swap_while_reading, args=(root / "app", swaps, reads_between, reads))
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        writer.start()
        writer.join()
        done.set()
        for thread in threads:
            thread.join()
        return {"reads": reads.value, "swaps": swaps, "seconds": time.perf_counter() - start, **counts}


def latency(samples: int, poll_interval: float, inotify: bool) -> list[float]:
    """Seconds from each ``..data`` rename to the watch callback that reports it."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        volume = KubeletVolume(root / "app", generation_payload(0))
        store = secretkit.open(f"files://{root}?poll_interval={poll_interval}&inotify={str(inotify).lower()}")
        swapped_at: dict[int, float] = {}
        reported_at: dict[int, float] = {}
        reported = threading.Event()

        def callback(secret: Secret) -> None:
            reported_at[generation_of(secret.fields)] = time.monotonic()
            reported.set()

        with store.watch("app", callback):
            for gen in range(1, samples + 1):
                reported.clear()
                time.sleep(poll_interval * (gen % 7) / 7)  # land swaps at different points of the poll cycle

                def stamp(step: str, gen: int = gen) -> None:
                    # the step just before the rename: the watcher may report the rename before
                    # this thread runs again, so a stamp after it could come out late
                    if step == "data-link-created":
                        swapped_at[gen] = time.monotonic()

                volume.update(generation_payload(gen), between=stamp)
                if not reported.wait(poll_interval * 5 + 5):
                    raise SystemExit(f"swap {gen} was not reported")
        return [reported_at[gen] - swapped_at[gen] for gen in range(1, samples + 1) if gen in reported_at]


def summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return (f"n={len(ms)} min {ms[0]:.1f} ms, median {statistics.median(ms):.1f} ms, "
            f"p95 {p95:.1f} ms, max {ms[-1]:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swaps", type=int, default=50)
    parser.add_argument("--reads-between", type=int, default=100)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    args = parser.parse_args()
    system = f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    print(f"# files:// under kubelet updates ({system})")
    result = race(args.swaps, args.reads_between)
    ok = result["inconsistent"] == result["errors"] == result["regressions"] == 0
    print(f"race: {result['reads']} reads during {result['swaps']} swaps in {result['seconds']:.2f} s; "
          f"inconsistent {result['inconsistent']}, errors {result['errors']}, regressions {result['regressions']}"
          f" -> {'PASS' if ok else 'FAIL'}")
    for inotify in (True, False):
        values = latency(args.samples, args.poll_interval, inotify)
        within = all(v <= args.poll_interval + 0.25 for v in values)
        print(f"watch latency, {'inotify + polling' if inotify else 'polling only'}, poll_interval "
              f"{args.poll_interval} s: {summary(values)} -> {'PASS' if within else 'FAIL'} (within the interval)")
        ok = ok and within
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
