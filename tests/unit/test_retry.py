"""RetryPolicy and retry.call: transient codes only, full-jitter backoff, attempts on exhaustion; no sleeping."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from pydantic import ValidationError

from secretkit.config import StoreOptions
from secretkit.drivers.memory import MemoryDriver
from secretkit.errors import (
    ConflictError,
    DeadlineExceededError,
    NotFoundError,
    PermissionDeniedError,
    SecretError,
    ThrottledError,
    UnavailableError,
)
from secretkit.retry import RetryPolicy, call
from secretkit.secret import Value
from secretkit.store import SecretStore
from secretkit.testing.faulty import FaultyDriver


class Flaky:
    def __init__(self, *errors: SecretError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_success_after_transient_failures() -> None:
    waits: list[float] = []
    fn = Flaky(UnavailableError("down"), ThrottledError("slow"), DeadlineExceededError("late"))
    assert call(RetryPolicy(max_attempts=4), fn, sleep=waits.append) == ("ok", 4)
    assert len(waits) == 3


@pytest.mark.parametrize("error", [NotFoundError("x"), PermissionDeniedError("x"), ConflictError("x")])
def test_permanent_errors_are_not_retried(error: SecretError) -> None:
    waits: list[float] = []
    fn = Flaky(error)
    with pytest.raises(type(error)):
        call(RetryPolicy(), fn, sleep=waits.append)
    assert fn.calls == 1 and waits == []


def test_exhaustion_raises_unavailable_with_attempts_and_cause() -> None:
    waits: list[float] = []
    last = ThrottledError("slow down", name="db", backend="aws-sm")
    fn = Flaky(ThrottledError("slow down"), ThrottledError("slow down"), last)
    with pytest.raises(UnavailableError) as info:
        call(RetryPolicy(max_attempts=3), fn, sleep=waits.append)
    assert info.value.attempts == 3 and fn.calls == 3
    assert info.value.__cause__ is last
    assert info.value.name == "db" and info.value.backend == "aws-sm"
    assert "3 attempts" in str(info.value)


def test_waits_are_full_jitter_exponential_and_capped() -> None:
    policy = RetryPolicy(max_attempts=8, initial_backoff=0.1, max_backoff=0.5, deadline=None)
    for _ in range(20):
        waits: list[float] = []
        fn = Flaky(*[UnavailableError("down") for _ in range(7)])
        call(policy, fn, sleep=waits.append)
        assert len(waits) == 7
        for n, wait in enumerate(waits):
            assert 0 <= wait <= min(0.5, 0.1 * 2**n)  # retry n waits in [0, initial * 2**n), capped


def test_jitter_is_random() -> None:
    policy = RetryPolicy(max_attempts=2, initial_backoff=1.0, max_backoff=10.0)
    waits: list[float] = []
    for _ in range(10):
        call(policy, Flaky(UnavailableError("down")), sleep=waits.append)
    assert len(set(waits)) > 1


def test_no_retry_policy_and_retry_false_make_one_attempt() -> None:
    waits: list[float] = []
    fn = Flaky(UnavailableError("down"))
    with pytest.raises(UnavailableError) as info:
        call(RetryPolicy.none(), fn, sleep=waits.append)
    assert fn.calls == 1 and info.value.attempts == 1
    fn = Flaky(UnavailableError("down"))
    with pytest.raises(UnavailableError):
        call(RetryPolicy(), fn, retry=False, sleep=waits.append)
    assert fn.calls == 1 and waits == []


def test_policy_validation() -> None:
    with pytest.raises(ValidationError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValidationError):
        RetryPolicy(bogus=1)  # type: ignore[call-arg]


# -- through the store -----------------------------------------------------------------------


def _store(idempotent_put: bool) -> tuple[SecretStore, FaultyDriver]:
    inner = MemoryDriver()
    inner.capabilities = dataclasses.replace(inner.capabilities, idempotent_put=idempotent_put)
    driver = FaultyDriver(inner)
    options = StoreOptions(retry=RetryPolicy(max_attempts=3, initial_backoff=0, max_backoff=0))
    return SecretStore(driver, options=options), driver  # type: ignore[arg-type]


def test_store_retries_reads() -> None:
    store, driver = _store(idempotent_put=False)
    driver._inner.write("a", Value.of("v"), if_version=None, create_only=False, token=uuid.uuid4().hex)
    driver.fail("read", UnavailableError("down"), times=2)
    assert store.get("a").text == "v"
    assert driver.calls["read"] == 3


def test_store_retries_puts_only_when_idempotent() -> None:
    store, driver = _store(idempotent_put=False)
    driver.fail("write", UnavailableError("down"), times=1)
    with pytest.raises(UnavailableError):
        store.put("a", "v")
    assert driver.calls["write"] == 1
    store, driver = _store(idempotent_put=True)
    driver.fail("write", UnavailableError("down"), times=1)
    store.put("a", "v")
    assert driver.calls["write"] == 2
    assert len(store.versions("a")) == 1
