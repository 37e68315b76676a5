"""Retry under faults on azure-kv:// (issue 24), as tests/reliability/test_faults.py runs the others.

The Key Vault double terminates TLS, so a ``FaultProxy`` in front of it sees only ciphertext:
it runs per connection (``http=False``) and plays the vault that is down, while per-request
faults (503, 500, 429 with ``Retry-After``, 403) are answered by the double itself
(``fail_next``, ``throttle``). The driver turns azure-core's retries off, so each injected
fault must cost exactly one attempt of the store's own retry.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import secretkit
from secretkit import AuditEvent, CachePolicy, RetryPolicy, SecretStore
from secretkit.testing.faultproxy import FaultProxy

FLAKY = RetryPolicy(max_attempts=8, initial_backoff=0.005, max_backoff=0.02, deadline=5)
DOWN = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05, deadline=2)
TWICE = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01, deadline=2)
NO_CACHE = CachePolicy.off()


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def proxied(azure_kv: Any) -> Iterator[tuple[Any, FaultProxy]]:
    with FaultProxy(("127.0.0.1", azure_kv.port), http=False, seed=7) as proxy:
        yield azure_kv, proxy


def _store(double: Any, proxy: FaultProxy, retry: RetryPolicy) -> SecretStore:
    port = proxy.address.rsplit(":", 1)[1]
    return secretkit.open(f"azure-kv://127.0.0.1:{port}", ca_bundle=str(double.ca_path),
                          credential=double.credential(), timeout=1, retry=retry, cache=NO_CACHE)


def _audited(store: SecretStore) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    store.add_audit_hook(events.append)
    return events


def _last(events: list[AuditEvent], operation: str) -> AuditEvent:
    return [e for e in events if e.operation == operation][-1]


def test_reads_survive_30_percent_transient_faults(proxied: tuple[Any, FaultProxy]) -> None:
    double, proxy = proxied
    names = [_unique("flaky") for _ in range(3)]
    faults = random.Random(7)
    injected = 0
    with _store(double, proxy, FLAKY) as store:
        for name in names:
            store.put(name, f"value of {name}")
        events = _audited(store)
        for i in range(30):
            if faults.random() < 0.3:
                status, code = faults.choice([(503, "ServiceUnavailable"), (500, "InternalServerError")])
                double.fail_next(status, code)
                injected += 1
            name = names[i % len(names)]
            assert store.get(name).text == f"value of {name}"
    assert injected >= 5
    assert sum(e.attempts - 1 for e in events if e.operation == "get") == injected


def test_dead_vault_fails_fast(proxied: tuple[Any, FaultProxy]) -> None:
    double, proxy = proxied
    name = _unique("down")
    with _store(double, proxy, DOWN) as store:
        store.put(name, "v")
        events = _audited(store)
        proxy.down()
        began = time.perf_counter()
        with pytest.raises(secretkit.UnavailableError) as caught:
            store.get(name)
        elapsed = time.perf_counter() - began
    assert caught.value.attempts == DOWN.max_attempts == _last(events, "get").attempts
    assert elapsed < 1.5


def test_recovered_vault_is_reached_within_the_retry_deadline(proxied: tuple[Any, FaultProxy]) -> None:
    double, proxy = proxied
    name = _unique("recover")
    with _store(double, proxy, DOWN) as store:
        store.put(name, "v")
        proxy.down()
        with pytest.raises(secretkit.UnavailableError):
            store.get(name)
        proxy.pass_through()
        assert store.get(name).text == "v"


def test_permission_denied_is_not_retried(proxied: tuple[Any, FaultProxy]) -> None:
    double, proxy = proxied
    name = _unique("denied")
    with _store(double, proxy, FLAKY) as store:
        store.put(name, "v")
        events = _audited(store)
        before = len(double.calls("GET"))
        double.fail_next(403, "Forbidden", "The user does not have secrets get permission.", count=3,
                         inner="ForbiddenByPolicy")
        with pytest.raises(secretkit.PermissionDeniedError):
            store.get(name)
    assert _last(events, "get").attempts == 1
    assert len(double.calls("GET")) == before + 1


def test_put_is_not_retried(proxied: tuple[Any, FaultProxy]) -> None:
    double, proxy = proxied
    name = _unique("put")
    with _store(double, proxy, TWICE) as store:
        assert not store.capabilities.idempotent_put  # a second PUT would add a second version
        store.put(name, "first")
        events = _audited(store)
        double.fail_next(503, "ServiceUnavailable")
        with pytest.raises(secretkit.UnavailableError) as caught:
            store.put(name, "second")
        assert caught.value.attempts == 1 == _last(events, "put").attempts
        assert store.get(name).text == "first"
        assert len(store.versions(name)) == 1


# -- Retry-After: the server's delay is a floor of the store's backoff ---------------------


def test_throttled_read_waits_at_least_retry_after(proxied: tuple[Any, FaultProxy]) -> None:
    azure_kv, proxy = proxied
    name = _unique("throttled")
    quick = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.01, deadline=5)
    with _store(azure_kv, proxy, quick) as store:
        store.put(name, "v")
        events = _audited(store)
        azure_kv.throttle(1, retry_after=0.6)
        began = time.perf_counter()
        assert store.get(name).text == "v"
        elapsed = time.perf_counter() - began
    assert _last(events, "get").attempts == 2
    assert elapsed >= 0.6  # the policy alone would have waited at most 0.01 s


def test_retry_after_beyond_the_deadline_gives_up_at_once(proxied: tuple[Any, FaultProxy]) -> None:
    azure_kv, proxy = proxied
    name = _unique("throttled-long")
    short = RetryPolicy(max_attempts=5, initial_backoff=0.001, max_backoff=0.01, deadline=1)
    with _store(azure_kv, proxy, short) as store:
        store.put(name, "v")
        before = len(azure_kv.calls("GET"))
        azure_kv.throttle(1, retry_after=30)
        began = time.perf_counter()
        with pytest.raises(secretkit.ThrottledError) as caught:
            store.get(name)
        elapsed = time.perf_counter() - began
    assert elapsed < 0.9 and caught.value.retry_after == 30  # the caller sees how long the vault asked for
    assert len(azure_kv.calls("GET")) == before + 1  # no early retry the vault would refuse again
