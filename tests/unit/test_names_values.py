"""Portable names, values and the masking of secrets."""

from __future__ import annotations

import pickle

import pytest

import secretkit
from secretkit.names import check_name, escape, unescape
from secretkit.secret import Kind, Secret, Value


@pytest.mark.parametrize("name", ["a", "payments/db-password", "App_1/api.key", "a/b/c/d", "x" * 200, "9"])
def test_portable_names_accepted(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "a/", "/a", "a//b", "a b", "é", ".hidden", "a/-b", "a_", "x" * 201, 7])
def test_non_portable_names_rejected(name: object) -> None:
    with pytest.raises(secretkit.InvalidArgumentError):
        check_name(name)


@pytest.mark.parametrize("name", ["payments/db-password", "A_b.c/d-e", "x__y/%41", "__"])
def test_escape_is_reversible(name: str) -> None:
    encoded = escape(name, lambda c: c.isalnum() or c == "-", "_")
    assert all(c.isalnum() or c in "-_" for c in encoded)
    assert unescape(encoded, "_") == name


def test_unescape_rejects_malformed() -> None:
    with pytest.raises(ValueError):
        unescape("a_zz", "_")


def test_value_of_rejects_non_string_fields_without_showing_them() -> None:
    with pytest.raises(secretkit.InvalidArgumentError) as info:
        Value.of({"password": 123456789})  # type: ignore[dict-item]
    assert "123456789" not in str(info.value)


def test_value_fields_are_copied_and_read_only() -> None:
    source = {"a": "1"}
    value = Value.of(source)
    source["a"] = "changed"
    assert value.fields["a"] == "1"
    with pytest.raises(TypeError):
        value.fields["a"] = "x"  # type: ignore[index]


def test_secret_accessors_and_masking() -> None:
    s = Secret("n", "1", Value.of("topsecret"))
    assert s.text == "topsecret" and s.bytes == b"topsecret" and s.kind is Kind.TEXT
    assert "topsecret" not in repr(s) and "topsecret" not in str(s) and "topsecret" not in repr(s.value)
    with pytest.raises(secretkit.SecretError):
        s.fields
    f = Secret("n", "1", Value.of({"b": "2", "a": "1"}))
    assert f.text == '{"a":"1","b":"2"}'
    with pytest.raises(KeyError):
        f["missing"]
    b = Secret("n", "1", Value.of(b"\xff\xfe"))
    with pytest.raises(secretkit.SecretError):
        b.text


def test_secret_refuses_pickling() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret("n", "1", Value.of("topsecret")))


def test_errors_carry_code_name_backend() -> None:
    err = secretkit.NotFoundError("secret not found", name="a/b", backend="memory")
    assert err.code is secretkit.ErrorCode.NOT_FOUND
    assert str(err) == "secret not found (secret 'a/b', backend memory)"
    assert isinstance(secretkit.InvalidArgumentError("x"), ValueError)
    assert secretkit.ThrottledError("x").transient and not secretkit.PermissionDeniedError("x").transient
