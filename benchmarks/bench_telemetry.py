"""What telemetry costs: the cache hit with telemetry off and on, measured in one run.

    python3 benchmarks/bench_telemetry.py [--rounds 7]

A ``memory://`` store with the cache on (the hit path is the same code on every backend), read
warm in a bare loop (``bench_cache.ns_per_call``), rounds alternating between a store without
telemetry and one instrumented with the OpenTelemetry SDK whose exporters drop everything (so
the SDK's own cost is in, and no I/O). Also a miss (one backend call: a span and a histogram
record per attempt) both ways, and ``python -X importtime -c "import secretkit"``. Target: a hit
with telemetry on within 2× of off. Needs opentelemetry-sdk.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure this checkout, installed or not
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_cache import ns_per_call  # noqa: E402  (the same loop as the cache benchmark)


def sdk_providers() -> tuple[Any, Any]:
    """An SDK meter and tracer provider whose exporters drop everything."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class DropMetrics(MetricExporter):
        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            pass

    class DropSpans(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    meters = MeterProvider(metric_readers=[PeriodicExportingMetricReader(DropMetrics(), export_interval_millis=1000)])
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(DropSpans()))
    return meters, tracers


def stores() -> dict[str, Any]:
    import secretkit
    from secretkit import telemetry

    meters, tracers = sdk_providers()
    made = {"off": secretkit.open("memory://", cache=True), "on": secretkit.open("memory://", cache=True),
            "on, a span per hit": secretkit.open("memory://", cache=True)}
    telemetry.instrument(made["on"], meter_provider=meters, tracer_provider=tracers)
    telemetry.instrument(made["on, a span per hit"], meter_provider=meters, tracer_provider=tracers, cache_spans=True)
    for store in made.values():
        store.put("db", "x" * 1024)
        store.get("db")
    return made


def miss_ns(store: Any, count: int = 2000) -> float:
    """One backend read (the cache invalidated before each)."""
    start = time.perf_counter_ns()
    for _ in range(count):
        store.invalidate("db")
        store.get("db")
    return (time.perf_counter_ns() - start) / count


def import_time() -> tuple[float, float]:
    """``-X importtime``'s cumulative µs for ``secretkit`` (ms), and the wall time net of bare python (ms)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import secretkit"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    cumulative = [int(m.group(1)) for m in re.finditer(r"\|\s*(\d+) \| secretkit$", done.stderr, flags=re.MULTILINE)]

    def wall(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        return time.perf_counter() - start

    wall("import secretkit")  # warm the file system cache
    net = statistics.median(wall("import secretkit") for _ in range(5)) - statistics.median(wall("pass") for _ in range(5))
    return (cumulative[0] / 1000 if cumulative else float("nan")), net * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    made = stores()
    hits: dict[str, list[float]] = {label: [] for label in made}
    misses: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.rounds):  # alternate, so a slow moment of the machine hits every contender
        for label, store in made.items():
            hits[label].append(ns_per_call(store.get, "db"))
        for label in misses:
            misses[label].append(miss_ns(made[label]))
    hit = {label: statistics.median(values) for label, values in hits.items()}
    miss = {label: statistics.median(values) for label, values in misses.items()}
    ratio = hit["on"] / hit["off"]
    imported, net = import_time()
    ok = ratio <= 2.0
    print("| measure | telemetry off | telemetry on | ratio | target | result |")
    print("|---|---|---|---|---|---|")
    print(f"| cache hit `store.get(name)`, ns/call | {hit['off']:.0f} | {hit['on']:.0f} | {ratio:.2f}× | ≤ 2× | "
          f"{'PASS' if ok else 'FAIL'} |")
    print(f"| cache hit with `telemetry_cache_spans`, ns/call | {hit['off']:.0f} | {hit['on, a span per hit']:.0f} | "
          f"{hit['on, a span per hit'] / hit['off']:.1f}× | (reported) | — |")
    print(f"| miss (one memory:// backend read), ns/call | {miss['off']:.0f} | {miss['on']:.0f} | "
          f"{miss['on'] / miss['off']:.2f}× | (reported) | — |")
    print(f"\n`import secretkit`: {imported:.1f} ms cumulative (-X importtime), {net:.1f} ms wall net of bare python; "
          f"{args.rounds} rounds, medians; Python {platform.python_version()}, {os.cpu_count()} cores")
    for store in made.values():
        store.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
