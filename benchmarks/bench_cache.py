"""Benchmark secretkit's cache against Powertools' SecretsProvider and aws-secretsmanager-caching.

One process, moto in-process (``moto.mock_aws``), the same secrets for every contender, the
median of ``--rounds`` rounds. Every target is a ratio or count measured in the same run, so
the machine's speed cancels out; PASS/FAIL is printed as measured.

    python3 benchmarks/bench_cache.py [--rounds 5] [--markdown docs/performance.md]

Needs the ``bench`` extra's peers: moto, aws-secretsmanager-caching, aws-lambda-powertools>=3.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure this checkout, installed or not

REGION = "us-east-1"
NAME = "bench/db-password"
VALUE = "x" * 1024  # a 1 KB secret
LATENCY = 0.020  # seconds added to every Secrets Manager call where a backend latency is wanted


def fake_aws_env() -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
    }.items():
        os.environ[key] = value
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        os.environ.pop(key, None)


class Backend:
    """A boto3 client on moto that counts calls by operation and may add latency to each."""

    def __init__(self, latency: float = 0.0, endpoint_url: str | None = None) -> None:
        import boto3

        self.client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=endpoint_url)
        self.latency = latency
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()
        self.client.meta.events.register("before-call.secrets-manager", self._before)

    def _before(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] = self.calls.get(model.name, 0) + 1
        if self.latency:
            time.sleep(self.latency)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def reads(self) -> int:
        return sum(self.calls.get(op, 0) for op in ("GetSecretValue", "BatchGetSecretValue", "DescribeSecret"))


def secretkit_store(backend: Backend, **cache: Any) -> Any:
    import secretkit

    options: dict[str, Any] = {"retry": secretkit.RetryPolicy.none()}
    if cache:
        options["cache"] = secretkit.CachePolicy(**cache)
    return secretkit.open(f"aws-sm://?region={REGION}", client=backend.client, **options)


def powertools_provider(backend: Backend) -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=backend.client)


def secret_cache(backend: Backend, refresh: float = 3600.0) -> Any:
    from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

    return SecretCache(config=SecretCacheConfig(secret_refresh_interval=refresh), client=backend.client)


# -- measures ----------------------------------------------------------------------------------


def ns_per_call(get: Callable[[str], Any], name: str, seconds: float = 0.15) -> float:
    """Warm ``get(name)`` in a bare loop: the same loop body for every contender."""
    get(name)
    n = 1000
    while True:  # calibrate to about ``seconds``
        start = time.perf_counter()
        for _ in range(n):
            get(name)
        elapsed = time.perf_counter() - start
        if elapsed > seconds / 4:
            break
        n *= 4
    n = max(1000, int(n * seconds / elapsed))
    start = time.perf_counter_ns()
    for _ in range(n):
        get(name)
    return (time.perf_counter_ns() - start) / n


def hit_latency() -> dict[str, float]:
    from aws_lambda_powertools.utilities import parameters

    backend = Backend()
    store = secretkit_store(backend)
    provider = powertools_provider(backend)
    cache = secret_cache(backend)
    plain = {NAME: VALUE}
    out = {
        "dict.get": ns_per_call(plain.get, NAME),
        "secretkit store.get": ns_per_call(store.get, NAME),
        "Powertools SecretsProvider().get": ns_per_call(provider.get, NAME),
        "Powertools parameters.get_secret": ns_per_call(parameters.get_secret, NAME),
        "SecretCache.get_secret_string": ns_per_call(cache.get_secret_string, NAME),
    }
    store.close()
    return out


def thread_scaling(names: list[str], threads: int = 8, seconds: float = 0.4) -> float:
    """ops/s of ``threads`` readers over warm keys ÷ ops/s of one reader."""
    backend = Backend()
    store = secretkit_store(backend)
    for n in names:
        store.get(n)

    def run(count: int) -> float:
        done = [0] * count
        stop = threading.Event()
        barrier = threading.Barrier(count + 1)

        def reader(i: int) -> None:
            get = store.get
            barrier.wait()
            ops = 0
            while not stop.is_set():
                for n in names:
                    get(n)
                ops += len(names)
            done[i] = ops

        workers = [threading.Thread(target=reader, args=(i,)) for i in range(count)]
        for w in workers:
            w.start()
        barrier.wait()
        start = time.perf_counter()
        time.sleep(seconds)
        stop.set()
        for w in workers:
            w.join()
        return sum(done) / (time.perf_counter() - start)

    one = run(1)
    many = run(threads)
    store.close()
    return many / one


def thundering_herd(make: Callable[[Backend], Callable[[str], Any]], threads: int = 32) -> int:
    """Backend reads when ``threads`` readers miss the same secret at once (20 ms backend)."""
    backend = Backend(latency=LATENCY)
    get = make(backend)
    barrier = threading.Barrier(threads)

    def reader() -> None:
        barrier.wait()
        get(NAME)

    workers = [threading.Thread(target=reader) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return backend.reads()


def expiry_under_readers(
    contender: str, ttl: int = 1, seconds: float = 2.2, readers: int = 4
) -> tuple[float, float, float]:
    """Worst single read (ms) of hot readers while their entry reaches its refresh/expiry
    point several times (20 ms backend), and in the same threads the worst bare dict.get (the
    floor this process's GIL scheduling imposes on any read)."""
    backend = Backend(latency=LATENCY)
    closer: Callable[[], None] = lambda: None
    if contender == "secretkit":
        store = secretkit_store(backend, ttl=ttl, jitter=0.0)
        get: Callable[[str], Any] = store.get
        closer = store.close
    else:
        get = secret_cache(backend, refresh=ttl).get_secret_string
    get(NAME)
    backend.reset()
    plain = {NAME: VALUE}
    worst = [0.0] * readers
    floor = [0.0] * readers
    stop = threading.Event()

    def reader(i: int) -> None:
        clock = time.perf_counter
        lookup = plain.get
        w = f = 0.0
        while not stop.is_set():
            t0 = clock()
            get(NAME)
            t1 = clock()
            lookup(NAME)
            t2 = clock()
            w = max(w, t1 - t0)
            f = max(f, t2 - t1)
            time.sleep(0.0002)  # a request handler does other work between secret reads
        worst[i], floor[i] = w, f

    workers = [threading.Thread(target=reader, args=(i,)) for i in range(readers)]
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    closer()
    return max(worst) * 1000, max(floor) * 1000, backend.reads()


def batch_warm(names: list[str]) -> tuple[int, int]:
    """Backend calls to warm 100 secrets: secretkit get_many, and a loop of Powertools gets."""
    backend = Backend()
    store = secretkit_store(backend)
    store.get_many(names)
    ours = backend.calls.get("BatchGetSecretValue", 0) + backend.calls.get("GetSecretValue", 0)
    store.close()
    backend = Backend()
    provider = powertools_provider(backend)
    for n in names:
        provider.get(n)
    return ours, backend.reads()


def memory_per_entry(names: list[str]) -> dict[str, float]:
    """Bytes retained per cached 1 KB secret (tracemalloc), beside the peers.

    Marginal cost: each contender is made and warmed with a few names first (its fixed cost:
    client models, a cache's worker thread), then the memory retained by caching the rest is
    divided by their number. The same for every contender.
    """
    warm, measured = names[:5], names[5:]
    with moto_process() as endpoint:  # the server's own allocations stay out of the traced process
        seeding = Backend(endpoint_url=endpoint)
        for n in names:
            seeding.client.create_secret(Name=n, SecretString=VALUE)
        return _memory_per_entry(Backend(endpoint_url=endpoint), warm, measured)


def _memory_per_entry(backend: Backend, warm: list[str], measured: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}

    def measure(label: str, make: Callable[[], Any], fill: Callable[[Any, str], Any]) -> None:
        holder = make()
        for n in warm:
            fill(holder, n)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for n in measured:
            fill(holder, n)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        out[label] = (after - before) / len(measured)
        del holder

    plain: dict[str, Any] = {}
    for label, make, fill in (
        ("dict of values", lambda: plain,
         lambda d, n: d.__setitem__(n, backend.client.get_secret_value(SecretId=n)["SecretString"])),
        ("secretkit", lambda: secretkit_store(backend), lambda store, n: store.get(n)),
        ("Powertools SecretsProvider", lambda: powertools_provider(backend), lambda p, n: p.get(n)),
        ("SecretCache", lambda: secret_cache(backend), lambda c, n: c.get_secret_string(n)),
    ):
        measure(label, make, fill)
    return out


def import_ms(statement: str) -> float:
    """Wall time of ``python -c statement`` minus bare ``python -c pass`` (ms)."""

    def run(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        return time.perf_counter() - start

    run(statement)  # warm the file system cache
    return (statistics.median(run(statement) for _ in range(3)) - statistics.median(run("pass") for _ in range(3))) * 1000


def cloud_sdks_after_import() -> list[str]:
    code = (
        "import sys, secretkit; print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'boto3', 'botocore', 'hvac', 'google', 'kubernetes'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    return eval(out.stdout)  # our own subprocess printing a list literal


# -- the run -----------------------------------------------------------------------------------


@contextmanager
def moto_process() -> Iterator[str]:
    """moto's server in a process of its own, on a free loopback port; yields its endpoint."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextmanager
def mocked() -> Iterator[None]:
    import moto

    fake_aws_env()
    with moto.mock_aws():
        yield


def median_of(rounds: int, fn: Callable[[], Any]) -> Any:
    results = [fn() for _ in range(rounds)]
    if isinstance(results[0], dict):
        return {k: statistics.median(r[k] for r in results) for k in results[0]}
    if isinstance(results[0], tuple):
        return tuple(statistics.median(r[i] for r in results) for i in range(len(results[0])))
    return statistics.median(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    rounds = args.rounds
    began = time.perf_counter()

    with mocked():
        import boto3

        setup = boto3.client("secretsmanager", region_name=REGION)
        setup.create_secret(Name=NAME, SecretString=VALUE)
        keys = [f"bench/key-{i:03d}" for i in range(100)]
        for k in keys:
            setup.create_secret(Name=k, SecretString=VALUE)

        hits = median_of(rounds, hit_latency)
        scaling = median_of(rounds, lambda: thread_scaling(keys))
        herd = {
            "secretkit": median_of(rounds, lambda: thundering_herd(lambda b: secretkit_store(b).get)),
            "Powertools": median_of(rounds, lambda: thundering_herd(lambda b: powertools_provider(b).get)),
            "SecretCache": median_of(rounds, lambda: thundering_herd(lambda b: secret_cache(b).get_secret_string)),
        }
        expiry = median_of(rounds, lambda: expiry_under_readers("secretkit"))
        expiry_peer = median_of(rounds, lambda: expiry_under_readers("SecretCache"))
        batch = batch_warm(keys)
    memory = memory_per_entry([f"bench/mem-{i:03d}" for i in range(305)])
    imports = {
        "secretkit": median_of(rounds, lambda: import_ms("import secretkit")),
        "boto3": median_of(rounds, lambda: import_ms("import boto3")),
        "Powertools parameters": median_of(rounds, lambda: import_ms("from aws_lambda_powertools.utilities import parameters")),
    }
    sdks = cloud_sdks_after_import()

    ours = hits["secretkit store.get"]
    vs_powertools = hits["Powertools SecretsProvider().get"] / ours
    vs_dict = ours / hits["dict.get"]
    rows = [
        ("cache hit `store.get(name)` warm, ns/call",
         f"{ours:.0f} ns; {vs_powertools:.1f}× faster than Powertools provider, {vs_dict:.1f}× dict.get",
         "; ".join(f"{k} {v:.0f}" for k, v in hits.items() if k != "secretkit store.get"),
         "≥4× faster than Powertools' provider, ≤25× dict.get", vs_powertools >= 4 and vs_dict <= 25),
        ("8 threads reading 100 warm keys: ops/s ÷ 1-thread ops/s", f"{scaling:.2f}", "", "≥0.9", scaling >= 0.9),
        ("32 threads miss the same secret at once (20 ms backend): backend calls", f"{herd['secretkit']:.0f}",
         f"Powertools {herd['Powertools']:.0f}; SecretCache {herd['SecretCache']:.0f}", "exactly 1",
         herd["secretkit"] == 1),
        ("hot readers while their entry refreshes/expires (20 ms backend): worst read",
         f"{expiry[0]:.3f} ms (bare dict.get in the same threads: {expiry[1]:.3f} ms); "
         f"{expiry[2]:.0f} background refreshes",
         f"SecretCache {expiry_peer[0]:.2f} ms (dict.get floor {expiry_peer[1]:.3f} ms); {expiry_peer[2]:.0f} refreshes",
         "< 1 ms", expiry[0] < 1),
        ("warm 100 secrets via get_many: backend calls", f"{batch[0]}", f"Powertools loop {batch[1]}",
         "5 calls (BatchGetSecretValue, 20/call)", batch[0] == 5),
        ("`import secretkit`, net of bare python", f"{imports['secretkit']:.1f} ms; cloud SDKs imported: {sdks or 'none'}",
         f"boto3 {imports['boto3']:.0f} ms; Powertools parameters {imports['Powertools parameters']:.0f} ms",
         "≤ 40 ms, no cloud SDK imported", imports["secretkit"] <= 40 and not sdks),
        ("memory per cached 1 KB secret (tracemalloc)", f"{memory['secretkit']:.0f} B",
         "; ".join(f"{k} {v:.0f} B" for k, v in memory.items() if k != "secretkit"), "(reported)", None),
    ]
    elapsed = time.perf_counter() - began
    table = render(rows)
    print(table)
    print(f"\n{rounds} rounds, medians; {elapsed:.0f} s; Python {platform.python_version()}, {os.cpu_count()} cores")
    if args.markdown:
        write_markdown(args.markdown, table, rounds, elapsed)
    return 0 if all(ok is not False for *_, ok in rows) else 1


def render(rows: list[tuple[str, str, str, str, bool | None]]) -> str:
    lines = ["| measure | secretkit | peers | target | result |", "|---|---|---|---|---|"]
    for measure, ours, peers, target, ok in rows:
        verdict = "—" if ok is None else ("PASS" if ok else "FAIL")
        lines.append(f"| {measure} | {ours} | {peers} | {target} | {verdict} |")
    return "\n".join(lines)


def write_markdown(path: Path, table: str, rounds: int, elapsed: float) -> None:
    import importlib.metadata as md

    versions = ", ".join(
        f"{p} {md.version(p)}" for p in ("boto3", "moto", "aws-lambda-powertools", "aws-secretsmanager-caching")
    )
    text = f"""# Performance

Produced by `python3 benchmarks/bench_cache.py --rounds {rounds} --markdown {path.as_posix()}`: one
process, moto in-process (`moto.mock_aws`), the same 1 KB secret for every contender, the median of
{rounds} rounds ({elapsed:.0f} s in all). Every target is a ratio or a count measured in the same run.

Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other work), Linux, Python
{platform.python_version()}; {versions}.

{table}

How each row is measured (see the script):

- **Hit**: a bare `for` loop calling `get(name)` on a warm cache; the same loop body for every
  contender, `dict.get` included.
- **Threads**: 8 threads looping over 100 warm keys for 0.4 s vs 1 thread; under the GIL the
  best possible ratio is about 1.0, so this checks that hits take no lock and do not contend.
- **Thundering herd**: 32 threads released by a barrier onto a cold cache; every Secrets Manager
  call sleeps 20 ms (a botocore `before-call` hook, which also counts calls).
- **Expiry under readers**: 4 reader threads read every 0.2 ms for 2.2 s while a 1 s TTL entry (SecretCache's smallest)
  reaches its refresh point about three times (20 ms backend). Each iteration times one
  `get` and, separately, one bare `dict.get` in the same thread; the dict.get maximum is the
  floor that GIL hand-offs, garbage collection and the other work on the machine impose on any
  read in this process. secretkit readers never wait for the refresh (it runs on a background
  thread started earlier, handed over through a queue, at 0.8 of the TTL, so a hot entry never
  expires); SecretCache refreshes inside the reader's call.
- **Import**: wall time of `python -c "import secretkit"` minus `python -c pass`, subprocesses.
- **Memory**: the marginal cost of one more cached 1 KB secret: each contender is made and warmed
  with 5 secrets, then tracemalloc measures what caching 300 more retains, divided by 300. moto
  runs as a server in a process of its own, so its allocations are not counted; botocore's and
  dateutil's own per-response caches are (about 200 B per secret for every contender, as the
  dict-of-values row shows). secretkit keeps the value as read (a `Secret` holding the
  `SecretString`, its version id, a creation timestamp, its refresh time) and derives `.fields`
  and the other views on demand.
"""
    # sections other benchmarks wrote below this table (bench_telemetry.py's) stay
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    kept = old[old.index("\n## "):] if "\n## " in old else ""
    path.write_text(text.rstrip("\n") + "\n" + kept, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
