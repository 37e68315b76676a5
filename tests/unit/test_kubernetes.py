"""Kubernetes-specific behaviour of k8s://, through the real client against the API double.

``KubernetesBehaviour`` holds the checks that need only the Kubernetes API itself; the
integration module runs it against a real cluster too. The other tests use the double's
controls (fault injection, request log, seeded objects).
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import kubernetes
import pytest

import secretkit
from secretkit.drivers import base
from secretkit.drivers.kubernetes import codec, config
from secretkit.drivers.kubernetes.driver import KubernetesDriver
from secretkit.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    DeadlineExceededError,
    InvalidArgumentError,
    NotSupportedError,
    PermissionDeniedError,
    ThrottledError,
    UnavailableError,
)
from secretkit.retry import RetryPolicy
from secretkit.secret import Kind
from secretkit.store import SecretStore
from secretkit.testing.spy import CountingDriver
from tests.doubles import k8s_api

FAST_RETRY = {"retry.initial_backoff": 0.01, "retry.max_backoff": 0.05}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# -- checks that run on the double and on a real cluster ------------------------------


class KubernetesBehaviour:
    """Needs fixtures ``store`` (k8s:// store), ``core`` (CoreV1Api) and ``namespace``."""

    @pytest.fixture
    def cleanup(self, core: Any, namespace: str) -> Iterator[list[str]]:
        made: list[str] = []
        yield made
        for obj in made:
            try:
                core.delete_namespaced_secret(obj, namespace)
            except kubernetes.client.ApiException:
                pass

    def _name(self, cleanup: list[str], leaf: str) -> str:
        name = f"skt-{uuid.uuid4().hex[:8]}/{leaf}"
        cleanup.append(codec.mapped(name))
        return name

    def test_object_shape(self, store: SecretStore, core: Any, namespace: str, cleanup: list[str]) -> None:
        name = self._name(cleanup, "Shape_1")
        obj = codec.mapped(name)
        store.put(name, "hello")
        raw = json.loads(core.read_namespaced_secret(obj, namespace, _preload_content=False).data)
        assert raw["type"] == "Opaque"
        assert raw["metadata"]["labels"] == {codec.MANAGED_LABEL: "true"}
        assert raw["metadata"]["annotations"] == {codec.NAME_ANNOTATION: name}  # the name as written, nothing else
        assert raw["data"] == {"value": _b64(b"hello")}
        assert "stringData" not in raw
        store.put(name, {"user": "app", "password": "pw"})
        raw = json.loads(core.read_namespaced_secret(obj, namespace, _preload_content=False).data)
        assert raw["data"] == {"user": _b64(b"app"), "password": _b64(b"pw")}  # old "value" key is gone
        store.put(name, b"\xff\x00")
        raw = json.loads(core.read_namespaced_secret(obj, namespace, _preload_content=False).data)
        assert raw["data"] == {"value": _b64(b"\xff\x00")}

    def test_conflict_and_already_exists_are_told_apart(self, store: SecretStore, cleanup: list[str]) -> None:
        name = self._name(cleanup, "cas")
        v1 = store.put(name, "one", create_only=True).version
        with pytest.raises(AlreadyExistsError):
            store.put(name, "two", create_only=True)
        v2 = store.put(name, "two", if_version=v1).version
        assert v2 != v1
        with pytest.raises(ConflictError):
            store.put(name, "three", if_version=v1)
        assert store.get(name).text == "two"
        assert store.driver.current_version(name) == v2  # type: ignore[attr-defined]

    def test_every_value_comes_back_through_the_view_it_was_put_with(
        self, store: SecretStore, cleanup: list[str]
    ) -> None:
        name = self._name(cleanup, "views")
        for value in ({"value": "x"}, {"value": ""}, {}, "", b"", {"value": "a", "other": "b"}, "value",
                      {"bin": b"\xfe\xed"}, b"\x00\xff"):
            store.put(name, value)
            got = store.get(name)
            assert got.kind is Kind.FIELDS  # what Kubernetes holds: data keys
            if isinstance(value, str):
                assert got.text == value
            elif isinstance(value, bytes):
                assert got.bytes == value
            else:
                assert {k: got.field_bytes(k) for k in value} == {
                    k: v if isinstance(v, bytes) else v.encode() for k, v in value.items()}
                assert got.fields == {k: v for k, v in value.items() if isinstance(v, str)}

    def test_kubectl_created_secret_reads_as_fields_and_is_not_listed(
        self, store: SecretStore, core: Any, namespace: str, cleanup: list[str]
    ) -> None:
        obj = f"db-{uuid.uuid4().hex[:8]}"
        cleanup.append(obj)
        # what `kubectl create secret generic db --from-literal=password=x` sends
        core.create_namespaced_secret(namespace, {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": obj}, "data": {"password": _b64(b"x")},
        })
        got = store.get(obj)
        assert got.kind is Kind.FIELDS and got.fields == {"password": "x"}
        # one key other than `value` is a map like any other: its JSON, as on AWS for the same put
        assert got.text == '{"password":"x"}' and got["password"] == "x"
        assert obj not in list(store.list())

    def test_put_over_kubectl_secret_keeps_its_metadata_and_type(
        self, store: SecretStore, core: Any, namespace: str, cleanup: list[str]
    ) -> None:
        obj = f"tls-{uuid.uuid4().hex[:8]}"
        cleanup.append(obj)
        core.create_namespaced_secret(namespace, {
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": obj, "labels": {"team": "web"}, "annotations": {"owner": "ops"}},
            "data": {"tls.crt": _b64(b"old-crt"), "tls.key": _b64(b"old-key")},
        })
        store.put(obj, {"tls.crt": "new-crt", "tls.key": "new-key"})
        raw = json.loads(core.read_namespaced_secret(obj, namespace, _preload_content=False).data)
        assert raw["type"] == "kubernetes.io/tls"
        assert raw["metadata"]["labels"] == {"team": "web"}  # nothing of ours on what we did not create
        assert raw["metadata"]["annotations"] == {"owner": "ops"}
        assert store.get(obj).fields == {"tls.crt": "new-crt", "tls.key": "new-key"}
        version = store.get(obj).version
        store.put(obj, {"tls.crt": "crt-3", "tls.key": "key-3"}, if_version=version)  # a conditional put too
        raw = json.loads(core.read_namespaced_secret(obj, namespace, _preload_content=False).data)
        assert (raw["metadata"]["labels"], raw["metadata"]["annotations"]) == ({"team": "web"}, {"owner": "ops"})
        assert obj not in list(store.list())  # list() shows the Secrets secretkit created

    def test_put_over_kubectl_secret_without_metadata_adds_none(
        self, store: SecretStore, core: Any, namespace: str, cleanup: list[str]
    ) -> None:
        obj = f"plain-{uuid.uuid4().hex[:8]}"
        cleanup.append(obj)
        core.create_namespaced_secret(namespace, {  # kubectl create secret generic plain --from-literal=k=v
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": obj}, "data": {"k": _b64(b"v")},
        })
        store.put(obj, "new")
        raw = json.loads(core.read_namespaced_secret(obj, namespace, _preload_content=False).data)
        assert raw["data"] == {"value": _b64(b"new")}
        assert not raw["metadata"].get("labels") and not raw["metadata"].get("annotations")

    @pytest.mark.parametrize(("type_", "data", "needs"), [
        ("kubernetes.io/tls", {"tls.crt": b"crt", "tls.key": b"key"}, "tls.crt and tls.key"),
        ("kubernetes.io/basic-auth", {"username": b"app", "password": b"pw"}, "username or password"),
        ("kubernetes.io/ssh-auth", {"ssh-privatekey": b"-----BEGIN KEY-----"}, "ssh-privatekey"),
        ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": b'{"auths": {}}'}, ".dockerconfigjson"),
        ("kubernetes.io/dockercfg", {".dockercfg": b"{}"}, ".dockercfg"),
    ])
    def test_text_into_a_typed_secret_is_refused_before_any_write(
        self, store: SecretStore, core: Any, namespace: str, cleanup: list[str], type_: str,
        data: dict[str, bytes], needs: str,
    ) -> None:
        obj = f"typed-{uuid.uuid4().hex[:8]}"
        cleanup.append(obj)
        core.create_namespaced_secret(namespace, {
            "apiVersion": "v1", "kind": "Secret", "type": type_, "metadata": {"name": obj},
            "data": {k: _b64(v) for k, v in data.items()},
        })
        before = json.loads(core.read_namespaced_secret(obj, namespace, _preload_content=False).data)
        for value in ("new-text", b"new-bytes", {"other": "x"}):
            with pytest.raises(InvalidArgumentError) as info:
                store.put(obj, value)
            message = str(info.value)
            assert type_ in message and needs in message and obj in message
            assert "new-" not in message
            with pytest.raises(InvalidArgumentError, match=needs):
                store.put(obj, value, if_version=before["metadata"]["resourceVersion"])
        after = json.loads(core.read_namespaced_secret(obj, namespace, _preload_content=False).data)
        assert after == before  # not written at all: same data, same resourceVersion
        store.put(obj, {k: v.decode() for k, v in data.items()})  # a mapping with the keys is fine
        assert json.loads(core.read_namespaced_secret(obj, namespace, _preload_content=False).data)["type"] == type_

    def test_immutable_secret_gives_a_clear_error(
        self, store: SecretStore, core: Any, namespace: str, cleanup: list[str]
    ) -> None:
        obj = f"frozen-{uuid.uuid4().hex[:8]}"
        cleanup.append(obj)
        core.create_namespaced_secret(namespace, {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": obj}, "immutable": True,
            "data": {"k": _b64(b"v")},
        })
        with pytest.raises(InvalidArgumentError, match="immutable") as info:
            store.put(obj, {"k": "changed"})
        assert "changed" not in str(info.value)
        assert store.get(obj).fields == {"k": "v"}
        store.delete(obj)
        store.put(obj, {"k": "changed"})  # delete + put is the way to rotate it
        assert store.get(obj).fields == {"k": "changed"}

    def test_delete_removes_the_object(self, store: SecretStore, core: Any, namespace: str, cleanup: list[str]) -> None:
        name = self._name(cleanup, "gone")
        store.put(name, "x")
        store.delete(name)
        with pytest.raises(kubernetes.client.ApiException) as info:
            core.read_namespaced_secret(codec.mapped(name), namespace)
        assert info.value.status == 404


# -- on the double -------------------------------------------------------------------


@pytest.fixture(scope="session")
def kube_api() -> k8s_api.FakeKubeAPI:
    return k8s_api.shared()


@pytest.fixture
def namespace() -> str:
    return f"ns-{uuid.uuid4().hex[:10]}"


def _open(api: k8s_api.FakeKubeAPI, namespace: str, **options: Any) -> SecretStore:
    options.setdefault("token", k8s_api.ADMIN_TOKEN)
    return secretkit.open(f"k8s://{namespace}", host=api.url, **{**FAST_RETRY, **options})


@pytest.fixture
def store(kube_api: k8s_api.FakeKubeAPI, namespace: str) -> Iterator[SecretStore]:
    with _open(kube_api, namespace) as s:
        yield s


@pytest.fixture
def core(kube_api: k8s_api.FakeKubeAPI) -> Iterator[Any]:
    cfg = kubernetes.client.Configuration(host=kube_api.url)
    cfg.api_key = {"authorization": f"Bearer {k8s_api.ADMIN_TOKEN}"}
    with kubernetes.client.ApiClient(cfg) as client:
        yield kubernetes.client.CoreV1Api(client)


class TestKubernetesOnDouble(KubernetesBehaviour):
    pass


def _new_requests(api: k8s_api.FakeKubeAPI, since: int) -> list[tuple[str, str, str, str]]:
    return api.requests[since:]


# names (the pure mapping is in test_k8s_codec.py)


def test_kubectl_names_are_used_unchanged(store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    kube_api.seed(namespace, "zabbix-db", {"password": b"x"})
    mark = len(kube_api.requests)
    assert store.get("zabbix-db")["password"] == "x"
    assert [r[:3] for r in _new_requests(kube_api, mark)] == [
        ("GET", f"/api/v1/namespaces/{namespace}/secrets/zabbix-db", "")
    ]
    store.put("zabbix-db", {"password": "y"})
    assert kube_api.stored(namespace, "zabbix-db")["data"] == {"password": _b64(b"y")}
    assert "annotations" not in kube_api.stored(namespace, "zabbix-db")["metadata"]  # nothing recorded


def test_mapped_name_needs_one_request_and_no_list(
    store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str
) -> None:
    store.put("Team/Api_Key", "v")
    obj = codec.mapped("Team/Api_Key")
    assert obj.startswith("team.api-key-") and len(obj) == len("team.api-key-") + 8
    mark = len(kube_api.requests)
    assert store.get("Team/Api_Key").text == "v"
    assert [r[:3] for r in _new_requests(kube_api, mark)] == [("GET", f"/api/v1/namespaces/{namespace}/secrets/{obj}", "")]
    assert kube_api.stored(namespace, obj)["metadata"]["annotations"] == {codec.NAME_ANNOTATION: "Team/Api_Key"}


def test_names_kubernetes_cannot_hold_are_refused_before_io(store: SecretStore) -> None:
    spy = CountingDriver(store.driver)
    counted = SecretStore(spy, options=store.options)
    for name in ("a" * 254, "UPPER-but-" + "x" * 200, "-leading-dash", "a..b" + "!"):
        for call in (lambda: counted.put(name, "v"), lambda: counted.get(name),  # noqa: B023
                     lambda: counted.delete(name)):  # noqa: B023
            with pytest.raises(InvalidArgumentError, match="DNS-1123 subdomains: at most 253 characters"):
                call()
    assert spy.total == 0
    store.put("a" * 253, "fits")  # the longest name Kubernetes holds is used as is
    assert store.get("a" * 253).text == "fits"
    assert "a" * 253 in list(store.list("aaa"))


def test_a_mapped_name_and_a_native_one_never_meet(store: SecretStore) -> None:
    for name, value in (("a/b", "slash"), ("a.b", "dot"), ("a_b", "underscore"), ("A.b", "upper")):
        store.put(name, value)
    assert [store.get(n).text for n in ("a/b", "a.b", "a_b", "A.b")] == ["slash", "dot", "underscore", "upper"]
    assert sorted(store.list("")) == ["A.b", "a.b", "a/b", "a_b"]


def test_list_shows_recorded_names_and_native_names(kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    managed = {codec.MANAGED_LABEL: "true"}
    kube_api.seed(namespace, "db", {"password": b"x"}, labels=managed)
    kube_api.seed(namespace, codec.mapped("Payments/DB_password"), {"value": b"x"}, labels=managed,
                  annotations={codec.NAME_ANNOTATION: "Payments/DB_password"})
    # a copy made with `kubectl get -o yaml | sed s/name/other/`: the annotation no longer fits
    kube_api.seed(namespace, "copied-by-hand", {"value": b"x"}, labels=managed,
                  annotations={codec.NAME_ANNOTATION: "Payments/DB_password"})
    # a name that needs no mapping is never taken from the annotation
    kube_api.seed(namespace, "plain", {"value": b"x"}, labels=managed, annotations={codec.NAME_ANNOTATION: "other"})
    with _open(kube_api, namespace) as store:
        assert list(store.list()) == ["Payments/DB_password", "copied-by-hand", "db", "plain"]
        assert list(store.list("Pay")) == ["Payments/DB_password"]


def test_capabilities_and_protocols(store: SecretStore) -> None:
    caps = KubernetesDriver.capabilities
    assert (caps.remote, caps.versions, caps.compare_and_set, caps.create_only) == (True, False, True, True)
    assert (caps.recoverable_delete, caps.idempotent_put, caps.max_value_bytes) == (False, False, codec.MAX_SECRET_BYTES)
    driver = store.driver
    assert isinstance(driver, base.NativeStages) and isinstance(driver, base.ChangeStream)
    assert isinstance(driver, base.VersionProbe) and isinstance(driver, base.SdkClient)
    assert not isinstance(driver, (base.History, base.BatchReader))
    assert store.stages == "native"
    assert KubernetesDriver.sdk_loggers == ("kubernetes", "urllib3")


def test_version_argument_is_not_supported(store: SecretStore) -> None:
    store.put("v", "x")
    with pytest.raises(NotSupportedError):
        store.get("v", version=store.get("v").version)


def test_value_key_option(kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    with _open(kube_api, namespace, value_key="password") as store:
        store.put("db", "s3cr3t")
        store.put("blob", b"\x00")
        assert store.get("db").text == "s3cr3t" and store.get("db")["password"] == "s3cr3t"
    assert kube_api.stored(namespace, "db")["data"] == {"password": _b64(b"s3cr3t")}
    assert kube_api.stored(namespace, "blob")["data"] == {"password": _b64(b"\x00")}
    with pytest.raises(ConfigError, match="value_key"):
        _open(kube_api, namespace, value_key="bad/key")



# typed Secrets that only the double can hold as kubectl would (a cluster's controllers own them)


@pytest.mark.parametrize(("type_", "data", "annotations", "needs"), [
    ("kubernetes.io/service-account-token", {"token": b"t", "ca.crt": b"c", "namespace": b"n"},
     {"kubernetes.io/service-account.name": "default"}, "token"),
    ("bootstrap.kubernetes.io/token", {"token-id": b"abcdef", "token-secret": b"0123456789abcdef"}, {},
     "token-id and token-secret"),
])
def test_controller_owned_typed_secrets_refuse_text(
    store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str, type_: str, data: dict[str, bytes],
    annotations: dict[str, str], needs: str,
) -> None:
    kube_api.seed(namespace, "typed", data, annotations=annotations, type_=type_)
    before = kube_api.stored(namespace, "typed")
    with pytest.raises(InvalidArgumentError, match=f"{type_}.*{needs}"):
        store.put("typed", "text")
    assert kube_api.stored(namespace, "typed") == before
    store.put("typed", {k: v.decode() for k, v in data.items()})
    assert kube_api.stored(namespace, "typed")["type"] == type_


# writes on the wire


def test_writes_use_strategic_merge_patch_and_create(
    store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str
) -> None:
    mark = len(kube_api.requests)
    store.put("fresh", "1")  # patch → 404 → create
    store.put("fresh", "2")  # patch
    store.put("made", "1", create_only=True)  # create
    seen = [(m, ct) for m, _, _, ct in _new_requests(kube_api, mark)]
    smp = "application/strategic-merge-patch+json"
    assert [m for m, _ in seen] == ["PATCH", "POST", "PATCH", "POST"]
    assert all(ct == smp for m, ct in seen if m == "PATCH")
    # kubernetes 37 sends POST bodies without a Content-Type; the API server reads them as JSON
    assert all(ct in ("", "application/json") for m, ct in seen if m == "POST")


def test_cas_on_missing_secret_and_bad_version_conflict(store: SecretStore) -> None:
    with pytest.raises(ConflictError):
        store.put("nothing-here", "v", if_version="12")
    store.put("here", "v")
    with pytest.raises(ConflictError):
        store.put("here", "w", if_version="not-a-version")
    assert store.get("here").text == "v"


def test_concurrent_create_and_upsert(kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    stores = [_open(kube_api, namespace) for _ in range(8)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def run(i: int) -> None:
        barrier.wait()
        try:
            stores[i].put("contended", f"v{i}")
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert stores[0].get("contended").text in {f"v{i}" for i in range(len(stores))}
    for s in stores:
        s.close()


# reading what others wrote


def test_unmanaged_objects_listed_only_when_asked(kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    kube_api.seed(namespace, "db", {"password": b"x"})
    kube_api.seed(namespace, "helm-thing", {"release": b"y"}, labels={"owner": "helm"})
    kube_api.seed(namespace, "az12", {"k": b"v"})
    with _open(kube_api, namespace) as store:
        store.put("mine", "v")
        assert list(store.list()) == ["mine"]
    with _open(kube_api, namespace, include_unmanaged=True) as store:
        assert list(store.list()) == ["az12", "db", "helm-thing", "mine"]


def test_secret_with_a_binary_key_stays_readable(kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    kube_api.seed(namespace, "keystore", {"keystore.jks": b"\xfe\xed\xfe\xed", "password": b"changeit"})
    kube_api.seed(namespace, "only-binary", {"keystore.jks": b"\xfe\xed"})
    with _open(kube_api, namespace) as store:
        got = store.get("keystore")
        assert got.fields == {"password": "changeit"}
        assert got.field_bytes("keystore.jks") == b"\xfe\xed\xfe\xed"
        with pytest.raises(KeyError, match="field_bytes"):
            got["keystore.jks"]
        with pytest.raises(InvalidArgumentError, match="keystore.jks"):
            got.text  # noqa: B018 - no text view of a binary key
        one = store.get("only-binary")
        assert one.field_bytes("keystore.jks") == b"\xfe\xed"
        with pytest.raises(InvalidArgumentError, match="keystore.jks"):
            one.bytes  # noqa: B018 - a map's octets are its JSON's, and this key is not text


def test_secrets_of_older_releases_read_and_lose_the_kind_annotation(
    kube_api: k8s_api.FakeKubeAPI, namespace: str
) -> None:
    old = {codec.LEGACY_KIND_ANNOTATION: "bytes", "owner": "ops"}
    kube_api.seed(namespace, "as-bytes", {"value": b"\x00\x01"}, annotations=old, labels={codec.MANAGED_LABEL: "true"})
    kube_api.seed(namespace, "as-text", {"value": b"abc"}, annotations={codec.LEGACY_KIND_ANNOTATION: "text"})
    with _open(kube_api, namespace) as store:
        assert store.get("as-bytes").bytes == b"\x00\x01"
        assert store.get("as-text").text == "abc"
        store.put("as-bytes", b"\x02")
    assert kube_api.stored(namespace, "as-bytes")["metadata"]["annotations"] == {"owner": "ops"}


# list paging


def test_list_pages_over_more_than_500_objects(kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    managed = {codec.MANAGED_LABEL: "true"}
    names = [f"app/item-{i:04d}" for i in range(1203)]
    for n in names:
        kube_api.seed(namespace, codec.mapped(n), {"value": b"v"}, labels=managed,
                      annotations={codec.NAME_ANNOTATION: n})
    for i in range(40):
        kube_api.seed(namespace, f"foreign-{i}", {"k": b"v"})
    mark = len(kube_api.requests)
    with _open(kube_api, namespace) as store:
        assert list(store.list("app/")) == names
        assert list(store.list("app/item-11")) == names[1100:1200]
    queries = [parse_qs(q) for m, p, q, _ in _new_requests(kube_api, mark)]
    assert len(queries) == 6  # two lists of three pages each
    selector = ["secretkit.io/managed=true,!secretkit.io/stage"]
    assert all(q["limit"] == ["500"] and q["labelSelector"] == selector for q in queries)
    assert "continue" not in queries[0] and all("continue" in q for q in queries[1:3])


def test_expired_continue_token_restarts_the_list(kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    with _open(kube_api, namespace, page_size=2) as store:
        for i in range(5):
            store.put(f"s{i}", "v")
        kube_api.fail_next(410, reason="Expired", after=1)  # the second page
        assert list(store.list()) == [f"s{i}" for i in range(5)]


# errors and retries


def test_401_is_authentication_error_after_one_call(kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    mark = len(kube_api.requests)
    with _open(kube_api, namespace, token="wrong") as store:
        with pytest.raises(AuthenticationError) as info:
            store.get("db")
    assert len(_new_requests(kube_api, mark)) == 1
    assert "Unauthorized" in str(info.value) and "wrong" not in str(info.value)


def test_403_is_permission_denied_after_one_call(kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    mark = len(kube_api.requests)
    with _open(kube_api, namespace, token=k8s_api.NOBODY_TOKEN) as store:
        with pytest.raises(PermissionDeniedError, match="cannot get resource"):
            store.get("db")
    assert len(_new_requests(kube_api, mark)) == 1


def test_503_is_retried_by_the_store(store: SecretStore, kube_api: k8s_api.FakeKubeAPI) -> None:
    store.put("flaky", "v")
    mark = len(kube_api.requests)
    kube_api.fail_next(503, 2)
    assert store.get("flaky").text == "v"
    assert len(_new_requests(kube_api, mark)) == 3


def test_puts_are_not_retried(store: SecretStore, kube_api: k8s_api.FakeKubeAPI) -> None:
    mark = len(kube_api.requests)
    kube_api.fail_next(503, 1)
    with pytest.raises(UnavailableError):
        store.put("once", "v")
    assert len(_new_requests(kube_api, mark)) == 1


def test_429_is_throttled(kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    with _open(kube_api, namespace, **{"retry.max_attempts": 1}) as store:
        kube_api.fail_next(429, reason="TooManyRequests")
        with pytest.raises(ThrottledError):
            store.get("x")


class _Listener:
    """A TCP port that accepts and then closes at once (or, with ``hang``, never answers)."""

    def __init__(self, hang: bool = False) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted = 0
        self.hang = hang
        self.held: list[socket.socket] = []
        threading.Thread(target=self._run, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.hang:
                self.held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_dropped_connections_are_not_retried_by_urllib3() -> None:
    listener = _Listener()
    try:
        with secretkit.open(f"k8s://ns?host={listener.url}", retry=RetryPolicy.none()) as store:
            with pytest.raises(UnavailableError):
                store.get("x")
        assert listener.accepted == 1
        # a client passed in gets urllib3's retries switched off as well
        client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=listener.url))
        with secretkit.open("k8s://ns", client=client, retry=RetryPolicy.none()) as store:
            with pytest.raises(UnavailableError):
                store.get("x")
        assert listener.accepted == 2
    finally:
        listener.close()


def test_connection_refused_is_unavailable() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with secretkit.open(f"k8s://ns?host=http://127.0.0.1:{port}", retry=RetryPolicy.none()) as store:
        with pytest.raises(UnavailableError, match="cannot connect"):
            store.get("x")


def test_read_timeout_is_deadline_exceeded() -> None:
    listener = _Listener(hang=True)
    try:
        with secretkit.open(f"k8s://ns?host={listener.url}&timeout=0.3", retry=RetryPolicy.none()) as store:
            with pytest.raises(DeadlineExceededError):
                store.get("x")
    finally:
        listener.close()


# configuration


def test_kubeconfig_context_gives_host_token_and_namespace(
    kube_api: k8s_api.FakeKubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "double", "cluster": {"server": kube_api.url}}],
        "users": [{"name": "admin", "user": {"token": k8s_api.ADMIN_TOKEN}},
                  {"name": "bad", "user": {"token": "bad"}}],
        "contexts": [{"name": "test", "context": {"cluster": "double", "user": "admin", "namespace": "from-context"}},
                     {"name": "other", "context": {"cluster": "double", "user": "bad"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))  # JSON is YAML
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with secretkit.open("k8s://", context="test") as store:
        store.put("via-kubeconfig", "v")
        assert store.driver.namespace == "from-context"  # type: ignore[attr-defined]
    assert kube_api.stored("from-context", "via-kubeconfig") is not None
    with secretkit.open("k8s://", retry=RetryPolicy.none()) as store:  # current context: bad token
        assert store.driver.namespace == "default"  # type: ignore[attr-defined]
        with pytest.raises(AuthenticationError):
            store.get("via-kubeconfig")


def test_in_cluster_config_reads_the_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "namespace").write_text("pod-ns\n")
    monkeypatch.setattr(config, "SERVICE_ACCOUNT_DIR", tmp_path)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with secretkit.open("k8s://") as store:
        driver = store.driver
        cfg = driver.client.api_client.configuration  # type: ignore[attr-defined]
        assert driver.namespace == "pod-ns"  # type: ignore[attr-defined]
        assert cfg.host == "https://10.0.0.1:443"
        assert cfg.ssl_ca_cert == str(tmp_path / "ca.crt")
        assert cfg.get_api_key_with_prefix("BearerToken") == "bearer sa-token"
        assert cfg.retries is False
    with secretkit.open("k8s://explicit") as store:
        assert store.driver.namespace == "explicit"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("k8s://Bad_NS", {"host": "http://x"}, "namespace"),
        ("k8s://ns/extra", {"host": "http://x"}, "namespace only"),
        ("k8s://ns", {"host": "http://x", "colour": "blue"}, "colour"),
        ("k8s://ns", {"host": "http://x", "page_size": "0"}, "page_size"),
        ("k8s://ns", {"in_cluster": "true"}, "Kubernetes client"),
        ("k8s://ns", {"host": "http://x", "pending_namespace": "Not_A_Namespace"}, "pending_namespace"),
        ("k8s://ns", {"host": "http://x", "value_key": ""}, "value_key"),
    ],
)
def test_bad_configuration(url: str, options: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch,
                           tmp_path: Path) -> None:
    monkeypatch.setattr(config, "SERVICE_ACCOUNT_DIR", tmp_path)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match=message):
        secretkit.open(url, **options)


def test_without_the_kubernetes_package_the_error_names_the_extra() -> None:
    code = ("import sys; sys.modules['kubernetes'] = None; import secretkit\n"
            "try:\n    secretkit.open('k8s://ns')\nexcept secretkit.ConfigError as exc:\n    print(exc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'secretkit[k8s]'" in done.stdout


def test_client_must_be_a_kubernetes_client() -> None:
    with pytest.raises(ConfigError, match="CoreV1Api or ApiClient"):
        secretkit.open("k8s://ns", client=object())


def test_token_is_not_shown(kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    with secretkit.open(f"k8s://{namespace}?host={kube_api.url}&token={k8s_api.ADMIN_TOKEN}") as store:
        assert k8s_api.ADMIN_TOKEN not in repr(store)
        assert k8s_api.ADMIN_TOKEN not in repr(store.driver._opts)  # type: ignore[attr-defined]


# the double itself (what the Vault Kubernetes-auth tests rely on, and reference facts)


def test_token_review(kube_api: k8s_api.FakeKubeAPI) -> None:
    kube_api.add_service_account("sa-jwt", "app", "web", audiences=["vault"])
    cfg = kubernetes.client.Configuration(host=kube_api.url)
    cfg.api_key = {"authorization": f"Bearer {k8s_api.ADMIN_TOKEN}"}
    with kubernetes.client.ApiClient(cfg) as client:
        auth = kubernetes.client.AuthenticationV1Api(client)

        def review(token: str, audiences: list[str] | None = None) -> dict[str, Any]:
            body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                    "spec": {"token": token, **({"audiences": audiences} if audiences else {})}}
            return dict(json.loads(auth.create_token_review(body, _preload_content=False).data)["status"])

        ok = review("sa-jwt", ["vault"])
        assert ok["authenticated"] is True
        assert ok["user"]["username"] == "system:serviceaccount:app:web"
        assert "system:serviceaccounts:app" in ok["user"]["groups"]
        assert ok["audiences"] == ["vault"]
        assert review("unknown")["authenticated"] is False
        assert review("sa-jwt", ["other"])["authenticated"] is False
    cfg.api_key = {"authorization": "Bearer wrong"}
    with kubernetes.client.ApiClient(cfg) as client:
        with pytest.raises(kubernetes.client.ApiException) as info:
            kubernetes.client.AuthenticationV1Api(client).create_token_review(
                {"spec": {"token": "sa-jwt"}}, _preload_content=False)
        assert info.value.status == 401


def test_double_string_data_selectors_and_statuses(core: Any, namespace: str) -> None:
    created = json.loads(core.create_namespaced_secret(namespace, {
        "metadata": {"name": "s", "labels": {"tier": "db", "env": "prod"}},
        "data": {"a": _b64(b"1"), "b": _b64(b"2")}, "stringData": {"b": "over", "c": "3"},
    }, _preload_content=False).data)
    assert created["data"] == {"a": _b64(b"1"), "b": _b64(b"over"), "c": _b64(b"3")}
    assert "stringData" not in created and created["type"] == "Opaque"

    def names(**kw: Any) -> list[str]:
        doc = json.loads(core.list_namespaced_secret(namespace, _preload_content=False, **kw).data)
        assert all("kind" not in item for item in doc["items"])
        return [i["metadata"]["name"] for i in doc["items"]]

    core.create_namespaced_secret(namespace, {"metadata": {"name": "t", "labels": {"tier": "web"}}})
    assert names(label_selector="tier in (db,cache),env!=dev") == ["s"]
    assert names(label_selector="!env") == ["t"]
    assert names(field_selector="metadata.name=t") == ["t"]
    patched = json.loads(core.patch_namespaced_secret("s", namespace, {"data": {"a": None, "d": _b64(b"4")}},
                                                      _content_type="application/merge-patch+json",
                                                      _preload_content=False).data)
    assert patched["data"] == {"b": _b64(b"over"), "c": _b64(b"3"), "d": _b64(b"4")}
    assert int(patched["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    for call, status, reason in [
        (lambda: core.read_namespaced_secret("nope", namespace), 404, "NotFound"),
        (lambda: core.create_namespaced_secret(namespace, {"metadata": {"name": "s"}}), 409, "AlreadyExists"),
        (lambda: core.replace_namespaced_secret("s", namespace, {"metadata": {"name": "s", "resourceVersion": "1"}}),
         409, "Conflict"),
        (lambda: core.create_namespaced_secret(namespace, {"metadata": {"name": "Bad"}}), 422, "Invalid"),
        (lambda: core.create_namespaced_secret(namespace, {"metadata": {"name": "k"}, "data": {"bad/key": ""}}),
         422, "Invalid"),
        (lambda: core.create_namespaced_secret(namespace, {"metadata": {"name": "k"}, "data": {"k": "%%%"}}),
         400, "BadRequest"),
        (lambda: core.list_namespaced_secret(namespace, label_selector="a in b"), 400, "BadRequest"),
        (lambda: core.create_namespaced_secret(namespace, {"metadata": {"name": "big"}, "data": {
            "a": _b64(b"x" * (codec.MAX_SECRET_BYTES // 2)), "b": _b64(b"x" * (codec.MAX_SECRET_BYTES // 2 + 1))}}),
         422, "Invalid"),
        (lambda: core.patch_namespaced_secret("s", namespace, {"type": "kubernetes.io/tls"},
                                              _content_type="application/merge-patch+json"), 422, "Invalid"),
    ]:
        with pytest.raises(kubernetes.client.ApiException) as info:
            call()
        body = json.loads(info.value.body)
        assert (info.value.status, body["kind"], body["reason"], body["code"]) == (status, "Status", reason, status)
