"""Portable names, values and the masking of secrets."""

from __future__ import annotations

import copy
import pickle

import pytest

import secretkit
from secretkit.fields import fields_to_json, text_form
from secretkit.names import check_portable as check_name
from secretkit.secret import Kind, Secret, Value


@pytest.mark.parametrize("name", ["a", "payments/db-password", "App_1/api.key", "a/b/c/d", "x" * 200, "9"])
def test_portable_names_accepted(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "a/", "/a", "a//b", "a b", "é", ".hidden", "a/-b", "a_", "x" * 201, 7])
def test_non_portable_names_rejected(name: object) -> None:
    with pytest.raises(secretkit.InvalidArgumentError):
        check_name(name)


def test_value_of_rejects_non_string_fields_without_showing_them() -> None:
    with pytest.raises(secretkit.InvalidArgumentError) as info:
        Value.of({"password": 123456789})  # type: ignore[dict-item]
    assert "123456789" not in str(info.value)


def test_value_fields_are_copied_and_read_only() -> None:
    source = {"a": "1"}
    value = Value.of(source)
    source["a"] = "changed"
    assert value.fields["a"] == "1"
    value.fields["a"] = "x"  # type: ignore[index]  # a copy: the value itself cannot change
    assert value.fields["a"] == "1"
    with pytest.raises(TypeError):
        value.map["a"] = "x"  # type: ignore[index]


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
    assert Secret("n", "1", Value.of({"only": "one"})).text == '{"only":"one"}'  # a map: its JSON


def test_secret_and_value_refuse_pickling() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret("n", "1", Value.of("topsecret")))
    with pytest.raises(TypeError):
        pickle.dumps(Value.of("topsecret"))


@pytest.mark.parametrize("make", [lambda: Secret("n", "1", Value.of("topsecret")), lambda: Value.of("topsecret")])
def test_no_serialisation_hook_hands_out_the_value(make: object) -> None:
    """``__getstate__`` and every ``__reduce__`` protocol refuse (they are what pickle, shelve,
    multiprocessing and crash reporters call); a copy is the same immutable object, so copying
    writes the value nowhere new."""
    obj = make()  # type: ignore[operator]
    hooks = [obj.__getstate__, obj.__reduce__] + [
        lambda p=protocol: obj.__reduce_ex__(p) for protocol in range(pickle.HIGHEST_PROTOCOL + 1)
    ]
    for hook in hooks:
        with pytest.raises(TypeError, match="not picklable"):
            hook()
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(obj, protocol)
    assert copy.copy(obj) is obj and copy.deepcopy(obj) is obj
    assert copy.deepcopy({"held": [obj]})["held"][0] is obj


def test_json_text_reads_as_fields_with_non_string_values_as_json_text() -> None:
    text = '{"username": "app", "port": 5432, "ssl": true, "opts": {"a": [1]}}'
    s = Secret("rds", "1", Value.of(text))
    assert s.text == text  # exactly as stored
    assert s.fields == {"username": "app", "port": "5432", "ssl": "true", "opts": '{"a":[1]}'}
    assert s["port"] == "5432" and s.get("missing") is None
    with pytest.raises(secretkit.InvalidArgumentError):
        Secret("t", "1", Value.of("not json")).fields


def test_one_field_map_reads_as_a_map_and_octet_fields_stay_readable() -> None:
    """A map of one field is a map like any other: its text is its JSON, the text AWS and GCP
    hold for the same put, so every reader gives the same on every backend."""
    one = Secret("v", "1", Value(Kind.FIELDS, {"password": "s3cr3t"}))
    assert one.text == '{"password":"s3cr3t"}' and one.bytes == b'{"password":"s3cr3t"}'
    assert one.fields == {"password": "s3cr3t"}
    keystore = Secret("k", "1", Value(Kind.FIELDS, {"keystore.p12": b"\x00\xff\x10", "alias": "app"}))
    assert keystore.fields == {"alias": "app"}  # text fields only
    assert keystore.field_bytes("keystore.p12") == b"\x00\xff\x10"
    assert keystore.field_bytes("alias") == b"app"
    with pytest.raises(KeyError, match="field_bytes"):
        keystore["keystore.p12"]
    with pytest.raises(secretkit.InvalidArgumentError):
        keystore.text
    lone = Secret("k", "1", Value(Kind.FIELDS, {"keystore": b"\xff\xfe"}))
    with pytest.raises(secretkit.InvalidArgumentError, match="field_bytes"):
        lone.bytes  # noqa: B018 - a map's octets are its JSON's, and this field is not text
    assert lone.field_bytes("keystore") == b"\xff\xfe"


def test_text_form_reads_as_the_text_it_holds() -> None:
    """Vault's {"value": text} (a Kubernetes Secret of the one data key value) reads as the text,
    exactly as the same put reads on a backend that holds text as text."""
    plain = Secret("v", "1", Value(Kind.FIELDS, text_form({"value": "s3cr3t"}, "value")))
    assert plain.text == "s3cr3t" and plain.bytes == b"s3cr3t"
    assert plain.fields == {"value": "s3cr3t"} and plain["value"] == "s3cr3t"  # Vault Agent's .Data.data.value
    octets = Secret("k", "1", Value(Kind.FIELDS, text_form({"value": b"\xff\x00"}, "value")))
    assert octets.bytes == b"\xff\x00" and octets.field_bytes("value") == b"\xff\x00"
    with pytest.raises(secretkit.InvalidArgumentError):
        octets.text  # noqa: B018
    as_json = Secret("j", "1", Value(Kind.FIELDS, text_form({"value": '{"user": "app", "port": 5432}'}, "value")))
    assert as_json.text == '{"user": "app", "port": 5432}'  # exactly, as on AWS
    assert as_json.fields == {"user": "app", "port": "5432"} and as_json.field_bytes("user") == b"app"
    assert text_form({"password": "x"}, "value") == {"password": "x"}  # another key: a map like any other
    assert text_form({"value": "x", "user": "y"}, "value") == {"value": "x", "user": "y"}
    assert Secret("m", "1", Value(Kind.FIELDS, {"value": "x"})).text == '{"value":"x"}'  # a map put as one
    assert repr(text_form({"value": "s3cr3t"}, "value")) == "TextForm(key='value', item=***)"


def test_vault_style_json_values_in_a_map() -> None:
    s = Secret("v", "2", Value(Kind.FIELDS, {"port": 5432, "user": "app"}))
    assert s.fields == {"port": "5432", "user": "app"}
    assert s.text == '{"port":5432,"user":"app"}'  # JSON types kept in the text view


def test_undecodable_octets_leave_no_decode_error_behind() -> None:
    secret = Secret("b", "1", Value.of(b"\xffsecret-octets"))
    with pytest.raises(secretkit.InvalidArgumentError) as info:
        secret.text
    assert info.value.__context__ is None and info.value.__cause__ is None


@pytest.mark.parametrize("bad", ["lone\ud800", {"k": "lone\udfff"}, {"lone\ud800": "v"}])
def test_lone_surrogates_are_invalid_arguments(bad: object) -> None:
    with pytest.raises(secretkit.InvalidArgumentError) as info:
        Value.of(bad)  # type: ignore[arg-type]
    assert info.value.__context__ is None


def test_errors_carry_code_name_backend() -> None:
    err = secretkit.NotFoundError("secret not found", name="a/b", backend="memory")
    assert err.code is secretkit.ErrorCode.NOT_FOUND
    assert str(err) == "secret not found (secret 'a/b', backend memory)"
    assert isinstance(secretkit.InvalidArgumentError("x"), ValueError)
    assert secretkit.ThrottledError("x").transient and not secretkit.PermissionDeniedError("x").transient


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"k": "v"},
        {"a": "1", "b": "2", "c": "3"},
        {"ctl": "\x01\x1f\x7f", "quote": '"\\', "nl": "a\nb\tc"},
        {"é": "ünïcødé ✓ 𝄞", "ascii": "x"},
        {"port": 5432, "ssl": True, "opts": {"a": [1, "\x00"]}},  # JSON values another tool wrote (Vault)
        {"utf8": "text".encode(), "octets": b"\xff\x00\xfe\x01"},
    ],
    ids=["empty", "one", "three", "escapes", "non-ascii", "json-values", "octets"],
)
def test_size_of_fields_is_their_canonical_json_exactly(fields: dict[str, object]) -> None:
    value = Value(Kind.FIELDS, fields)
    text_fields = {k: v for k, v in fields.items() if not (isinstance(v, bytes) and k == "octets")}
    expected = len(fields_to_json(text_fields).encode("utf-8"))
    if "octets" in fields:  # a field of octets that are not UTF-8 counts as its base64 text
        expected += len(',"octets":""') + 8
    assert value.size == expected


def _fields_of_json_size(size: int, *, control: int = 0) -> dict[str, str]:
    """One field whose canonical JSON is ``size`` bytes, ``control`` of its characters being
    control characters (six bytes each once escaped)."""
    body = "\x01" * control + "x" * (size - 8 - 6 * control)
    fields = {"k": body}
    assert len(fields_to_json(fields).encode("utf-8")) == size
    return fields


def test_memory_store_limit_is_exact_on_the_canonical_json() -> None:
    store = secretkit.open("memory://", max_value_bytes=65536)
    store.put("at-limit", _fields_of_json_size(65536))
    store.put("at-limit-escaped", _fields_of_json_size(65536, control=5000))
    assert store.get("at-limit").fields == _fields_of_json_size(65536)
    for over in (_fields_of_json_size(65537), _fields_of_json_size(65537, control=5000), {"k": "\x01" * 60000}):
        with pytest.raises(secretkit.InvalidArgumentError, match="65536"):
            store.put("over", over)
    assert Value.of({"k": "\x01" * 60000}).size == 360008
    assert not store.exists("over")
