"""gcp-sm:// against Google's own client on the other side, both directions, on the wire double.

"raw" is ``SecretManagerServiceClient`` used directly, as gcloud, Cloud Run, Terraform or any
other program would; pydantic-settings' ``GoogleSecretManagerSettingsSource`` reads what
secretkit wrote. secretkit's side runs over both transports (gRPC and REST).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.api_core import client_logging
from google.api_core import exceptions as gexc
from google.cloud import secretmanager_v1 as sm
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)
from pydantic_settings import BaseSettings, GoogleSecretManagerSettingsSource, PydanticBaseSettingsSource

import secretkit
from secretkit.drivers.gcp import codec
from secretkit.errors import InvalidArgumentError
from secretkit.secret import Kind
from secretkit.store import SecretStore
from secretkit.testing.spy import CountingDriver
from tests.doubles import gcp_sm

PROJECT = "test-project"
PARENT = f"projects/{PROJECT}"
CANARY = "CANARY-interop-9b2f-never-logged"


@pytest.fixture(scope="module")
def double() -> Iterator[gcp_sm.RunningDouble]:
    running = gcp_sm.start()  # a model of its own: the listings below see only this module's secrets
    yield running
    running.stop()


@pytest.fixture
def model(double: gcp_sm.RunningDouble) -> Iterator[gcp_sm.SecretManagerModel]:
    double.model.reset()
    yield double.model
    double.model.reset()


@pytest.fixture(params=["grpc", "rest"])
def store(request: pytest.FixtureRequest, double: gcp_sm.RunningDouble, model: gcp_sm.SecretManagerModel) -> Iterator[SecretStore]:
    endpoint = double.grpc_target if request.param == "grpc" else double.rest_url
    with secretkit.open(f"gcp-sm://{PROJECT}", endpoint=endpoint, insecure=True, transport=request.param) as s:
        yield s


@pytest.fixture(scope="module")
def raw(double: gcp_sm.RunningDouble) -> Iterator[sm.SecretManagerServiceClient]:
    transport = SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(double.grpc_target))
    client = sm.SecretManagerServiceClient(transport=transport)
    yield client
    transport.close()


def _path(secret_id: str, version: str = "") -> str:
    return f"{PARENT}/secrets/{secret_id}" + (f"/versions/{version}" if version else "")


def _raw_create(raw: sm.SecretManagerServiceClient, secret_id: str, data: bytes) -> None:
    raw.create_secret(parent=PARENT, secret_id=secret_id, secret={"replication": {"automatic": {}}})
    raw.add_secret_version(parent=_path(secret_id), payload={"data": data})


def _raw_payload(raw: sm.SecretManagerServiceClient, secret_id: str, version: str = "latest") -> bytes:
    return bytes(raw.access_secret_version(name=_path(secret_id, version)).payload.data)


def _raw_ids(raw: sm.SecretManagerServiceClient) -> dict[str, dict[str, str]]:
    return {s.name.rsplit("/", 1)[1]: dict(s.annotations) for s in raw.list_secrets(parent=PARENT)}


# -- secretkit writes, Google's client reads ------------------------------------------------------

#: kind → (what is put, the exact payload Google's client then reads)
WRITES: dict[str, tuple[Any, bytes]] = {
    "text": ("plain text value", b"plain text value"),
    "json-text": ('{"user": "app", "port": 5432}', b'{"user": "app", "port": 5432}'),
    "unicode": ("pässwörd 🔑 ключ\n", "pässwörd 🔑 ключ\n".encode()),
    "bytes-utf8": (b"ascii octets", b"ascii octets"),
    "bytes-binary": (b"\x00\xff\xfe\x80 binary", b"\x00\xff\xfe\x80 binary"),
    "fields": ({"username": "app", "password": "p@ss wörd"}, '{"password":"p@ss wörd","username":"app"}'.encode()),
    "empty-text": ("", b"\xc0\x80"),
    "empty-bytes": (b"", b"\xc0\x80"),
}


@pytest.mark.parametrize("name", ["interop/db.secret", "interop_native-ID"], ids=["mapped-name", "native-name"])
@pytest.mark.parametrize("kind", list(WRITES))
def test_secretkit_writes_google_client_reads(
    store: SecretStore, raw: sm.SecretManagerServiceClient, kind: str, name: str
) -> None:
    value, payload = WRITES[kind]
    store.put(name, value)
    secret_id = codec.NAMES.storage_name(name)
    assert _raw_payload(raw, secret_id) == payload
    annotations = dict(raw.get_secret(name=_path(secret_id)).annotations)
    if name == "interop_native-ID":
        assert secret_id == name and annotations == {}
    else:
        assert secret_id == f"interop__db_secret-{codec.hashed('', name)[1:]}"
        assert annotations == {"secretkit-name": name}
    assert _raw_ids(raw) == {secret_id: annotations}


# -- Google's client writes, secretkit reads --------------------------------------------------------

#: kind → (the payload written with Google's client, the kind secretkit reads, .text, .fields)
#: (None: that view raises InvalidArgumentError)
READS: dict[str, tuple[bytes, Kind, str | None, dict[str, str] | None]] = {
    "text": (b"plain text value", Kind.TEXT, "plain text value", None),
    "json-text": (b'{"user": "app", "port": 5432, "tls": true}', Kind.TEXT,
                  '{"user": "app", "port": 5432, "tls": true}', {"user": "app", "port": "5432", "tls": "true"}),
    "unicode": ("pässwörd 🔑 ключ\n".encode(), Kind.TEXT, "pässwörd 🔑 ключ\n", None),
    "bytes-utf8": (b"ascii octets", Kind.TEXT, "ascii octets", None),
    "bytes-binary": (b"\x00\xff\xfe\x80 binary", Kind.BYTES, None, None),
    "fields": (b'{"username":"app","password":"p@ss"}', Kind.TEXT, '{"username":"app","password":"p@ss"}',
               {"username": "app", "password": "p@ss"}),
    "old-frame": (b"\xffskf{\"a\":\"1\"}", Kind.BYTES, None, None),
}


@pytest.mark.parametrize("secret_id", ["my_secret", "Upper-Case_1"])
@pytest.mark.parametrize("kind", list(READS))
def test_google_client_writes_secretkit_reads(
    store: SecretStore, raw: sm.SecretManagerServiceClient, kind: str, secret_id: str
) -> None:
    payload, shape, text, fields = READS[kind]
    _raw_create(raw, secret_id, payload)
    got = store.get(secret_id)
    assert got.kind is shape
    assert got.bytes == payload
    assert got.version == "1"
    if text is None:
        with pytest.raises(InvalidArgumentError):
            got.text  # noqa: B018
    else:
        assert got.text == text
    if fields is None:
        with pytest.raises(InvalidArgumentError):
            got.fields  # noqa: B018
    else:
        assert got.fields == fields
        assert all(got[k] == v for k, v in fields.items())
    assert list(store.list("")) == [secret_id]


def test_google_client_cannot_write_an_empty_payload(raw: sm.SecretManagerServiceClient, model: gcp_sm.SecretManagerModel) -> None:
    raw.create_secret(parent=PARENT, secret_id="empty", secret={"replication": {"automatic": {}}})
    with pytest.raises(gexc.InvalidArgument):  # why secretkit needs its one encoding for empty values
        raw.add_secret_version(parent=_path("empty"), payload={"data": b""})


def test_a_secret_made_by_google_client_is_read_listed_and_updated_under_its_own_id(
    store: SecretStore, raw: sm.SecretManagerServiceClient
) -> None:
    _raw_create(raw, "my_secret", b"from gcloud")
    assert store.get("my_secret").text == "from gcloud"
    assert list(store.list("my_")) == ["my_secret"]
    info = store.put("my_secret", "from secretkit")
    assert info.version == "2"
    assert _raw_ids(raw) == {"my_secret": {}}  # the same secret: no second one beside it
    assert _raw_payload(raw, "my_secret") == b"from secretkit"
    assert _raw_payload(raw, "my_secret", "1") == b"from gcloud"
    assert store.get("my_secret", stage="previous").text == "from gcloud"
    store.delete("my_secret")
    assert _raw_ids(raw) == {}


def test_list_shows_native_ids_unchanged_and_mapped_names_as_written(
    store: SecretStore, raw: sm.SecretManagerServiceClient
) -> None:
    _raw_create(raw, "made_by_terraform", b"x")
    _raw_create(raw, "payments__db-password", b"x")  # looks like a readable id, but no digest: native
    store.put("payments/db-password", "x")
    store.put("payments/api.key", "x")
    store.put("payments_native", "x")
    assert list(store.list("")) == [
        "made_by_terraform", "payments/api.key", "payments/db-password", "payments__db-password", "payments_native"
    ]
    assert list(store.list("payments/")) == ["payments/api.key", "payments/db-password"]
    assert store.get("payments__db-password").version == "1"
    assert store.get("payments/db-password").text == "x"
    assert len(_raw_ids(raw)) == 5


def test_a_name_gcp_cannot_hold_is_refused_before_io_with_its_rule(
    store: SecretStore, raw: sm.SecretManagerServiceClient
) -> None:
    spy = CountingDriver(store.driver)
    counted = SecretStore(spy, options=store.options)
    for name in ("a+b=c@d", "/".join(["seg.x"] * 40), "x" * 256):
        with pytest.raises(InvalidArgumentError) as info:
            counted.put(name, "v")
        assert codec.NAME_RULE in str(info.value)
    assert spy.total == 0
    assert _raw_ids(raw) == {}


# -- rotation of a secret another tool wrote --------------------------------------------------------


@pytest.mark.parametrize("name", ["app_db", "rds/app.db"], ids=["native-name", "mapped-name"])
def test_rotating_one_field_of_a_json_secret_keeps_the_others(
    store: SecretStore, raw: sm.SecretManagerServiceClient, name: str
) -> None:
    old = json.dumps({"username": "app", "password": "old", "port": 5432})
    secret_id = codec.NAMES.storage_name(name)
    if secret_id == name:
        _raw_create(raw, secret_id, old.encode())
    else:  # secretkit made the secret (so it records the name); Google's client wrote the JSON
        store.put(name, "bootstrap")
        raw.add_secret_version(parent=_path(secret_id), payload={"data": old.encode()})
    during: dict[str, Any] = {}

    def apply(pending: Any) -> None:
        during["listed"] = list(store.list(""))
        during["ids"] = _raw_ids(raw)
        during["current"] = _raw_payload(raw, secret_id)

    result = store.rotate(name, field="password", apply=apply)
    assert result is not None
    new = json.loads(_raw_payload(raw, secret_id))
    assert new["username"] == "app" and new["port"] == 5432 and isinstance(new["port"], int)
    assert new["password"] != "old" and len(new["password"]) >= 32
    assert _raw_payload(raw, secret_id) == json.dumps({"username": "app", "password": new["password"], "port": 5432}).encode()
    assert during["current"] == old.encode()  # readers kept the old value until promotion
    assert during["listed"] == [name]  # the pending companion is never listed
    assert len(during["ids"]) == 2  # ... though it exists on GCP while the rotation runs
    previous = store.get(name, stage="previous")
    assert previous.text == old and previous["port"] == "5432"
    assert previous.version == str(int(result.version) - 1)
    assert _raw_payload(raw, secret_id, previous.version) == old.encode()
    assert _raw_ids(raw) == {secret_id: {} if secret_id == name else {"secretkit-name": name}}


def test_rotating_a_one_member_json_secret_keeps_its_shape(
    store: SecretStore, raw: sm.SecretManagerServiceClient
) -> None:
    _raw_create(raw, "api_token", b'{"password": "old"}')
    store.rotate("api_token")
    new = json.loads(_raw_payload(raw, "api_token"))
    assert list(new) == ["password"] and new["password"] != "old"


# -- pydantic-settings' GCP source reads what secretkit wrote -------------------------------------------


class AppSettings(BaseSettings):
    db_password: str
    api_config: dict[str, str]
    tls_key: str | None = None
    empty_token: str | None = None


def _settings(raw: sm.SecretManagerServiceClient) -> AppSettings:
    class FromGcp(AppSettings):
        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], **sources: PydanticBaseSettingsSource
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (GoogleSecretManagerSettingsSource(settings_cls, project_id=PROJECT, secret_client=raw),)

    return FromGcp()  # type: ignore[call-arg]


def test_pydantic_settings_reads_what_secretkit_wrote(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    store.put("db_password", "s3cret wörd")  # the old framed payloads read as None here
    store.put("api_config", {"url": "https://api.example", "key": "k-1"})
    store.put("tls_key", b"\x30\x82\x01\xff")  # not UTF-8: the source's decode fails, it gives None
    store.put("empty_token", "")  # C0 80 is not UTF-8 either: None, never a wrong string
    settings = _settings(raw)
    assert settings.db_password == "s3cret wörd"
    assert settings.api_config == {"url": "https://api.example", "key": "k-1"}
    assert settings.tls_key is None
    assert settings.empty_token is None


# -- DEBUG logging never shows a value ------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def debug_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Capture]:
    """Every logger at DEBUG into one handler on the root logger (what ``logging.basicConfig(level=DEBUG)``
    does), with the SDK loggers at DEBUG too. google-api-core stops the "google" logger from
    propagating the first time a client is built unless it was configured; it is made to propagate."""
    capture = _Capture()
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", logging.DEBUG)
    for name in ("google", "grpc", "urllib3"):
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "level", logging.DEBUG)
        monkeypatch.setattr(logger, "propagate", True)
        logger.manager._clear_cache()  # type: ignore[attr-defined]
    root.addHandler(capture)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        logging.getLogger().manager._clear_cache()  # type: ignore[attr-defined]


def _exercise(store: SecretStore) -> None:
    store.put("logs/text", CANARY)
    assert store.get("logs/text", refresh=True).text == CANARY
    store.put("logs/fields", {"password": CANARY})
    assert store.get("logs/fields", refresh=True)["password"] == CANARY
    store.rotate("logs/text", generate=lambda c: CANARY + "-next")
    assert store.get("logs/text", stage="previous").text == CANARY


def test_debug_logs_never_show_a_value(store: SecretStore, debug_logs: _Capture) -> None:
    _exercise(store)
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    lines = [formatter.format(r) for r in debug_logs.records]
    assert any(".secretmanager_v1." in line for line in lines)  # the client library did log at DEBUG
    encoded = base64.b64encode(CANARY.encode()).decode()[:16]
    leaks = [line for line in lines if CANARY in line or encoded in line]
    assert leaks == []


def test_structured_sdk_logs_never_show_a_value(store: SecretStore, debug_logs: _Capture) -> None:
    _exercise(store)
    formatter = client_logging.StructuredLogFormatter()
    lines = [formatter.format(r) for r in debug_logs.records]
    encoded = base64.b64encode(CANARY.encode()).decode()[:16]
    assert [line for line in lines if CANARY in line or encoded in line] == []
