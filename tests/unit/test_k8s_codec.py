"""The k8s:// codec: names and values as pure functions (no client, no server)."""

from __future__ import annotations

import base64
import hashlib
import random

import pytest

from secretkit.drivers.kubernetes import codec
from secretkit.errors import DataLossError, InvalidArgumentError
from secretkit.names import is_portable
from secretkit.secret import Kind, Value
from secretkit.testing.names import AWKWARD_NAMES


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]


@pytest.mark.parametrize(
    "name",
    ["zabbix-db", "db", "db-password", "tls.example.com", "a.b", "1-starts-with-digit", "x" * 180, "a" * 253,
     "dots.and-dashes"],
)
def test_names_kubernetes_holds_are_used_unchanged(name: str) -> None:
    assert codec.NAMES.storage_name(name) == name
    assert not codec.NAMES.is_mapped(name)


@pytest.mark.parametrize(
    ("name", "readable"),
    [
        ("payments/db-password", "payments.db-password"),
        ("App_1/api.key", "app-1.api.key"),
        ("my_secret", "my-secret"),
        ("Upper_Case.v1", "upper-case.v1"),
        ("a/b", "a.b"),
        ("a_b", "a-b"),
        ("a..b", "a.b"),  # portable, but an empty DNS label
        ("a_.b", "a.b"),  # "a-" would end a label with '-'
        ("A", "a"),
    ],
)
def test_other_portable_names_are_mapped_readably_with_a_digest(name: str, readable: str) -> None:
    assert codec.NAMES.storage_name(name) == f"{readable}-{_digest(name)}"
    assert codec.NAMES.is_mapped(name)


def test_the_brief_example() -> None:
    assert codec.mapped("payments/db-password") == "payments.db-password-" + _digest("payments/db-password")


@pytest.mark.parametrize("name", ["a" * 254, "-x", "x-", "a!b", "UPPER" + "x" * 200, "a b", "ä"])
def test_names_neither_held_nor_mapped_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        codec.NAMES.storage_name(name)
    assert codec.NAME_RULE in str(info.value)


def test_awkward_names_are_held_or_mapped() -> None:
    objects = {}
    for name in AWKWARD_NAMES:
        try:
            objects[name] = codec.NAMES.storage_name(name)
        except InvalidArgumentError:
            assert not is_portable(name)  # "a+b=c@d": AWS-only
    assert objects["zabbix-db"] == "zabbix-db"
    assert len(set(objects.values())) == len(objects)  # a.b, a_b, a/b: three objects


def test_every_portable_name_reaches_one_valid_object_of_its_own() -> None:
    rng = random.Random(6)
    alphabet = "abcdefxyzABCZ0129._-"
    seen: dict[str, str] = {}
    for _ in range(5000):
        segments = []
        for _ in range(rng.randint(1, 3)):
            inner = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
            ends = "abzZ09"
            segments.append(rng.choice(ends) + (inner + rng.choice(ends) if inner or rng.random() < 0.5 else ""))
        name = "/".join(segments)
        obj = codec.NAMES.storage_name(name)
        assert codec.is_native(obj), (name, obj)
        if codec.is_native(name):
            assert obj == name  # a natively valid name is never altered
        assert seen.setdefault(obj, name) == name  # no two names share an object
        assert codec.listed_name(obj, {codec.NAME_ANNOTATION: name}) == name


def test_display_name() -> None:
    obj = codec.mapped("A/b")
    assert codec.listed_name(obj, {codec.NAME_ANNOTATION: "A/b"}) == "A/b"
    assert codec.listed_name("renamed", {codec.NAME_ANNOTATION: "A/b"}) == "renamed"  # stale annotation
    assert codec.listed_name("db", {codec.NAME_ANNOTATION: "x"}) == "db"
    assert codec.listed_name("db", {codec.NAME_ANNOTATION: "bad\nname"}) == "db"
    assert codec.listed_name("db", {}) == "db"


def test_companion_names() -> None:
    assert codec.companion_name("db", "pending") == "db.secretkit-pending"
    assert codec.companion_name("db", "previous") == "db.secretkit-previous"
    assert codec.companion_name("db", "pending", other_namespace="app") == "app.db.secretkit-pending"
    long = "a" * 240 + ".b"
    pending, previous = codec.companion_name(long, "pending"), codec.companion_name(long, "previous")
    assert pending != previous and pending.endswith(".secretkit-pending")
    assert codec.is_native(pending) and codec.is_native(previous)
    assert pending == codec.companion_name(long, "pending")  # deterministic
    assert codec.companion_name(long[:-1] + "c", "pending") != pending
    edge = "a" * 225 + "." + "b" * 20  # truncation lands right after a '.'
    assert codec.is_native(codec.companion_name(edge, "previous", other_namespace="ns"))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_values_become_data_keys() -> None:
    assert codec.encode_value(Value.of("héllo"), "value") == {"value": _b64("héllo".encode())}
    assert codec.encode_value(Value.of(b"\xff\x00"), "value") == {"value": _b64(b"\xff\x00")}
    assert codec.encode_value(Value.of(""), "password") == {"password": ""}
    assert codec.encode_value(Value.of({"u": "app", "k": b"\xfe"}), "value") == {"u": _b64(b"app"), "k": _b64(b"\xfe")}
    assert codec.encode_value(Value.of({}), "value") == {}
    # a map read from another backend may hold JSON values: they are stored as their JSON text
    assert codec.encode_value(Value(Kind.FIELDS, {"port": 5432}), "value") == {"port": _b64(b"5432")}


def test_reading_gives_the_octets_of_every_key() -> None:
    value = codec.decode_value({"data": {"password": _b64(b"x"), "keystore.jks": _b64(b"\xfe\xed"), "empty": ""}})
    assert value.kind is Kind.FIELDS
    assert dict(value.map) == {"password": b"x", "keystore.jks": b"\xfe\xed", "empty": b""}
    assert codec.decode_value({}).fields == {}
    assert codec.decode_value({"data": {"value": _b64(b"abc")}}).text == "abc"
    with pytest.raises(DataLossError, match="k"):
        codec.decode_value({"data": {"k": "%%%"}})
