"""Deadlines on azure-kv:// (issue 24), as tests/reliability/test_deadlines.py checks the others.

Key Vault is HTTPS only, so the plain-HTTP slow drip of the other backends cannot stand in for
it: a slow vault is the Key Vault double holding its answers (``delay_next``), and a vault that
never answers is a ``SlowDrip`` in ``silent`` mode (the TLS handshake never completes). Either
way ``get``, ``put`` and ``list`` must end within the store's deadline, reads retried within it
and the put, which is not idempotent on Key Vault, never sent twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import secretkit
from secretkit import AuditEvent, CachePolicy, RetryPolicy, SecretStore
from secretkit.errors import DeadlineExceededError, SecretError, UnavailableError
from secretkit.testing.slowdrip import SlowDrip
from tests.reliability.test_deadlines import NO_CACHE, QUICK, SLICE, _timed, _unique

def _open(double: Any, port: int, **options: Any) -> SecretStore:
    return secretkit.open(f"azure-kv://127.0.0.1:{port}", ca_bundle=str(double.ca_path),
                          credential=double.credential(), timeout=2, retry=QUICK, cache=NO_CACHE, **options)


@pytest.mark.parametrize("vault", ["slow", "silent"])
def test_get_put_and_list_end_within_the_deadline(azure_kv: Any, vault: str) -> None:
    silent = SlowDrip(mode="silent").start() if vault == "silent" else None
    try:
        port = int(silent.address.rsplit(":", 1)[1]) if silent is not None else azure_kv.port
        store = _open(azure_kv, port)
        events: list[AuditEvent] = []
        store.add_audit_hook(events.append)
        if silent is None:
            store.put("warm", "v")  # the bearer challenge is answered before the vault turns slow
            azure_kv.delay_next(3, count=30)
        calls: dict[str, Callable[[], Any]] = {
            "get": lambda: store.get(_unique("slow")),
            "put": lambda: store.put(_unique("slow"), "value"),
            "list": lambda: list(store.list("slow")),
        }
        with ThreadPoolExecutor(len(calls)) as pool:
            outcomes = {key: f.result() for key, f in {k: pool.submit(_timed, fn) for k, fn in calls.items()}.items()}
        for operation, (elapsed, error) in outcomes.items():
            assert isinstance(error, (DeadlineExceededError, UnavailableError)), f"{vault} {operation}: {error!r}"
            assert elapsed < 1.5 + SLICE, f"{vault} {operation}: {elapsed:.2f} s"
            last = [e for e in events if e.operation == operation][-1]
            assert last.outcome == error.code.value
        assert [e for e in events if e.operation == "put"][-1].attempts == 1  # a put that may have landed: once
        for operation in ("get", "list"):
            assert [e for e in events if e.operation == operation][-1].attempts >= 2
        store.close()
    finally:
        if silent is not None:
            silent.stop()


def test_the_async_facade_ends_within_the_deadline_too(azure_kv: Any) -> None:
    async def main() -> tuple[float, BaseException | None]:
        async with secretkit.open_async(
            f"azure-kv://127.0.0.1:{azure_kv.port}", ca_bundle=str(azure_kv.ca_path),
            credential=azure_kv.credential(), timeout=2, retry=QUICK, cache=NO_CACHE,
        ) as store:
            await store.put("warm", "v")
            azure_kv.delay_next(3, count=10)
            began = time.monotonic()
            try:
                await store.get(_unique("slow"))
            except SecretError as exc:
                return time.monotonic() - began, exc
            return time.monotonic() - began, None

    elapsed, error = asyncio.run(main())
    assert isinstance(error, (DeadlineExceededError, UnavailableError)), repr(error)
    assert elapsed < 1.5 + SLICE
