"""gcp-sm:// behaviour beyond the portable contract, through the real client and the wire double.

Each behaviour runs over both client transports (gRPC and REST) where the transport matters.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import google_crc32c
import grpc
import pytest
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager_v1 as sm
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

import secretkit
from secretkit.config import StoreOptions
from secretkit.drivers.base import History, NativeStages
from secretkit.drivers.gcp import client as gcp_client
from secretkit.drivers.gcp import codec
from secretkit.drivers.gcp import driver as gcp_driver
from secretkit.drivers.gcp import errors as gcp_errors
from secretkit.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    DataLossError,
    DeadlineExceededError,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    PermissionDeniedError,
    ThrottledError,
    UnavailableError,
)
from secretkit.retry import RetryPolicy
from secretkit.secret import Kind, Value
from secretkit.store import SecretStore
from secretkit.testing.spy import CountingDriver
from secretkit.url import StoreURL
from tests.doubles import gcp_sm

PROJECT = "test-project"
NUMBER = "123456789012"
FAST_RETRY = {"retry.initial_backoff": 0.01, "retry.max_backoff": 0.02}


@pytest.fixture(scope="session")
def double() -> gcp_sm.RunningDouble:
    return gcp_sm.shared()


@pytest.fixture(scope="session")
def regional_double() -> gcp_sm.RunningDouble:
    return gcp_sm.shared("europe-west1")


@pytest.fixture
def model(double: gcp_sm.RunningDouble) -> Iterator[gcp_sm.SecretManagerModel]:
    double.model.reset()
    yield double.model
    double.model.reset()


def _open(double: gcp_sm.RunningDouble, transport: str, **options: Any) -> SecretStore:
    endpoint = double.grpc_target if transport == "grpc" else double.rest_url
    return secretkit.open(f"gcp-sm://{PROJECT}", endpoint=endpoint, insecure=True, transport=transport, **options)


@pytest.fixture(params=["grpc", "rest"])
def store(request: pytest.FixtureRequest, double: gcp_sm.RunningDouble, model: gcp_sm.SecretManagerModel) -> Iterator[SecretStore]:
    with _open(double, request.param, **FAST_RETRY) as s:
        yield s


@pytest.fixture(scope="session")
def raw(double: gcp_sm.RunningDouble) -> sm.SecretManagerServiceClient:
    """The SDK client used directly, standing in for gcloud and other tools."""
    transport = SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(double.grpc_target))
    return sm.SecretManagerServiceClient(transport=transport)


def _path(secret_id: str, version: str | None = None) -> str:
    return f"projects/{PROJECT}/secrets/{secret_id}" + (f"/versions/{version}" if version else "")


def _raw_put(raw: sm.SecretManagerServiceClient, secret_id: str, data: bytes) -> None:
    try:
        raw.create_secret(parent=f"projects/{PROJECT}", secret_id=secret_id, secret={"replication": {"automatic": {}}})
    except gexc.AlreadyExists:
        pass
    raw.add_secret_version(parent=_path(secret_id), payload={"data": data})


def sid(name: str) -> str:
    """The secret id a name is stored under."""
    return codec.NAMES.storage_name(name)


def _counting(store: SecretStore) -> tuple[SecretStore, CountingDriver]:
    spy = CountingDriver(store.driver)
    return SecretStore(spy, options=store.options), spy


def _raw_data(raw: sm.SecretManagerServiceClient, secret_id: str, version: str = "latest") -> bytes:
    return bytes(raw.access_secret_version(name=_path(secret_id, version)).payload.data)


# -- value encoding ---------------------------------------------------------------------------


def test_text_is_stored_as_plain_utf8_for_other_tools(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    store.put("app/db.password", "pässwörd")
    assert _raw_data(raw, sid("app/db.password")) == "pässwörd".encode()
    store.put("app/blob", b"\x00\x80\xff binary")
    assert _raw_data(raw, sid("app/blob")) == b"\x00\x80\xff binary"
    store.put("app/ascii", b"ascii bytes")
    assert _raw_data(raw, sid("app/ascii")) == b"ascii bytes"  # no frame: UTF-8 octets are stored as they are


def test_secrets_written_by_other_tools_read_naturally(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    _raw_put(raw, "from-gcloud", b'{"user": "x", "port": 5432}\n')
    _raw_put(raw, "from-gcloud-bin", b"\xde\xad\xbe\xef")
    _raw_put(raw, "from-gcloud-ff", b"\xffskf{not a frame any more")
    got = store.get("from-gcloud")
    assert got.kind is Kind.TEXT
    assert got.text == '{"user": "x", "port": 5432}\n'
    assert got.fields == {"user": "x", "port": "5432"} and got["port"] == "5432"
    assert store.get("from-gcloud-bin").bytes == b"\xde\xad\xbe\xef"
    assert store.get("from-gcloud-ff").kind is Kind.BYTES
    assert store.get("from-gcloud-ff").bytes == b"\xffskf{not a frame any more"


@pytest.mark.parametrize(
    "value, payload",
    [
        ("text", b"text"),
        ('{"b": 1}', b'{"b": 1}'),
        ("", codec.EMPTY_PAYLOAD),
        (b"", codec.EMPTY_PAYLOAD),
        (b"ascii", b"ascii"),
        (b"\xffskt", b"\xffskt"),
        (b"\xffx", b"\xffx"),
        ({"b": "2", "a": "1"}, b'{"a":"1","b":"2"}'),
        ({}, b"{}"),
    ],
    ids=["text", "json-text", "empty-text", "empty-bytes", "utf8-bytes", "old-frame-bytes", "ff-bytes", "fields",
         "no-fields"],
)
def test_payloads_are_the_value_itself(value: Any, payload: bytes) -> None:
    encoded = codec.encode_value(Value.of(value))
    assert encoded == payload
    decoded = codec.decode_value(encoded)
    if isinstance(value, str):
        assert decoded.text == value
    elif isinstance(value, bytes):
        assert decoded.bytes == value
    else:
        assert decoded.fields == value


def test_reading_keeps_the_shape_gcp_holds() -> None:
    assert codec.decode_value(b'{"a": 1}').kind is Kind.TEXT  # never re-read as fields
    assert codec.decode_value("é".encode()).kind is Kind.TEXT
    assert codec.decode_value(b"\xe9").kind is Kind.BYTES
    assert codec.decode_value(codec.EMPTY_PAYLOAD).raw == ""


def test_empty_values_are_the_one_documented_encoding(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    store.put("empty/text", "")
    store.put("empty/bytes", b"")
    assert _raw_data(raw, sid("empty/text")) == _raw_data(raw, sid("empty/bytes")) == b"\xc0\x80"
    with pytest.raises(UnicodeDecodeError):  # a UTF-8 reader refuses it rather than read a wrong string
        _raw_data(raw, sid("empty/text")).decode("utf-8")
    assert store.get("empty/text").text == "" and store.get("empty/bytes").bytes == b""


def test_values_a_payload_cannot_hold_are_refused_before_io(store: SecretStore) -> None:
    counted, spy = _counting(store)
    with pytest.raises(InvalidArgumentError, match="C0 80"):
        counted.put("limits/marker", codec.EMPTY_PAYLOAD)
    with pytest.raises(InvalidArgumentError, match="not UTF-8"):
        counted.put("limits/keystore", {"user": "app", "keystore": b"\xfe\xed\xfe\xed"})
    escaped = {"k": '"' * 40000}  # 40 000 characters, 80 000 bytes of JSON
    with pytest.raises(InvalidArgumentError, match="65536"):
        counted.put("limits/json", escaped)
    assert spy.total == 0
    store.put("limits/utf8-field", {"user": b"app"})  # UTF-8 octets are text in JSON
    assert store.get("limits/utf8-field").fields == {"user": "app"}


def test_largest_payload_is_64_kib(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    limit = store.capabilities.max_value_bytes
    assert limit == gcp_sm.MAX_PAYLOAD == codec.MAX_PAYLOAD
    store.put("big/ascii-bytes", b"a" * limit)
    assert store.get("big/ascii-bytes").bytes == b"a" * limit
    assert len(_raw_data(raw, sid("big/ascii-bytes"))) == gcp_sm.MAX_PAYLOAD


@pytest.mark.parametrize("control", [0, 5000])
def test_fields_at_the_payload_limit_are_stored_and_one_byte_more_is_refused_before_io(
    store: SecretStore, raw: sm.SecretManagerServiceClient, model: gcp_sm.SecretManagerModel, control: int
) -> None:
    """The payload of fields is their JSON with its escapes; exactly 65 536 bytes of it fit."""
    limit = gcp_sm.MAX_PAYLOAD

    def fields_of(size: int) -> dict[str, str]:
        fields = {"k": "\x01" * control + "x" * (size - 8 - 6 * control)}
        assert len(codec.encode_value(Value.of(fields))) == size
        return fields

    store.put("big/fields", fields_of(limit))
    payload = _raw_data(raw, sid("big/fields"))
    assert len(payload) == limit and json.loads(payload) == fields_of(limit)
    before = sum(model.calls.values())
    for over in (fields_of(limit + 1), {"k": "\x01" * 60000}):
        with pytest.raises(InvalidArgumentError, match=str(limit)):
            store.put("big/fields", over)
    assert sum(model.calls.values()) == before


# -- names ------------------------------------------------------------------------------------


def test_native_ids_are_used_unchanged(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    for name in ("my_secret", "Upper_Case-1", "_leading", "x" * 255):
        store.put(name, f"v-{len(name)}")
        assert _raw_data(raw, name) == f"v-{len(name)}".encode()
        assert not raw.get_secret(name=_path(name)).annotations  # nothing recorded: the id is the name
    _raw_put(raw, "made_by_gcloud", b"native")
    assert store.get("made_by_gcloud").text == "native"
    assert set(store.list("")) == {"my_secret", "Upper_Case-1", "_leading", "x" * 255, "made_by_gcloud"}


def test_portable_names_gcp_cannot_hold_map_to_readable_hashed_ids(
    store: SecretStore, raw: sm.SecretManagerServiceClient
) -> None:
    digest = hashlib.sha256(b"payments/db-password").hexdigest()[:8]
    assert sid("payments/db-password") == f"payments__db-password-{digest}"
    assert sid("app/db.password") == f"app__db_password-{hashlib.sha256(b'app/db.password').hexdigest()[:8]}"
    store.put("payments/db-password", "s3cret")
    meta = raw.get_secret(name=_path(sid("payments/db-password")))
    assert dict(meta.annotations) == {"secretkit-name": "payments/db-password"}
    assert list(store.list("")) == ["payments/db-password"]


def test_one_name_never_reaches_two_objects(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    names = ["a/b", "a.b", "a__b", "a_b", "a/b.c", "a.b/c", "a__b_c"]
    for name in names:
        store.put(name, name)
    assert len({sid(n) for n in names}) == len(names)
    assert len(list(raw.list_secrets(parent=f"projects/{PROJECT}"))) == len(names)
    for name in names:
        assert store.get(name).text == name
    assert sorted(store.list("")) == sorted(names)


def test_list_shows_recorded_names_only_where_they_lead_back(
    store: SecretStore, raw: sm.SecretManagerServiceClient
) -> None:
    store.put("team/app.cfg", "x")
    # copied annotations (a clone made with gcloud) must not make a second name for the clone
    raw.create_secret(parent=f"projects/{PROJECT}", secret_id="clone",
                      secret={"replication": {"automatic": {}}, "annotations": {"secretkit-name": "team/app.cfg"}})
    assert sorted(store.list("")) == ["clone", "team/app.cfg"]


def test_list_uses_a_server_side_filter(store: SecretStore, model: gcp_sm.SecretManagerModel) -> None:
    for n in ("a/x", "a/y", "ab", "b/a/x", "a_native"):
        store.put(n, "v")
    assert list(store.list("a/")) == ["a/x", "a/y"]
    assert model.last_request["ListSecrets"].filter == 'name:"a__"'
    assert list(store.list("a")) == ["a/x", "a/y", "a_native", "ab"]
    assert list(store.list("a_")) == ["a_native"]
    assert list(store.list("a+")) == [] and model.last_request["ListSecrets"].filter == ""


def test_list_follows_pages(store: SecretStore, model: gcp_sm.SecretManagerModel) -> None:
    names = [f"paged/n{i:02d}" for i in range(17)]  # the double serves 7 per page
    for n in names:
        store.put(n, "v")
    assert list(store.list("paged/")) == names
    assert model.calls["ListSecrets"] == 3


def test_names_gcp_cannot_hold_are_refused_before_io(store: SecretStore) -> None:
    fits = "/".join(["abcdefghij"] * 18)  # 197 characters, a 240-character id: fits
    store.put(fits, "ok")
    assert store.get(fits).text == "ok"
    counted, spy = _counting(store)
    too_long = "/".join(["a.b"] * 50)  # 199 portable characters, a 257-character id
    for bad in (too_long, "x" * 256, "a+b", "ünïcode", "-/x"):
        with pytest.raises(InvalidArgumentError) as info:
            counted.put(bad, "v")
        assert codec.NAME_RULE in str(info.value)
        with pytest.raises(InvalidArgumentError):
            counted.get(bad)
    assert spy.total == 0


# -- integrity --------------------------------------------------------------------------------


def test_crc32c_is_sent_on_add(store: SecretStore, raw: sm.SecretManagerServiceClient, model: gcp_sm.SecretManagerModel) -> None:
    store.put("crc/sent", "value")
    meta = raw.get_secret_version(name=_path(sid("crc/sent"), "1"))
    assert meta.client_specified_payload_checksum is True
    sent = model.last_request["AddSecretVersion"].payload
    assert sent.data_crc32c == google_crc32c.value(sent.data)


def test_crc32c_mismatch_on_access_is_data_loss(store: SecretStore, model: gcp_sm.SecretManagerModel) -> None:
    store.put("crc/check", "SENTINEL-crc-value")
    model.corrupt_next_access = 1
    with pytest.raises(DataLossError) as info:
        store.get("crc/check")
    assert "SENTINEL" not in str(info.value) and "CRC32C" in str(info.value)
    assert model.calls["AccessSecretVersion"] == 1  # data loss is not retried
    assert store.get("crc/check").text == "SENTINEL-crc-value"


def test_double_rejects_a_wrong_checksum(raw: sm.SecretManagerServiceClient, model: gcp_sm.SecretManagerModel) -> None:
    raw.create_secret(parent=f"projects/{PROJECT}", secret_id="crc-bad", secret={"replication": {"automatic": {}}})
    with pytest.raises(gexc.InvalidArgument):
        raw.add_secret_version(parent=_path("crc-bad"), payload={"data": b"abc", "data_crc32c": 1})


# -- version states ---------------------------------------------------------------------------


def test_disabled_latest_is_not_skipped(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    store.put("states/s", "one")
    store.put("states/s", "two")
    raw.disable_secret_version(name=_path(sid("states/s"), "2"))
    with pytest.raises(NotFoundError, match=r"latest version \(2\) is disabled"):
        store.get("states/s")
    assert not store.exists("states/s")
    assert store.get("states/s", version="1").text == "one"
    with pytest.raises(NotFoundError, match="version 2 is disabled"):
        store.get("states/s", version="2")
    assert [(v.version, v.state) for v in store.versions("states/s")] == [("2", "disabled"), ("1", "enabled")]
    raw.enable_secret_version(name=_path(sid("states/s"), "2"))
    assert store.get("states/s").text == "two"


def test_destroyed_version_reads_as_not_found(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    store.put("states/d", "one")
    store.put("states/d", "two")
    raw.destroy_secret_version(name=_path(sid("states/d"), "1"))
    with pytest.raises(NotFoundError, match="version 1 is destroyed"):
        store.get("states/d", version="1")
    with pytest.raises(NotFoundError, match="version 1 is destroyed"):
        store.get("states/d", stage="previous")
    assert store.versions("states/d")[1].state == "destroyed"


def test_versions_and_stages(store: SecretStore) -> None:
    for v in ("a", "b", "c"):
        store.put("stages/s", v)
    infos = store.versions("stages/s")
    assert [(i.version, sorted(i.stages)) for i in infos] == [("3", ["current"]), ("2", ["previous"]), ("1", [])]
    assert store.get("stages/s", stage="previous").version == "2"
    with pytest.raises(NotFoundError):  # pending lives in a rotation companion; there is none
        store.get("stages/s", stage="pending")
    with pytest.raises(NotFoundError):
        store.get("stages/s", version="latest")
    assert store.driver.current_version("stages/s") == "3"  # type: ignore[attr-defined]


def _set_aliases(raw: sm.SecretManagerServiceClient, secret_id: str, aliases: dict[str, int]) -> None:
    raw.update_secret(
        secret={"name": _path(secret_id), "version_aliases": aliases}, update_mask={"paths": ["version_aliases"]}
    )


def test_a_version_alias_reads_the_version_it_names(
    store: SecretStore, raw: sm.SecretManagerServiceClient, model: gcp_sm.SecretManagerModel
) -> None:
    """Aliases (``stable``, ``canary``) are set by other tools with UpdateSecret; GCP's
    AccessSecretVersion takes one in place of a number, so ``get(version=alias)`` does too."""
    for value in ("one", "two", "three"):
        store.put("alias/s", value)
    _set_aliases(raw, sid("alias/s"), {"stable": 1, "canary": 3, "Prod_2-b": 2})
    stable = store.get("alias/s", version="stable")
    assert (stable.text, stable.version, stable.stages) == ("one", "1", frozenset())  # the version it names
    assert store.get("alias/s", version="canary").version == "3"
    assert store.get("alias/s", version="Prod_2-b").text == "two"
    _set_aliases(raw, sid("alias/s"), {"stable": 2})
    assert store.get("alias/s", version="stable", refresh=True).text == "two"  # follows a moved alias
    with pytest.raises(NotFoundError):  # a well-formed alias the secret does not have: GCP says so
        store.get("alias/s", version="canary", refresh=True)
    raw.disable_secret_version(name=_path(sid("alias/s"), "2"))
    with pytest.raises(NotFoundError, match="version 2 is disabled"):
        store.get("alias/s", version="stable", refresh=True)


@pytest.mark.parametrize(
    "version", ["latest", "NEW", "0", "01", "-1", "1a", "_x", "a" * 64, "has space", "a/b", "\uff12", "\u0663", "\u00e9t\u00e9"]
)
def test_what_is_neither_a_version_number_nor_an_alias_is_refused_before_io(
    store: SecretStore, model: gcp_sm.SecretManagerModel, version: str
) -> None:
    """GCP's rules: versions are numbers from 1; an alias is 1-63 of ``[A-Za-z0-9_-]`` starting
    with a letter, never ``latest`` or ``NEW``. Anything else names no version, so no call is made."""
    store.put("refs/bad", "v")
    before = sum(model.calls.values())
    with pytest.raises(NotFoundError, match="a version alias"):
        store.get("refs/bad", version=version)
    assert sum(model.calls.values()) == before


def test_the_double_keeps_gcp_alias_rules(raw: sm.SecretManagerServiceClient, model: gcp_sm.SecretManagerModel) -> None:
    _raw_put(raw, "aliased", b"v1")
    for bad in ({"latest": 1}, {"NEW": 1}, {"1st": 1}, {"a" * 64: 1}, {"ok": 2}):
        with pytest.raises(gexc.InvalidArgument):
            _set_aliases(raw, "aliased", bad)
    with pytest.raises(gexc.InvalidArgument):
        _set_aliases(raw, "aliased", {f"a{i}": 1 for i in range(gcp_sm.MAX_ALIASES + 1)})
    _set_aliases(raw, "aliased", {"stable": 1})
    assert raw.get_secret_version(name=_path("aliased", "stable")).name.endswith("/versions/1")
    with pytest.raises(gexc.InvalidArgument):  # aliases are for Get and Access only
        raw.disable_secret_version(name=_path("aliased", "stable"))


def test_previous_of_a_first_version_is_not_found(store: SecretStore) -> None:
    store.put("stages/one", "a")
    with pytest.raises(NotFoundError, match="no previous"):
        store.get("stages/one", stage="previous")


def test_stages_are_emulated_over_gcp_history(store: SecretStore) -> None:
    assert store.stages == "emulated"
    assert isinstance(store.driver, History) and not isinstance(store.driver, NativeStages)
    with pytest.raises(NotSupportedError):  # the store asks read_previous / the companion instead
        store.driver.read("stages/x", stage="previous")


def test_rotation_pending_lives_in_a_mapped_companion_only_while_it_runs(
    store: SecretStore, raw: sm.SecretManagerServiceClient
) -> None:
    store.put("rot/db", "old")
    seen: dict[str, Any] = {}

    def apply(pending: Any) -> None:
        ids = {s.name.rsplit("/", 1)[1]: dict(s.annotations) for s in raw.list_secrets(parent=f"projects/{PROJECT}")}
        seen["ids"] = ids
        seen["listed"] = list(store.list(""))

    store.rotate("rot/db", generate=lambda c: "new", apply=apply)
    companion = sid("secretkit-pending/rot/db")
    assert companion.startswith("secretkit-pending__rot__db-")
    assert seen["ids"][companion] == {"secretkit-name": "secretkit-pending/rot/db"}
    assert seen["listed"] == ["rot/db"]  # the store hides its pending prefix
    ids = {s.name.rsplit("/", 1)[1] for s in raw.list_secrets(parent=f"projects/{PROJECT}")}
    assert ids == {sid("rot/db")}  # no companion after promotion, and no NAME/.previous
    assert [v.version for v in store.versions("rot/db")] == ["2", "1"]
    assert store.get("rot/db", stage="previous").text == "old"
    assert store.get("rot/db", stage="previous").version == "1"


def test_a_companion_left_without_a_version_can_be_discarded(
    store: SecretStore, raw: sm.SecretManagerServiceClient
) -> None:
    store.put("rot/stuck", "old")
    raw.create_secret(parent=f"projects/{PROJECT}", secret_id=sid("secretkit-pending/rot/stuck"),
                      secret={"replication": {"automatic": {}}})
    store.discard_pending("rot/stuck")
    store.rotate("rot/stuck", generate=lambda c: "new")
    assert store.get("rot/stuck").text == "new"


def test_deleting_a_long_native_name_needs_no_companion_name(store: SecretStore) -> None:
    name = "n" * 250  # "secretkit-pending/" + name is no name GCP can hold: nothing to clean up there
    store.put(name, "v")
    store.delete(name)
    assert not store.exists(name)


# -- writes, creation, delete -----------------------------------------------------------------


def test_create_race_between_two_writers(
    store: SecretStore, raw: sm.SecretManagerServiceClient, model: gcp_sm.SecretManagerModel
) -> None:
    # Another writer creates the secret between our NOT_FOUND and our CreateSecret.
    model.before["CreateSecret"] = lambda: _raw_put(raw, sid("race/new"), b"other")
    info = store.put("race/new", "mine")
    assert info.version == "2"
    assert store.get("race/new").text == "mine"
    assert model.calls["CreateSecret"] == 2  # the other writer's and ours (ALREADY_EXISTS)


def test_many_writers_to_a_new_secret_all_land(store: SecretStore) -> None:
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        barrier.wait()
        try:
            store.put("race/many", f"w{i}")
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [v.version for v in store.versions("race/many")] == ["6", "5", "4", "3", "2", "1"]


def test_create_only_on_an_empty_secret_is_already_exists(
    store: SecretStore, raw: sm.SecretManagerServiceClient
) -> None:
    raw.create_secret(parent=f"projects/{PROJECT}", secret_id="empty", secret={"replication": {"automatic": {}}})
    with pytest.raises(AlreadyExistsError):
        store.put("empty", "v", create_only=True)
    store.put("empty", "v")
    assert store.get("empty").version == "1"


def test_concurrent_create_only_has_one_winner(store: SecretStore) -> None:
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def contender(i: int) -> None:
        barrier.wait()
        try:
            store.put("race/once", f"w{i}", create_only=True)
            outcomes.append(f"w{i}")
        except AlreadyExistsError:
            outcomes.append("exists")

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o != "exists"]
    assert len(winners) == 1
    assert [v.version for v in store.versions("race/once")] == ["1"]
    assert store.get("race/once").text == winners[0]


def test_delete_removes_every_version(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    store.put("del/s", "a")
    store.put("del/s", "b")
    store.delete("del/s")
    with pytest.raises(gexc.NotFound):
        raw.get_secret(name=_path(sid("del/s")))
    store.put("del/s", "c")
    assert store.get("del/s").version == "1"  # a new secret starts counting again


def test_replication_policy_on_create(double: gcp_sm.RunningDouble, model: gcp_sm.SecretManagerModel, raw: sm.SecretManagerServiceClient) -> None:
    with _open(double, "grpc") as s:
        s.put("repl/auto", "v")
    with _open(double, "rest", replication="us-east1, europe-west1") as s:
        s.put("repl/user", "v")
    assert "automatic" in raw.get_secret(name=_path(sid("repl/auto"))).replication
    replicas = raw.get_secret(name=_path(sid("repl/user"))).replication.user_managed.replicas
    assert [r.location for r in replicas] == ["us-east1", "europe-west1"]


# -- compare-and-set (declared unsupported) and the etag race -----------------------------------


def test_compare_and_set_is_not_supported_and_does_no_io(store: SecretStore) -> None:
    store.put("cas/s", "one")
    spy = CountingDriver(store.driver)
    counted = SecretStore(spy, options=store.options)
    with pytest.raises(NotSupportedError):
        counted.put("cas/s", "two", if_version="1")
    assert spy.total == 0
    assert store.capabilities.compare_and_set is False


def test_etag_race_shows_why_aliases_cannot_give_cas(
    store: SecretStore, raw: sm.SecretManagerServiceClient, model: gcp_sm.SecretManagerModel
) -> None:
    """Two writers try 'add a version, then move an alias under the etag they read'.

    The etag lets only one alias update win, but AddSecretVersion is unconditional, so the
    loser's version is already what GCP (and every other tool) calls ``latest``.
    """
    store.put("cas/alias", "base")
    alias_id = sid("cas/alias")
    etag = raw.get_secret(name=_path(alias_id)).etag
    won = raw.add_secret_version(parent=_path(alias_id), payload={"data": b"winner"})
    lost = raw.add_secret_version(parent=_path(alias_id), payload={"data": b"loser"})
    raw.update_secret(
        secret={"name": _path(alias_id), "etag": etag, "version_aliases": {"current": int(won.name.rsplit("/", 1)[1])}},
        update_mask={"paths": ["version_aliases"]},
    )
    with pytest.raises(gexc.FailedPrecondition) as race:
        raw.update_secret(
            secret={"name": _path(alias_id), "etag": etag, "version_aliases": {"current": int(lost.name.rsplit("/", 1)[1])}},
            update_mask={"paths": ["version_aliases"]},
        )
    assert _raw_data(raw, alias_id, "current") == b"winner"
    assert _raw_data(raw, alias_id, "latest") == b"loser"  # what readers of latest see
    assert store.get("cas/alias").bytes == b"loser"
    classified = store.driver.classify(race.value)
    assert classified is not None and classified.code.value == "conflict"


def test_stale_etag_on_delete_is_a_conflict_over_rest(
    double: gcp_sm.RunningDouble, model: gcp_sm.SecretManagerModel, raw: sm.SecretManagerServiceClient
) -> None:
    rest = sm.SecretManagerServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options=ClientOptions(api_endpoint=double.rest_url)
    )
    _raw_put(raw, "etagged", b"v")
    with pytest.raises(gexc.BadRequest) as info:  # REST: the class only says HTTP 400
        rest.delete_secret(request={"name": _path("etagged"), "etag": '"stale"'}, retry=None)
    classified = gcp_errors.classify(info.value)
    assert classified is not None and classified.code.value == "conflict"


# -- errors and retries -----------------------------------------------------------------------


def test_unavailable_then_success_is_retried_by_the_store(store: SecretStore, model: gcp_sm.SecretManagerModel) -> None:
    store.put("retry/s", "v")
    model.fail("AccessSecretVersion", grpc.StatusCode.UNAVAILABLE, times=2)
    attempts: list[int] = []
    store.add_audit_hook(lambda e: attempts.append(e.attempts))
    assert store.get("retry/s").text == "v"
    assert model.calls["AccessSecretVersion"] == 3  # no SDK retry stacked under ours
    assert attempts[-1] == 3


def test_permission_denied_is_one_call(store: SecretStore, model: gcp_sm.SecretManagerModel) -> None:
    model.fail("AccessSecretVersion", grpc.StatusCode.PERMISSION_DENIED, message="Permission 'secretmanager.versions.access' denied")
    with pytest.raises(PermissionDeniedError, match="versions.access"):
        store.get("retry/denied")
    assert model.calls["AccessSecretVersion"] == 1


def test_puts_are_not_retried(store: SecretStore, model: gcp_sm.SecretManagerModel) -> None:
    store.put("retry/put", "v")
    before = model.calls["AddSecretVersion"]
    model.fail("AddSecretVersion", grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(UnavailableError):
        store.put("retry/put", "w")
    assert model.calls["AddSecretVersion"] == before + 1  # AddSecretVersion is not idempotent
    assert [v.version for v in store.versions("retry/put")] == ["1"]


@pytest.mark.parametrize(
    "code, error",
    [
        (grpc.StatusCode.NOT_FOUND, NotFoundError),
        (grpc.StatusCode.ALREADY_EXISTS, AlreadyExistsError),
        (grpc.StatusCode.ABORTED, ConflictError),
        (grpc.StatusCode.FAILED_PRECONDITION, ConflictError),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgumentError),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDeniedError),
        (grpc.StatusCode.UNAUTHENTICATED, AuthenticationError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ThrottledError),
        (grpc.StatusCode.UNAVAILABLE, UnavailableError),
        (grpc.StatusCode.INTERNAL, UnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError),
    ],
    ids=lambda v: getattr(v, "name", getattr(v, "__name__", str(v))),
)
def test_status_codes_map_the_same_on_both_transports(
    store: SecretStore, model: gcp_sm.SecretManagerModel, code: grpc.StatusCode, error: type[Exception]
) -> None:
    store.put("codes/s", "v")
    once = SecretStore(store.driver, options=StoreOptions(retry=RetryPolicy.none()))
    model.fail("DeleteSecret", code, message="injected for mapping")
    with pytest.raises(error) as info:
        once.delete("codes/s")
    if code is grpc.StatusCode.UNAUTHENTICATED and store.client.transport.kind == "rest":
        # On a 401 google-auth's session refreshes the credentials and retries; anonymous
        # credentials cannot refresh, and that google-auth error maps to the same code.
        assert "cannot be refreshed" in str(info.value)
        return
    assert "injected for mapping" in str(info.value)
    cause: BaseException | None = info.value
    while cause is not None and not isinstance(cause, gexc.GoogleAPICallError):
        cause = cause.__cause__
    assert cause is not None  # the SDK exception stays reachable
    model.reset()


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_client_timeout_is_deadline_exceeded(double: gcp_sm.RunningDouble, model: gcp_sm.SecretManagerModel, transport: str) -> None:
    with _open(double, transport, timeout=0.3, **{"retry.max_attempts": 1}) as s:
        s.put("slow/s", "v")
        model.stall["AccessSecretVersion"] = 1.0
        with pytest.raises(DeadlineExceededError):
            s.get("slow/s")


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_unreachable_endpoint_is_unavailable(transport: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"127.0.0.1:{port}" if transport == "grpc" else f"http://127.0.0.1:{port}"
    with secretkit.open(
        f"gcp-sm://{PROJECT}", endpoint=endpoint, insecure=True, transport=transport, timeout=2,
        **{"retry.max_attempts": 1},
    ) as s, pytest.raises((UnavailableError, DeadlineExceededError)) as info:
        s.get("nowhere")
    assert info.value.transient


# -- regional secrets and configuration ---------------------------------------------------------


def test_regional_secrets_use_location_names(regional_double: gcp_sm.RunningDouble) -> None:
    regional_double.model.reset()
    url = f"gcp-sm://{PROJECT}?location=europe-west1&endpoint={regional_double.grpc_target}&insecure=true"
    with secretkit.open(url) as s:
        s.put("eu/key", "v")
        assert s.get("eu/key").text == "v"
        assert list(s.list("eu/")) == ["eu/key"]
    req = regional_double.model.last_request["CreateSecret"]
    assert req.parent == f"projects/{PROJECT}/locations/europe-west1"
    assert not req.secret.HasField("replication")  # regional secrets take none
    # the global endpoint does not serve regional names, and vice versa
    url = f"gcp-sm://{PROJECT}?endpoint={regional_double.grpc_target}&insecure=true"
    with secretkit.open(url) as s, pytest.raises(InvalidArgumentError):
        s.put("global/key", "v")


def test_regional_endpoint_and_default_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth

    monkeypatch.setattr(google.auth, "default", lambda scopes=None: (AnonymousCredentials(), "adc-project"))
    driver = gcp_driver.open_driver(StoreURL.parse("gcp-sm://")[0], {"location": "europe-west1"})
    try:
        assert driver.client.api_endpoint == "secretmanager.europe-west1.rep.googleapis.com"
        assert driver._parent == "projects/adc-project/locations/europe-west1"
    finally:
        driver.close()
    rest = gcp_driver.open_driver(StoreURL.parse("gcp-sm://p1?transport=rest")[0], {"transport": "rest"})
    assert rest.client.api_endpoint == "secretmanager.googleapis.com"
    assert type(rest.client.transport).__name__ == "SecretManagerServiceRestTransport"
    rest.close()


@pytest.mark.parametrize(
    "url",
    [
        "gcp-sm://p?bogus=1&insecure=true&endpoint=127.0.0.1:1",
        "gcp-sm://p?transport=http&insecure=true&endpoint=127.0.0.1:1",
        "gcp-sm://p?location=eu&replication=us-east1&insecure=true&endpoint=127.0.0.1:1",
        "gcp-sm://p/extra/path?insecure=true&endpoint=127.0.0.1:1",
        "gcp-sm://p?replication=,&insecure=true&endpoint=127.0.0.1:1",
        "gcp-sm://p?timeout=0&insecure=true&endpoint=127.0.0.1:1",
        "gcp-sm://p?insecure=true",
    ],
)
def test_bad_configuration(url: str) -> None:
    with pytest.raises(ConfigError):
        secretkit.open(url)


def test_user_client_is_used_and_not_closed(double: gcp_sm.RunningDouble, model: gcp_sm.SecretManagerModel, raw: sm.SecretManagerServiceClient) -> None:
    with secretkit.open(f"gcp-sm://{PROJECT}", client=raw) as s:
        s.put("client/s", "v")
        assert s.client is raw
    assert _raw_data(raw, sid("client/s")) == b"v"  # still usable after the store closed


def test_every_call_passes_retry_none_and_a_timeout(double: gcp_sm.RunningDouble, model: gcp_sm.SecretManagerModel) -> None:
    seen: list[tuple[str, Any, Any]] = []
    transport = SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(double.grpc_target))
    client = sm.SecretManagerServiceClient(transport=transport)

    class Recording:
        def __getattr__(self, attr: str) -> Any:
            method = getattr(client, attr)

            def call(*args: Any, **kwargs: Any) -> Any:
                seen.append((attr, kwargs.get("retry", "missing"), kwargs.get("timeout")))
                return method(*args, **kwargs)

            return call

    with secretkit.open(f"gcp-sm://{PROJECT}", client=Recording(), timeout=7) as s:
        s.put("calls/s", "v")
        s.put("calls/s", {"f": "v"}, create_only=False)
        s.get("calls/s")
        s.get("calls/s", stage="previous")
        s.versions("calls/s")
        list(s.list("calls/"))
        s.delete("calls/s")
        s.put("calls/t", "v", create_only=True)
    assert {name for name, _, _ in seen} >= {
        "add_secret_version", "create_secret", "access_secret_version", "get_secret_version",
        "list_secret_versions", "list_secrets", "delete_secret",
    }
    assert all(retry is None and timeout == 7 for _, retry, timeout in seen), seen


def test_secure_grpc_client_is_built_through_the_reconnect_capped_transport() -> None:
    """The Google-endpoint path hands the client library a transport factory; it must fit its signature."""
    client = sm.SecretManagerServiceClient(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        transport=gcp_client.grpc_transport,
        client_options=ClientOptions(api_endpoint="127.0.0.1:9"),
    )
    assert type(client.transport).__name__ == "SecretManagerServiceGrpcTransport"
    client.transport.close()


# -- opening without credentials, or without the extra ---------------------------------------------

_NO_CREDENTIALS_ENV = {
    "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/secretkit-test/key.json",
    "NO_GCE_CHECK": "true",  # google-auth never probes a metadata server (read when it is imported)
    "GCE_METADATA_HOST": "127.0.0.1:9",  # and if it did, a closed local port answers at once
    "GCE_METADATA_IP": "127.0.0.1:9",
}


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from google.auth.compute_engine import _metadata

    for key, value in _NO_CREDENTIALS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud application-default login either
    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", True)  # already imported: its flag was read before


def test_no_credentials_is_an_authentication_error(no_credentials: None) -> None:
    with pytest.raises(AuthenticationError) as info:
        secretkit.open("gcp-sm://proj")
    message = str(info.value)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in message and "/nonexistent/secretkit-test/key.json" in message
    assert info.value.backend == "gcp-sm"


def test_no_credentials_anywhere_is_an_authentication_error(
    no_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    with pytest.raises(AuthenticationError, match="gcloud auth application-default login"):
        secretkit.open("gcp-sm://proj")


def test_cli_without_credentials_exits_4_without_a_traceback(tmp_path: Any) -> None:
    env = {**os.environ, **_NO_CREDENTIALS_ENV, "CLOUDSDK_CONFIG": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "secretkit", "--url", "gcp-sm://proj", "get", "x"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr and "credentials" in done.stderr


def test_missing_extra_is_a_config_error_naming_it() -> None:
    code = (
        "import sys; sys.modules['google.cloud.secretmanager_v1'] = None\n"
        "import secretkit\n"
        "try:\n    secretkit.open('gcp-sm://proj')\n"
        "except secretkit.ConfigError as exc:\n    print('ConfigError', exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("ConfigError") and "secretkit[gcp]" in done.stdout, done.stdout + done.stderr


# -- the double's metadata rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret, ok",
    [
        ({"annotations": {"secretkit-name": "a/b", "x.y_z-1": "v"}}, True),
        ({"annotations": {"secretkit.io/name": "a/b"}}, False),  # no '/' in annotation keys
        ({"annotations": {"-lead": "v"}}, False),
        ({"annotations": {"k" * 64: "v"}}, False),
        ({"annotations": {"big": "v" * (16 * 1024)}}, False),
        ({"labels": {"env": "prod", "ünï": "ok_1"}}, True),
        ({"labels": {"Env": "prod"}}, False),  # labels are lowercase
        ({"labels": {"1env": "prod"}}, False),
        ({"labels": {"env": "a/b"}}, False),
        ({"labels": {f"l{i}": "" for i in range(65)}}, False),
    ],
)
def test_double_enforces_label_and_annotation_rules(
    raw: sm.SecretManagerServiceClient, model: gcp_sm.SecretManagerModel, secret: dict[str, Any], ok: bool
) -> None:
    body = {"replication": {"automatic": {}}, **secret}
    if ok:
        raw.create_secret(parent=f"projects/{PROJECT}", secret_id="meta", secret=body)
        got = raw.get_secret(name=_path("meta"))
        assert dict(got.annotations) == secret.get("annotations", {}) and dict(got.labels) == secret.get("labels", {})
        return
    with pytest.raises(gexc.InvalidArgument):
        raw.create_secret(parent=f"projects/{PROJECT}", secret_id="meta", secret=body)
    raw.create_secret(parent=f"projects/{PROJECT}", secret_id="meta", secret={"replication": {"automatic": {}}})
    with pytest.raises(gexc.InvalidArgument):
        raw.update_secret(secret={"name": _path("meta"), **secret}, update_mask={"paths": list(secret)})
