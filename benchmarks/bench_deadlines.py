"""How long one call runs against a server that never finishes answering, and against a dead port.

    python3 benchmarks/bench_deadlines.py [--cap 60] [--runs 5] [--secretkit PATH] [--markdown FILE]

1. **Slow drip**: one ``get`` per backend (vault, k8s, aws-sm and gcp-sm over REST through their
   SDKs; gcp-sm over gRPC) against ``secretkit.testing.slowdrip.SlowDrip``, which answers one
   byte every 1.5 s and never completes. Each SDK's request timeout is 2 s and the store's
   ``RetryPolicy(deadline=5, attempt_timeout=2)`` (``attempt_timeout`` only where the
   secretkit measured has it). A call still running after ``--cap`` seconds is killed and
   reported as ``> cap``.
2. **Dead port**: one ``get`` per backend against a port nothing listens on (connection refused),
   ``RetryPolicy(max_attempts=10, initial_backoff=0.5, max_backoff=4, deadline=5)``: the
   backoff must not sleep past the deadline. ``--runs`` calls each; min–max reported.

Every call runs in its own process (so one that never ends can be killed), all of them at once.
``--secretkit PATH`` measures another checkout (e.g. the base commit exported with
``git archive``); the servers always come from this checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from secretkit.testing.slowdrip import SlowDrip, dead_port

BACKENDS = ["vault", "k8s", "aws-sm", "gcp-sm (REST)", "gcp-sm (gRPC)"]

#: Run in a child process: open the store, time one get, print the outcome as JSON.
CHILD = r"""
import json, os, sys, time
import secretkit
from secretkit import RetryPolicy

backend, target, policy = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if "attempt_timeout" not in RetryPolicy.model_fields:
    policy.pop("attempt_timeout", None)
common = {"retry": RetryPolicy(**policy), "cache": {"enabled": False}}
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing")
host, port = target.rsplit(":", 1)
url = f"http://{target}"
if backend == "vault":
    store = secretkit.open(f"vault+http://{target}/secret", token="dev", kv_version="2", timeout=2, **common)
elif backend == "k8s":
    store = secretkit.open("k8s://default", host=url, token="dev", timeout=2, **common)
elif backend == "aws-sm":
    store = secretkit.open(f"aws-sm://?region=us-east-1&endpoint_url={url}", connect_timeout=2, read_timeout=2,
                           **common)
elif backend == "gcp-sm (REST)":
    store = secretkit.open("gcp-sm://bench", endpoint=url, insecure=True, transport="rest", timeout=2, **common)
else:
    store = secretkit.open("gcp-sm://bench", endpoint=target, insecure=True, timeout=2, **common)
began = time.monotonic()
try:
    store.get("bench/slow")
    outcome = "answered"
except Exception as exc:
    outcome = type(exc).__name__
print(json.dumps({"seconds": time.monotonic() - began, "outcome": outcome}), flush=True)
os._exit(0)  # an abandoned worker may still hang on the server
"""

DRIP_POLICY = {"deadline": 5, "attempt_timeout": 2}
DEAD_POLICY = {"max_attempts": 10, "initial_backoff": 0.5, "max_backoff": 4, "deadline": 5}


def run_one(backend: str, target: str, policy: dict[str, float], cap: float, secretkit_path: Path) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(secretkit_path)}
    env = {k: v for k, v in env.items() if not k.startswith(("SECRETKIT_", "VAULT_", "KUBECONFIG"))}
    began = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, backend, target, json.dumps(policy)], env=env,
                              capture_output=True, text=True, timeout=cap, check=False)
    except subprocess.TimeoutExpired:
        return time.monotonic() - began, "still running (killed)"
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return float("nan"), f"child failed: {done.stderr.strip()[-300:]}"
    return float(result["seconds"]), str(result["outcome"])


def measure(cap: float, runs: int, secretkit_path: Path) -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {b: {} for b in BACKENDS}
    with SlowDrip(mode="http") as http, SlowDrip(mode="http2") as h2, ThreadPoolExecutor(32) as pool:
        drips = {b: pool.submit(run_one, b, h2.address if "gRPC" in b else http.address, DRIP_POLICY, cap,
                                secretkit_path) for b in BACKENDS}
        deads = {b: [pool.submit(run_one, b, f"127.0.0.1:{dead_port()}", DEAD_POLICY, cap, secretkit_path)
                     for _ in range(runs)] for b in BACKENDS}
        for backend in BACKENDS:
            seconds, outcome = drips[backend].result()
            shown = f"> {cap:.0f} s ({outcome})" if outcome.startswith("still") else f"{seconds:.2f} s ({outcome})"
            rows[backend]["slow drip"] = shown
            results = [f.result() for f in deads[backend]]
            times = [s for s, _ in results]
            outcomes = sorted({o for _, o in results})
            rows[backend]["dead port"] = f"{min(times):.2f}–{max(times):.2f} s ({', '.join(outcomes)})"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=60.0, help="seconds before a call is killed")
    parser.add_argument("--runs", type=int, default=5, help="dead-port calls per backend")
    parser.add_argument("--secretkit", type=Path, default=ROOT, help="checkout whose secretkit is measured")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    began = time.monotonic()
    rows = measure(args.cap, args.runs, args.secretkit.resolve())
    lines = ["| backend | slow drip: one get (deadline 5 s, 2 s timeouts) | dead port: one get (deadline 5 s) |",
             "|---|---|---|"]
    lines += [f"| {b} | {rows[b]['slow drip']} | {rows[b]['dead port']} |" for b in BACKENDS]
    table = "\n".join(lines)
    print(table)
    print(f"\n(measured {args.secretkit.resolve()} in {time.monotonic() - began:.0f} s)")
    if args.markdown:
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
