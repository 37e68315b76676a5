"""Secret references (``NAME`` / ``NAME#FIELD``), ``store.resolve`` and ``store.refreshing``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import secretkit
from secretkit.errors import InvalidArgumentError, NotFoundError, UnavailableError
from secretkit.references import Reference, resolve_many
from secretkit.store import SecretStore
from secretkit.testing.spy import CountingDriver


@pytest.fixture
def store() -> Iterator[SecretStore]:
    with secretkit.open("memory://") as s:
        s.put("app/token", "t-1")
        s.put("app/db", {"user": "app", "password": "hunter2"})
        s.put("app/one", {"only": "v"})
        s.put("app/json", '{"port": 5432, "host": "db"}')
        s.put("app/blob", b"\x00\xff")
        s.put("app/keystore", {"jks": b"\x00\xfe", "alias": "k"})
        yield s


def counted(store: SecretStore) -> tuple[SecretStore, CountingDriver]:
    spy = CountingDriver(store.driver)
    return SecretStore(spy, options=store.options), spy  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "name", "field"),
    [
        ("payments/db", "payments/db", None),
        ("payments/db#password", "payments/db", "password"),
        ("odd#name#field", "odd#name", "field"),  # the field follows the last '#'
    ],
)
def test_parse(text: str, name: str, field: str | None) -> None:
    ref = Reference.parse(text)
    assert (ref.name, ref.field) == (name, field)
    assert str(ref) == text


@pytest.mark.parametrize("text", ["", "#password", "payments/db#", " payments/db", "payments/db\n", "a\x00b", 42, None])
def test_malformed_references_fail_before_any_io(store: SecretStore, text: object) -> None:
    quiet, spy = counted(store)
    with pytest.raises(InvalidArgumentError):
        quiet.resolve(text)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        resolve_many(quiet, ["app/token", text])  # type: ignore[list-item]
    assert spy.total == 0


def test_a_name_the_backend_refuses_fails_before_any_io(store: SecretStore) -> None:
    quiet, spy = counted(store)
    with pytest.raises(InvalidArgumentError) as caught:
        quiet.resolve("bad//name#field")
    assert spy.total == 0
    assert caught.value.backend == "memory"


def test_resolution_rules(store: SecretStore) -> None:
    assert store.resolve("app/token") == "t-1"  # text: its text
    assert store.resolve("app/db#password") == "hunter2"
    assert store.resolve("app/db") == '{"password":"hunter2","user":"app"}'  # a field secret: canonical JSON
    assert store.resolve("app/one") == '{"only":"v"}'  # one field is still a field secret
    assert store.resolve("app/json") == '{"port": 5432, "host": "db"}'  # text holding JSON: exactly as stored
    assert store.resolve("app/json#port") == "5432"  # a JSON number as its JSON text
    assert store.resolve("app/keystore#alias") == "k"


def test_resolution_errors_name_the_secret_and_never_the_value(store: SecretStore) -> None:
    with pytest.raises(InvalidArgumentError, match="without fields") as no_fields:
        store.resolve("app/token#password")
    with pytest.raises(NotFoundError, match="no field 'pass'") as no_field:
        store.resolve("app/db#pass")
    with pytest.raises(NotFoundError) as no_secret:
        store.resolve("app/missing#password")
    with pytest.raises(InvalidArgumentError, match="octets"):
        store.resolve("app/blob")
    with pytest.raises(InvalidArgumentError, match="octets"):
        store.resolve("app/keystore#jks")
    with pytest.raises(InvalidArgumentError, match="octets"):
        store.resolve("app/keystore")
    for caught in (no_fields, no_field, no_secret):
        assert caught.value.backend == "memory" and caught.value.name is not None
        assert "hunter2" not in str(caught.value) and "t-1" not in str(caught.value)


def test_resolve_many_reads_every_name_in_one_batch_and_reports_per_reference(store: SecretStore) -> None:
    quiet, spy = counted(store)
    results = resolve_many(quiet, ["app/db#user", "app/db#password", "app/token", "app/missing", "app/db#nope"])
    assert spy.calls == {"read": 3}  # memory has no batch call: one read per distinct name, app/db once
    assert results[Reference("app/db", "user")] == "app"
    assert results[Reference("app/db", "password")] == "hunter2"
    assert results[Reference("app/token")] == "t-1"
    assert isinstance(results[Reference("app/missing")], NotFoundError)
    assert isinstance(results[Reference("app/db", "nope")], NotFoundError)


# -- refresh on rejection -----------------------------------------------------------


class AuthFailed(Exception):
    """What a database driver raises for a wrong password."""


class FakeDatabase:
    """Accepts only the password the secret holds now (it was rotated, not the reader's cache)."""

    def __init__(self, store: SecretStore, name: str) -> None:
        self.backend = SecretStore(store.driver)  # the same data, without the reader's cache
        self.name = name
        self.attempts: list[str] = []

    def connect(self, password: str) -> str:
        self.attempts.append(password)
        current = self.backend.get(self.name)["password"]
        if password != current:
            raise AuthFailed("password authentication failed")
        return f"connected with {len(password)}-char password"


@pytest.fixture
def cached() -> Iterator[SecretStore]:
    with secretkit.open("memory://", cache=True, cache_ttl=3600) as s:
        s.put("payments/db", {"user": "app", "password": "old-password"})
        yield s


def test_refreshing_retries_once_with_the_rotated_value(cached: SecretStore) -> None:
    db = FakeDatabase(cached, "payments/db")
    assert cached.resolve("payments/db#password") == "old-password"  # now in the cache
    # rotated behind the reader's back: the cache still has the old value
    other = SecretStore(cached.driver)
    other.put("payments/db", {"user": "app", "password": "new-password"})
    assert cached.resolve("payments/db#password") == "old-password"

    result = cached.refreshing("payments/db#password", db.connect, on=AuthFailed)

    assert result == "connected with 12-char password"
    assert db.attempts == ["old-password", "new-password"]
    assert cached.resolve("payments/db#password") == "new-password"  # the cache was updated too


def test_refreshing_calls_once_when_the_value_works(cached: SecretStore) -> None:
    db = FakeDatabase(cached, "payments/db")
    assert cached.refreshing("payments/db#password", db.connect, on=(AuthFailed,)).startswith("connected")
    assert db.attempts == ["old-password"]


def test_refreshing_raises_the_original_error_when_the_value_did_not_change(cached: SecretStore) -> None:
    def reject(password: str) -> None:
        calls.append(password)
        raise AuthFailed("no")

    calls: list[str] = []
    with pytest.raises(AuthFailed):
        cached.refreshing("payments/db#password", reject, on=AuthFailed)
    assert calls == ["old-password"]  # a retry with the same value would only fail again


def test_refreshing_retries_only_once(cached: SecretStore) -> None:
    other = SecretStore(cached.driver)
    cached.resolve("payments/db#password")
    other.put("payments/db", {"user": "app", "password": "new-password"})
    calls: list[str] = []

    def reject(password: str) -> None:
        calls.append(password)
        raise AuthFailed(f"attempt {len(calls)}")

    with pytest.raises(AuthFailed, match="attempt 2"):
        cached.refreshing("payments/db#password", reject, on=AuthFailed)
    assert calls == ["old-password", "new-password"]


def test_refreshing_lets_other_exceptions_through_without_a_reread(cached: SecretStore) -> None:
    quiet, spy = counted(cached)
    quiet.resolve("payments/db#password")
    spy.calls.clear()

    def broken(password: str) -> None:
        raise KeyError("unrelated")

    with pytest.raises(KeyError):
        quiet.refreshing("payments/db#password", broken, on=AuthFailed)
    assert spy.total == 0  # answered from the cache, and no re-read


def test_refreshing_checks_its_arguments_before_calling(cached: SecretStore) -> None:
    with pytest.raises(InvalidArgumentError):
        cached.refreshing("payments/db#", lambda v: v, on=AuthFailed)
    with pytest.raises(InvalidArgumentError):
        cached.refreshing("payments/db#password", lambda v: v, on=())
    with pytest.raises(InvalidArgumentError):
        cached.refreshing("payments/db#password", lambda v: v, on="AuthFailed")  # type: ignore[arg-type]


def test_a_store_error_on_reread_is_raised_as_itself() -> None:
    class DownAfterFirstRead(CountingDriver):
        def _before(self, attr: str, args: object, kwargs: object) -> None:
            if self.total > 1:
                raise UnavailableError("backend down")

    def reject(password: str) -> None:
        raise AuthFailed("no")

    with secretkit.open("memory://", retry={"max_attempts": 1}) as plain:
        plain.put("payments/db", {"password": "old-password"})
        flaky = SecretStore(DownAfterFirstRead(plain.driver), options=plain.options)  # type: ignore[arg-type]
        with pytest.raises(UnavailableError):
            flaky.refreshing("payments/db#password", reject, on=AuthFailed)
