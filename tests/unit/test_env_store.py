"""env:// specifics: the name → variable rule, aliases, listing, exact values."""

from __future__ import annotations

import os

import pytest

import secretkit
from secretkit.drivers.env import variable_name
from secretkit.secret import Kind
from secretkit.store import SecretStore
from secretkit.testing.spy import CountingDriver


@pytest.fixture(autouse=True)
def clean_app_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("APP_", "PAYMENTS_", "A_B", "OTHER_")):
            monkeypatch.delenv(key)


@pytest.mark.parametrize(
    ("name", "prefix", "variable"),
    [
        ("payments/db-password", "", "PAYMENTS_DB_PASSWORD"),
        ("payments/db-password", "APP_", "APP_PAYMENTS_DB_PASSWORD"),
        ("db_password", "APP_", "APP_DB_PASSWORD"),
        ("Upper_Case.v1", "", "UPPER_CASE_V1"),
        ("a/b", "", "A_B"),
        ("a.b", "", "A_B"),
        ("a-b", "", "A_B"),
        ("a_b", "", "A_B"),
        ("A/B", "", "A_B"),
        ("1-starts-with-digit", "APP_", "APP_1_STARTS_WITH_DIGIT"),
        ("_leading", "", "_LEADING"),
        ("lower", "app_", "app_LOWER"),  # the prefix is used as given
    ],
)
def test_the_documented_mapping(name: str, prefix: str, variable: str) -> None:
    assert variable_name(name, prefix) == variable


@pytest.mark.parametrize(
    "name", ["a+b=c@d", "pässwörd", "with space", "1-starts-with-digit", "colon:x", "semi;colon"]
)
def test_names_without_a_variable_are_refused_before_reading(name: str) -> None:
    store = secretkit.open("env://")
    counted = SecretStore(CountingDriver(store.driver), options=store.options)
    spy = counted.driver
    assert isinstance(spy, CountingDriver)
    with pytest.raises(secretkit.InvalidArgumentError, match="env:// names hold ASCII letters") as info:
        counted.get(name)
    assert info.value.name is not None
    assert spy.total == 0


def test_a_variable_reads_exactly_and_json_objects_read_as_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_PAYMENTS_DB_PASSWORD", " s3cr3t \n")
    monkeypatch.setenv("APP_PAYMENTS_DB", '{"user": "app", "port": 5432}')
    monkeypatch.setenv("APP_EMPTY", "")
    store = secretkit.open("env://?prefix=APP_")
    got = store.get("payments/db-password")
    assert got.kind is Kind.TEXT and got.text == " s3cr3t \n"
    db = store.get("payments/db")
    assert db.text == '{"user": "app", "port": 5432}'
    assert db.fields == {"user": "app", "port": "5432"} and db["user"] == "app"
    assert store.get("empty").text == "" and store.exists("empty")
    assert not store.exists("absent")


@pytest.mark.skipif(not os.supports_bytes_environ, reason="the environment is text on this platform")
def test_octets_that_are_not_utf8_read_as_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(os.environb, b"APP_BINARY", b"\xff\xfe\x01")
    got = secretkit.open("env://?prefix=APP_").get("binary")
    assert got.kind is Kind.BYTES and got.bytes == b"\xff\xfe\x01"


def test_aliases_read_one_variable_and_list_names_map_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_A_B", "one variable")
    store = secretkit.open("env://?prefix=APP_")
    versions = {store.get(alias).version for alias in ("a/b", "a.b", "a-b", "a_b", "A_B")}
    assert len(versions) == 1 and store.get("a/b").text == "one variable"
    assert list(store.list()) == ["a_b"]
    assert list(store.list("a/")) == ["a/b"]  # spelt with the prefix as given
    assert list(store.list("a.")) == ["a.b"]


def test_list_yields_only_reachable_variables_under_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in {
        "APP_PAYMENTS_DB_PASSWORD": "p", "APP_API_KEY": "k", "APP_lowercase": "x", "APP_": "bare",
        "APP_WITH-DASH": "x", "OTHER_SECRET": "not ours",
    }.items():
        monkeypatch.setenv(variable, value)
    store = secretkit.open("env://?prefix=APP_")
    listed = list(store.list())
    assert listed == ["api_key", "payments_db_password"]
    for name in listed:
        assert store.get(name).text == os.environ[variable_name(name, "APP_")]
    assert list(store.list("payments/")) == ["payments/db_password"]
    assert store.get("payments/db_password").text == "p"
    assert list(store.list("nothing/")) == []
    assert list(store.list("bad prefix")) == []


def test_without_a_prefix_list_yields_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_DB_PASSWORD", "p")
    store = secretkit.open("env://")
    assert store.get("payments/db-password").text == "p"  # reads work
    assert list(store.list()) == [] and list(store.list("payments")) == []


def test_the_version_is_a_digest_of_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TOKEN", "one")
    store = secretkit.open("env://?prefix=APP_")
    first = store.get("token").version
    assert store.driver.current_version("token") == first  # type: ignore[attr-defined]
    monkeypatch.setenv("APP_TOKEN", "two")
    assert store.get("token").version != first
    monkeypatch.setenv("APP_TOKEN", "one")
    assert store.get("token").version == first


def test_options_are_checked() -> None:
    with pytest.raises(secretkit.ConfigError, match="prefix"):
        secretkit.open("env://?prefix=1BAD")
    with pytest.raises(secretkit.ConfigError, match="no host or path"):
        secretkit.open("env://APP_")
    with pytest.raises(secretkit.ConfigError, match="unknown option"):
        secretkit.open("env://?prefx=APP_")


def test_errors_name_the_variable_never_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TOKEN", "value-marker-91c")
    store = secretkit.open("env://?prefix=APP_")
    with pytest.raises(secretkit.NotFoundError, match="APP_ABSENT"):
        store.get("absent")
    with pytest.raises(secretkit.NotSupportedError) as info:
        store.put("token", "value-marker-91c")
    assert "value-marker-91c" not in str(info.value)
    assert "value-marker" not in repr(store.get("token"))
