"""k8s:// against Kubernetes' own clients on the other side, both directions, on the API double.

"raw" is ``kubernetes.client.CoreV1Api`` used directly, as an operator, Helm or any other
program would; "kubectl" is the real ``kubectl`` binary pointed at the double with a
kubeconfig written here (skipped, with the reason shown, where it is not installed).
Every assertion about the wire is exact: the data keys and the base64 the native side sees.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

import secretkit
from secretkit.drivers.kubernetes import codec
from secretkit.errors import InvalidArgumentError
from secretkit.secret import Kind, Stage
from secretkit.store import SecretStore
from secretkit.testing.spy import CountingDriver
from tests.doubles import k8s_api

CANARY = "CANARY-k8s-interop-5e1d-never-logged"
ALL_OCTETS = bytes(range(256))
KUBECTL = shutil.which("kubectl")


def b64(raw: bytes | str) -> str:
    return base64.b64encode(raw.encode() if isinstance(raw, str) else raw).decode()


@pytest.fixture(scope="module")
def api() -> Iterator[k8s_api.FakeKubeAPI]:
    # No tokens: kubectl sends no bearer token over plain http, and auth is not under test here.
    with k8s_api.FakeKubeAPI() as server:
        yield server


@pytest.fixture
def namespace() -> str:
    return f"interop-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def store(api: k8s_api.FakeKubeAPI, namespace: str) -> Iterator[SecretStore]:
    with secretkit.open(f"k8s://{namespace}", host=api.url, cache=False) as s:
        yield s


@pytest.fixture(scope="module")
def core(api: k8s_api.FakeKubeAPI) -> Iterator[Any]:
    with kubernetes.client.ApiClient(kubernetes.client.Configuration(host=api.url)) as client:
        yield kubernetes.client.CoreV1Api(client)


def raw_secret(core: Any, namespace: str, name: str) -> dict[str, Any]:
    """The Secret exactly as the API returns it to the raw client."""
    doc: dict[str, Any] = json.loads(core.read_namespaced_secret(name, namespace, _preload_content=False).data)
    return doc


def raw_names(core: Any, namespace: str) -> list[str]:
    return sorted(item.metadata.name for item in core.list_namespaced_secret(namespace).items)


Kubectl = Callable[..., str]


@pytest.fixture
def kubectl(api: k8s_api.FakeKubeAPI, namespace: str, tmp_path: Path) -> Kubectl:
    if KUBECTL is None:
        pytest.skip("the kubectl binary is not on PATH (Debian: apt-get install kubectl)")
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "double",
        "clusters": [{"name": "double", "cluster": {"server": api.url}}],
        "users": [{"name": "tester", "user": {}}],
        "contexts": [{"name": "double", "context": {"cluster": "double", "user": "tester", "namespace": namespace}}],
    }
    (tmp_path / "kubeconfig").write_text(json.dumps(config))
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "kubeconfig"), "HOME": str(tmp_path)}

    def run(*args: str) -> str:
        done = subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


# -- secretkit writes, the raw client reads -------------------------------------------------

WRITES: list[tuple[str, Any, dict[str, str]]] = [
    ("text", "s3cr3t", {"value": b64("s3cr3t")}),
    ("json-text", '{"user": "app", "password": "pw"}', {"value": b64('{"user": "app", "password": "pw"}')}),
    ("unicode-text", "pässwörd 🔑 ключ", {"value": b64("pässwörd 🔑 ключ")}),
    ("bytes", ALL_OCTETS, {"value": b64(ALL_OCTETS)}),
    ("empty-text", "", {"value": ""}),
    ("empty-bytes", b"", {"value": ""}),
    ("fields", {"username": "app", "password": "pw"}, {"username": b64("app"), "password": b64("pw")}),
    ("fields-with-octets", {"keystore.jks": b"\xfe\xed\xfe\xed", "password": "changeit"},
     {"keystore.jks": b64(b"\xfe\xed\xfe\xed"), "password": b64("changeit")}),
    ("fields-named-value", {"value": "x"}, {"value": b64("x")}),
]


@pytest.mark.parametrize(("value", "data"), [(v, d) for _, v, d in WRITES], ids=[i for i, _, _ in WRITES])
def test_secretkit_writes_data_keys_the_raw_client_sees_exactly(
    store: SecretStore, core: Any, namespace: str, value: Any, data: dict[str, str]
) -> None:
    store.put("app-secret", value)
    seen = raw_secret(core, namespace, "app-secret")
    assert seen["data"] == data
    assert seen["type"] == "Opaque" and "stringData" not in seen
    assert seen["metadata"]["labels"] == {codec.MANAGED_LABEL: "true"}
    assert "annotations" not in seen["metadata"]  # no kind marker, no name record for a native name
    typed = core.read_namespaced_secret("app-secret", namespace)  # the client's own model agrees
    assert (typed.data or {}) == data


def test_empty_fields_are_a_secret_without_data(store: SecretStore, core: Any, namespace: str) -> None:
    store.put("nothing", {})
    assert "data" not in raw_secret(core, namespace, "nothing")
    assert store.get("nothing").fields == {}


def test_a_mapped_name_is_readable_and_recorded(store: SecretStore, core: Any, namespace: str) -> None:
    store.put("payments/db-password", "s3cr3t")
    obj = codec.mapped("payments/db-password")
    assert obj == "payments.db-password-" + hashlib.sha256(b"payments/db-password").hexdigest()[:8]
    seen = raw_secret(core, namespace, obj)
    assert seen["data"] == {"value": b64("s3cr3t")}
    assert seen["metadata"]["annotations"] == {codec.NAME_ANNOTATION: "payments/db-password"}


# -- the raw client writes, secretkit reads ---------------------------------------------


def raw_create(core: Any, namespace: str, name: str, data: dict[str, bytes] | None = None, *,
               string_data: dict[str, str] | None = None, type_: str | None = None) -> None:
    body = kubernetes.client.V1Secret(
        metadata=kubernetes.client.V1ObjectMeta(name=name), type=type_, string_data=string_data,
        data={k: b64(v) for k, v in data.items()} if data is not None else None,
    )
    core.create_namespaced_secret(namespace, body)


def test_raw_db_secret_reads_as_fields(store: SecretStore, core: Any, namespace: str) -> None:
    raw_create(core, namespace, "db", string_data={"username": "app", "password": "pw"})
    got = store.get("db")
    assert got.kind is Kind.FIELDS
    assert got.fields == {"username": "app", "password": "pw"}
    assert got["password"] == "pw" and got.field_bytes("username") == b"app"
    assert json.loads(got.text) == {"username": "app", "password": "pw"}  # several fields: their JSON


@pytest.mark.parametrize(
    ("key", "raw"),
    [("password", b"s3cr3t"), ("value", "pässwörd 🔑".encode()), ("config.json", b'{"a": 1, "b": "x"}'), ("empty", b"")],
)
def test_raw_one_key_secret_reads_as_text_bytes_and_fields(
    store: SecretStore, core: Any, namespace: str, key: str, raw: bytes
) -> None:
    raw_create(core, namespace, "one-key", {key: raw})
    got = store.get("one-key")
    if key == "value":  # how k8s:// keeps text: reads as that text, as the same put does on every backend
        assert got.text == raw.decode() and got.bytes == raw
    else:  # any other one key is a map like any other: its JSON, the text AWS holds for the same put
        assert got.text == json.dumps({key: raw.decode()}, ensure_ascii=False, separators=(",", ":"))
        assert got.bytes == got.text.encode()
    assert got.fields == {key: raw.decode()}
    assert got.field_bytes(key) == raw


def test_raw_secret_with_one_binary_key(store: SecretStore, core: Any, namespace: str) -> None:
    raw_create(core, namespace, "keystore", {"keystore.p12": ALL_OCTETS})
    got = store.get("keystore")
    assert got.field_bytes("keystore.p12") == ALL_OCTETS
    assert got.fields == {}  # no text keys
    with pytest.raises(InvalidArgumentError, match="keystore.p12"):
        got.text  # noqa: B018 - not UTF-8
    with pytest.raises(InvalidArgumentError, match="keystore.p12"):
        got.bytes  # noqa: B018 - a map's octets are its JSON's: field_bytes() reads the key


def test_raw_secret_with_binary_and_text_keys(store: SecretStore, core: Any, namespace: str) -> None:
    raw_create(core, namespace, "tls-store", {"keystore.jks": b"\xfe\xed\xfe\xed", "password": b"changeit"})
    got = store.get("tls-store")
    assert got.fields == {"password": "changeit"}
    assert got.field_bytes("keystore.jks") == b"\xfe\xed\xfe\xed"
    with pytest.raises(InvalidArgumentError, match="keystore.jks"):
        got.text  # noqa: B018


def test_raw_tls_secret_and_native_names(store: SecretStore, core: Any, namespace: str) -> None:
    raw_create(core, namespace, "tls.example.com", {"tls.crt": b"CRT", "tls.key": b"KEY"}, type_="kubernetes.io/tls")
    raw_create(core, namespace, "zabbix-db", {"password": b"x"})
    raw_create(core, namespace, "1-starts-with-digit", {"k": b"v"})
    assert store.get("tls.example.com").fields == {"tls.crt": "CRT", "tls.key": "KEY"}
    assert store.get("zabbix-db").text == '{"password":"x"}'  # a map of one field: its JSON
    assert store.get("1-starts-with-digit")["k"] == "v"
    with secretkit.open(f"k8s://{namespace}", host=core.api_client.configuration.host, include_unmanaged=True) as every:
        assert list(every.list()) == ["1-starts-with-digit", "tls.example.com", "zabbix-db"]


# -- names -------------------------------------------------------------------------------


def test_list_shows_native_names_unchanged_and_mapped_names_as_written(
    store: SecretStore, core: Any, namespace: str
) -> None:
    for name in ("zabbix-db", "payments/db-password", "App_Config", "a.b"):
        store.put(name, "v")
    assert list(store.list()) == ["App_Config", "a.b", "payments/db-password", "zabbix-db"]
    assert raw_names(core, namespace) == sorted(
        ["zabbix-db", "a.b", codec.mapped("payments/db-password"), codec.mapped("App_Config")])
    assert codec.mapped("App_Config").startswith("app-config-")


def test_a_name_kubernetes_cannot_hold_is_refused_before_io(store: SecretStore) -> None:
    spy = CountingDriver(store.driver)
    counted = SecretStore(spy, options=store.options)
    for bad in ("Bad Name!", "x" * 254, "-dash-first"):
        with pytest.raises(InvalidArgumentError) as info:
            counted.put(bad, "v")
        assert codec.NAME_RULE in str(info.value)
    assert spy.total == 0


# -- rotation keeps a natively written secret's shape ---------------------------------------


def test_rotate_one_field_of_a_raw_db_secret(store: SecretStore, core: Any, namespace: str) -> None:
    raw_create(core, namespace, "db", {"username": b"app", "password": b"old-pw", "keystore.jks": b"\xfe\xed\x00"})
    store.rotate("db", field="password")
    data = raw_secret(core, namespace, "db")["data"]
    assert data["username"] == b64("app") and data["keystore.jks"] == b64(b"\xfe\xed\x00")
    new = base64.b64decode(data["password"]).decode()
    assert new != "old-pw" and len(new) >= 32
    previous = store.get("db", stage=Stage.PREVIOUS)
    assert previous["password"] == "old-pw" and previous.field_bytes("keystore.jks") == b"\xfe\xed\x00"
    assert raw_names(core, namespace) == ["db", "db.secretkit-previous"]  # no pending companion left
    assert raw_secret(core, namespace, "db.secretkit-previous")["data"] == {
        "username": b64("app"), "password": b64("old-pw"), "keystore.jks": b64(b"\xfe\xed\x00")}


def test_generated_whole_value_keeps_a_basic_auth_secrets_keys(store: SecretStore, core: Any, namespace: str) -> None:
    """A ``kubernetes.io/basic-auth`` Secret needs its ``username`` and ``password`` keys: a
    custom generator returning text (stored under one ``value`` key) or a partial map is refused
    before any write; a full map keeps the type and both keys."""
    raw_create(core, namespace, "db-auth", string_data={"username": "app", "password": "old-pw"},
               type_="kubernetes.io/basic-auth")
    before = raw_secret(core, namespace, "db-auth")
    with pytest.raises(InvalidArgumentError, match="'password', 'username'"):
        store.rotate("db-auth", generate=lambda c: "new-pw")
    with pytest.raises(InvalidArgumentError, match="'username'"):
        store.rotate("db-auth", generate=lambda c: {"password": "new-pw"})
    assert raw_secret(core, namespace, "db-auth") == before  # not even the resourceVersion moved
    assert raw_names(core, namespace) == ["db-auth"]  # and no companion was made
    store.rotate("db-auth", generate=lambda c: {**c.fields, "password": "new-pw"})
    after = raw_secret(core, namespace, "db-auth")
    assert after["type"] == "kubernetes.io/basic-auth"
    assert after["data"] == {"username": b64("app"), "password": b64("new-pw")}


def test_a_finished_rotation_leaves_no_secretkit_annotation(store: SecretStore, core: Any, namespace: str) -> None:
    """The Secret carries what its owner put there and nothing of the rotation (``kubectl
    describe`` shows annotations); what a re-run needs is kept on the previous companion."""
    raw_create(core, namespace, "db", string_data={"username": "app", "password": "old-pw"})
    core.patch_namespaced_secret("db", namespace, {"metadata": {"annotations": {"team.example/owner": "payments"}}})
    for _ in range(2):  # the second rotation replaces the first one's previous companion
        result = store.rotate("db", field="password", token=f"tok-{_}")
        assert raw_secret(core, namespace, "db")["metadata"]["annotations"] == {"team.example/owner": "payments"}
        assert result is not None
        again = store.rotate("db", field="password", token=f"tok-{_}", resume=True)  # a re-run after the end
        assert again is not None and again.already_done
    assert raw_names(core, namespace) == ["db", "db.secretkit-previous"]


# -- kubectl -----------------------------------------------------------------------------


def test_kubectl_created_secret_is_read_by_its_own_name(store: SecretStore, kubectl: Kubectl) -> None:
    kubectl("create", "secret", "generic", "zabbix-db", "--from-literal=password=x")
    got = store.get("zabbix-db")
    assert got["password"] == "x" and got.text == '{"password":"x"}'
    assert "zabbix-db" not in list(store.list())  # not secretkit's ...
    store.put("zabbix-db", {"password": "y"})
    assert "zabbix-db" not in list(store.list())  # ... and a put does not make it secretkit's
    assert kubectl("get", "secret", "zabbix-db", "-o", "jsonpath={.data.password}") == b64("y")
    assert kubectl("get", "secret", "zabbix-db", "-o", "jsonpath={.metadata.labels}{.metadata.annotations}") == ""


@pytest.mark.parametrize(
    ("value", "jsonpath", "decoded"),
    [("t0ken", "{.data.value}", b"t0ken"), ("pässwörd 🔑", "{.data.value}", "pässwörd 🔑".encode()),
     (b"\x00\xff\xfe", "{.data.value}", b"\x00\xff\xfe"), ({"password": "pw", "user": "app"}, "{.data.password}", b"pw")],
    ids=["text", "unicode", "bytes", "fields"],
)
def test_kubectl_reads_what_secretkit_wrote(
    store: SecretStore, kubectl: Kubectl, value: Any, jsonpath: str, decoded: bytes
) -> None:
    store.put("app-token", value)
    assert base64.b64decode(kubectl("get", "secret", "app-token", "-o", f"jsonpath={jsonpath}")) == decoded
    described = kubectl("describe", "secret", "app-token")
    assert "Annotations:  <none>" in described


def test_kubectl_rotate_a_kubectl_made_db_secret(
    store: SecretStore, core: Any, namespace: str, kubectl: Kubectl, tmp_path: Path
) -> None:
    (tmp_path / "keystore.jks").write_bytes(b"\xfe\xed\xfe\xed\x00\x01")
    kubectl("create", "secret", "generic", "db", "--from-literal=username=app", "--from-literal=password=old-pw",
            f"--from-file=keystore.jks={tmp_path / 'keystore.jks'}")
    store.rotate("db", field="password")
    data = raw_secret(core, namespace, "db")["data"]
    assert data["username"] == b64("app") and data["keystore.jks"] == b64(b"\xfe\xed\xfe\xed\x00\x01")
    assert base64.b64decode(data["password"]) != b"old-pw"
    assert store.get("db", stage=Stage.PREVIOUS)["password"] == "old-pw"
    listed = kubectl("get", "secrets", "-o", "name").split()
    assert not [n for n in listed if "secretkit-pending" in n]  # no pending companion after a finished rotation
    assert listed == ["secret/db", "secret/db.secretkit-previous"]
    # the label that hides companions from secretkit's list() hides them from kubectl too
    assert kubectl("get", "secrets", "-l", "!secretkit.io/stage", "-o", "name").split() == ["secret/db"]
    described = kubectl("describe", "secret", "db")
    assert "old-pw" not in described and b64("old-pw") not in described
    assert "keystore.jks:  6 bytes" in described and "username:      3 bytes" in described
    assert kubectl("get", "secret", "db", "-o", "jsonpath={.metadata.labels}") == ""  # still not secretkit's


# -- no value in the logs ------------------------------------------------------------------


def test_debug_logs_never_show_a_value(store: SecretStore, caplog: pytest.LogCaptureFixture) -> None:
    loggers = ["", "kubernetes", "urllib3", "client", "secretkit"]
    previous = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    try:
        store.put("canary-text", CANARY)
        store.put("canary-fields", {"password": CANARY, "user": "app"})
        store.put("canary-bytes", CANARY.encode())
        assert store.get("canary-text").text == CANARY
        assert store.get("canary-fields")["password"] == CANARY
        assert store.get("canary-bytes").bytes == CANARY.encode()
        store.rotate("canary-text", generate=lambda current: CANARY + "-next")
        assert store.get("canary-text", stage=Stage.PREVIOUS).text == CANARY
    finally:
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)
    assert caplog.records  # DEBUG logging really was on (urllib3 logs every request)
    for form in (CANARY, b64(CANARY), b64(CANARY + "-next")):
        assert form not in caplog.text
