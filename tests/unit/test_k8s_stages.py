"""Rotation stages on k8s://: companion Secrets, checked on the wire with the API double.

The rotation suite (tests/conformance/test_k8s.py) proves the protocol: crashes before and
after each step, concurrent rotators, readers. These tests pin what Kubernetes sees: where
the companions live, what they carry (never a value outside ``data``), that they vanish when
done, and how a rotation that died inside a promotion resumes.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import secretkit
from secretkit.drivers.kubernetes import codec, stages
from secretkit.errors import ConflictError, InvalidArgumentError, NotFoundError, PermissionDeniedError, RotationError
from secretkit.secret import Stage
from secretkit.store import SecretStore
from tests.doubles import k8s_api

FAST = {"retry.initial_backoff": 0.01, "retry.max_backoff": 0.05, "cache": False}


class Crash(BaseException):
    """The process dying mid-call (nothing in the library catches it)."""


@pytest.fixture(scope="module")
def kube_api() -> k8s_api.FakeKubeAPI:
    return k8s_api.shared()


@pytest.fixture
def namespace() -> str:
    return f"rot-{uuid.uuid4().hex[:10]}"


def _open(api: k8s_api.FakeKubeAPI, namespace: str, token: str = k8s_api.ADMIN_TOKEN, **options: Any) -> SecretStore:
    return secretkit.open(f"k8s://{namespace}", host=api.url, token=token, **{**FAST, **options})


@pytest.fixture
def store(kube_api: k8s_api.FakeKubeAPI, namespace: str) -> Iterator[SecretStore]:
    with _open(kube_api, namespace) as s:
        yield s


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _objects(api: k8s_api.FakeKubeAPI, namespace: str) -> dict[str, dict[str, Any]]:
    with api.state.lock:
        return {name: json.loads(json.dumps(obj)) for (ns, name), obj in api.state.objects.items() if ns == namespace}


def _no_value_outside_data(objects: dict[str, dict[str, Any]], *values: str) -> None:
    for obj in objects.values():
        shown = json.dumps(obj["metadata"])
        for value in values:
            assert value not in shown and _b64(value.encode()) not in shown


def test_a_finished_rotation_leaves_the_secret_and_its_previous_companion(
    store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str
) -> None:
    store.put("db", {"username": "app", "password": "old-pw"})
    before = kube_api.stored(namespace, "db")
    seen: list[str] = []
    result = store.rotate("db", field="password", generate=lambda current: "new-pw",
                          apply=lambda pending: seen.append(pending.version))
    objects = _objects(kube_api, namespace)
    assert sorted(objects) == ["db", "db.secretkit-previous"]  # no pending left
    secret, previous = objects["db"], objects["db.secretkit-previous"]
    assert secret["data"] == {"username": _b64(b"app"), "password": _b64(b"new-pw")}  # no extra keys
    assert not secret["metadata"].get("annotations")  # nothing of the rotation on the Secret readers see
    assert previous["data"] == before["data"]
    assert previous["type"] == "Opaque"
    assert previous["metadata"]["labels"] == {stages.STAGE_LABEL: "previous"}
    assert previous["metadata"]["annotations"] == {
        stages.COMPANION_OF: f"{namespace}/db", stages.OWNER_UID: before["metadata"]["uid"],
        stages.PREVIOUS_VERSION: before["metadata"]["resourceVersion"],
        stages.TOKEN: result.token, stages.PROMOTED: seen[0],  # how a re-run learns it is done
    }
    assert previous["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Secret", "name": "db", "uid": before["metadata"]["uid"]}]
    _no_value_outside_data(objects, "old-pw", "new-pw")
    got = store.get("db", stage=Stage.PREVIOUS)
    assert got.fields == {"username": "app", "password": "old-pw"}
    assert got.version == result.previous == before["metadata"]["resourceVersion"]
    assert store.get("db").version == result.version == secret["metadata"]["resourceVersion"]
    assert list(store.list()) == ["db"]


def test_while_a_rotation_runs_pending_is_a_companion_nobody_lists(
    store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str
) -> None:
    store.put("api-key", "current-key")
    rv = kube_api.stored(namespace, "api-key")["metadata"]["resourceVersion"]
    with pytest.raises(RotationError):
        store.rotate("api-key", generate=lambda c: "pending-key", verify=lambda p: False, token="tok-1")
    assert kube_api.stored(namespace, "api-key")["metadata"]["resourceVersion"] == rv  # untouched
    pending = kube_api.stored(namespace, "api-key.secretkit-pending")
    assert pending["data"] == {"value": _b64(b"pending-key")}
    assert pending["metadata"]["labels"] == {stages.STAGE_LABEL: "pending"}
    assert pending["metadata"]["annotations"][stages.TOKEN] == "tok-1"
    _no_value_outside_data(_objects(kube_api, namespace), "current-key", "pending-key")
    assert store.get("api-key", stage=Stage.PENDING).text == "pending-key"
    assert list(store.list()) == ["api-key"]
    with _open(kube_api, namespace, include_unmanaged=True) as everything:
        assert list(everything.list()) == ["api-key"]
    assert store.discard_pending("api-key") == pending["metadata"]["resourceVersion"]
    assert sorted(_objects(kube_api, namespace)) == ["api-key"]


def test_a_plain_put_leaves_previous_alone(store: SecretStore) -> None:
    store.put("s", "one")
    with pytest.raises(NotFoundError, match="no previous value"):
        store.get("s", stage=Stage.PREVIOUS)
    store.rotate("s", generate=lambda c: "two")
    store.put("s", "three")
    assert store.get("s").text == "three"
    assert store.get("s", stage=Stage.PREVIOUS).text == "one"


def test_delete_removes_the_companions(store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    store.put("gone", "a")
    store.rotate("gone", generate=lambda c: "b")
    with pytest.raises(RotationError):
        store.rotate("gone", generate=lambda c: "c", verify=lambda p: False)
    assert len(_objects(kube_api, namespace)) == 3
    store.delete("gone")
    assert _objects(kube_api, namespace) == {}
    store.put("gone", "new life")
    with pytest.raises(NotFoundError):
        store.get("gone", stage=Stage.PREVIOUS)


def test_mapped_names_rotate_too(store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    store.put("Payments/DB_password", "old")
    store.rotate("Payments/DB_password", generate=lambda c: "new")
    obj = codec.mapped("Payments/DB_password")
    assert sorted(_objects(kube_api, namespace)) == [obj, f"{obj}.secretkit-previous"]
    assert kube_api.stored(namespace, obj)["metadata"]["annotations"][codec.NAME_ANNOTATION] == "Payments/DB_password"
    assert store.get("Payments/DB_password", stage=Stage.PREVIOUS).text == "old"
    assert list(store.list()) == ["Payments/DB_password"]


def test_pending_in_its_own_namespace_with_rbac(kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    rotation_ns = f"{namespace}-rot"
    everything = frozenset(k8s_api.ALL_VERBS | {"watch"})
    kube_api.add_user("rotator", k8s_api.User("rotator", everything, frozenset({namespace, rotation_ns})))
    kube_api.add_user("reader", k8s_api.User("reader", frozenset({"get"}), frozenset({namespace})))
    with _open(kube_api, namespace, token="rotator", pending_namespace=rotation_ns) as rotator:
        rotator.put("db", {"password": "one"})
        rotator.rotate("db", generate=lambda c: "two")
        with pytest.raises(RotationError):
            rotator.rotate("db", generate=lambda c: "three", verify=lambda p: False)
    assert sorted(_objects(kube_api, namespace)) == ["db", "db.secretkit-previous"]
    pending = kube_api.stored(rotation_ns, f"{namespace}.db.secretkit-pending")
    assert pending["data"] == {"password": _b64(b"three")}
    assert "ownerReferences" not in pending["metadata"]  # never across namespaces
    assert pending["metadata"]["annotations"][stages.COMPANION_OF] == f"{namespace}/db"
    with _open(kube_api, namespace, token="reader", pending_namespace=rotation_ns) as reader:
        assert reader.get("db")["password"] == "two"
        assert reader.get("db", stage=Stage.PREVIOUS)["password"] == "one"
        with pytest.raises(PermissionDeniedError):
            reader.get("db", stage=Stage.PENDING)
    with _open(kube_api, namespace, token="rotator", pending_namespace=rotation_ns) as rotator:
        assert rotator.get("db", stage=Stage.PENDING)["password"] == "three"
        rotator.delete("db")
    assert _objects(kube_api, namespace) == {} and _objects(kube_api, rotation_ns) == {}


def test_a_writer_without_access_to_the_pending_namespace_can_still_delete(
    kube_api: k8s_api.FakeKubeAPI, namespace: str
) -> None:
    rotation_ns = f"{namespace}-rot"
    kube_api.add_user("app", k8s_api.User("app", None, frozenset({namespace})))
    with _open(kube_api, namespace, pending_namespace=rotation_ns) as rotator:
        rotator.put("db", "one")
        with pytest.raises(RotationError):
            rotator.rotate("db", generate=lambda c: "two", verify=lambda p: False)
    with _open(kube_api, namespace, token="app", pending_namespace=rotation_ns) as app:
        app.delete("db")  # the pending companion it cannot see stays ...
        app.put("db", "reborn")
    assert kube_api.stored(rotation_ns, f"{namespace}.db.secretkit-pending") is not None
    with _open(kube_api, namespace, pending_namespace=rotation_ns) as rotator:
        # ... and is recognised as left by the earlier Secret: the next rotation replaces it
        rotator.rotate("db", generate=lambda c: "fresh")
        assert rotator.get("db").text == "fresh"
        assert rotator.get("db", stage=Stage.PREVIOUS).text == "reborn"
    assert kube_api.stored(rotation_ns, f"{namespace}.db.secretkit-pending") is None


def test_a_foreign_secret_in_the_companions_place_is_left_alone(
    store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str
) -> None:
    kube_api.seed(namespace, "db.secretkit-pending", {"mine": b"not secretkit's"})
    store.put("db", "v")
    with pytest.raises(ConflictError, match="not made by secretkit"):
        store.rotate("db", generate=lambda c: "w")
    assert kube_api.stored(namespace, "db.secretkit-pending")["data"] == {"mine": _b64(b"not secretkit's")}
    assert store.get("db").text == "v"
    with pytest.raises(NotFoundError):
        store.get("db", stage=Stage.PENDING)  # not a companion: not read as one


def _crash_once(driver: Any, method: str, when: Any) -> None:
    """Make the driver's wire call ``method`` die once, when ``when(args, kwargs)`` is true."""
    api = driver._api
    real = getattr(api, method)
    fired = []

    def dying(*args: Any, **kwargs: Any) -> Any:
        if not fired and when(args, kwargs):
            fired.append(True)
            raise Crash(method)
        return real(*args, **kwargs)

    setattr(api, method, dying)


def test_crash_between_keeping_previous_and_the_swap_resumes(
    store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str
) -> None:
    store.put("db", {"username": "app", "password": "old"})
    _crash_once(store.driver, "patch", lambda args, kwargs: args[0] == "db")  # the swap
    with pytest.raises(Crash):
        store.rotate("db", field="password", generate=lambda c: "new", token="t1")
    assert store.get("db")["password"] == "old"  # current untouched
    assert store.get("db", stage=Stage.PREVIOUS)["password"] == "old"  # kept already
    result = store.rotate("db", field="password", generate=lambda c: "other", token="t1", resume=True)
    assert not result.already_done
    assert store.get("db").fields == {"username": "app", "password": "new"}
    assert store.get("db", stage=Stage.PREVIOUS)["password"] == "old"
    assert sorted(_objects(kube_api, namespace)) == ["db", "db.secretkit-previous"]


def test_a_put_after_a_crash_before_the_swap_is_not_taken_for_a_promotion(
    store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str
) -> None:
    """The previous companion already records the rotation, and the Secret has moved on, but
    not to the pending value: the re-run must promote, not report the rotation done."""
    store.put("db", "old")
    _crash_once(store.driver, "patch", lambda args, kwargs: args[0] == "db")
    with pytest.raises(Crash):
        store.rotate("db", generate=lambda c: "new", token="t3")
    store.put("db", "someone-elses")
    result = store.rotate("db", generate=lambda c: "other", token="t3", resume=True)
    assert not result.already_done
    assert store.get("db").text == "new" and store.get("db", stage=Stage.PREVIOUS).text == "someone-elses"
    assert sorted(_objects(kube_api, namespace)) == ["db", "db.secretkit-previous"]


def test_annotations_of_older_releases_are_honoured_then_removed(
    store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str
) -> None:
    """Older releases recorded a finished rotation on the Secret: a re-run of that rotation
    still finds it done, and the next promotion takes the annotations off."""
    kube_api.seed(namespace, "db", {"value": b"old"}, labels={codec.MANAGED_LABEL: "true"},
                  annotations={stages.TOKEN: "old-release", stages.PROMOTED: "7", "team.example/owner": "x"})
    assert store.rotate("db", generate=lambda c: "unused", token="old-release").already_done
    assert store.get("db").text == "old"
    store.rotate("db", generate=lambda c: "new")
    assert kube_api.stored(namespace, "db")["metadata"]["annotations"] == {"team.example/owner": "x"}
    assert store.get("db").text == "new" and store.get("db", stage=Stage.PREVIOUS).text == "old"


def test_crash_after_the_swap_resumes_as_done_and_cleans_up(
    store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str
) -> None:
    store.put("db", "old")
    _crash_once(store.driver, "delete_if_there", lambda args, kwargs: str(args[0]).endswith("secretkit-pending"))
    with pytest.raises(Crash):
        store.rotate("db", generate=lambda c: "new", token="t2")
    assert store.get("db").text == "new"
    assert "db.secretkit-pending" in _objects(kube_api, namespace)
    result = store.rotate("db", generate=lambda c: "other", token="t2", resume=True)
    assert result.already_done
    assert store.get("db").text == "new" and store.get("db", stage=Stage.PREVIOUS).text == "old"
    assert sorted(_objects(kube_api, namespace)) == ["db", "db.secretkit-previous"]


def test_a_lost_promote_answer_is_retried_safely(
    store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str
) -> None:
    store.put("db", "old")
    driver = store.driver
    real = driver.promote  # type: ignore[attr-defined]
    calls = []

    def promote_answer_lost(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        info = real(*args, **kwargs)
        if len(calls) == 1:
            raise ConnectionResetError("the answer was lost")  # transient: the store retries
        return info

    driver.promote = promote_answer_lost  # type: ignore[attr-defined]
    result = store.rotate("db", generate=lambda c: "new")
    assert len(calls) == 2
    assert store.get("db").text == "new" and store.get("db", stage=Stage.PREVIOUS).text == "old"
    assert store.get("db").version == result.version


def test_rotating_several_fields_needs_field(store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    kube_api.seed(namespace, "db", {"username": b"app", "password": b"pw", "keystore.jks": b"\xfe\xed"})
    with pytest.raises(InvalidArgumentError, match="field="):
        store.rotate("db")
    assert sorted(_objects(kube_api, namespace)) == ["db"]  # nothing written
    store.rotate("db", field="password")
    data = kube_api.stored(namespace, "db")["data"]
    assert data["username"] == _b64(b"app") and data["keystore.jks"] == _b64(b"\xfe\xed")
    assert data["password"] != _b64(b"pw") and len(base64.b64decode(data["password"])) >= 32


def test_deleting_the_secret_by_other_means_takes_its_previous_companion_along(
    store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str
) -> None:
    store.put("db", "one")
    store.rotate("db", generate=lambda c: "two")
    uid = kube_api.stored(namespace, "db")["metadata"]["uid"]
    assert kube_api.stored(namespace, "db.secretkit-previous")["metadata"]["ownerReferences"][0]["uid"] == uid
    with kube_api.state.lock:  # what `kubectl delete secret db` leads to: the garbage collector's work
        k8s_api._remove(kube_api.state, namespace, "db")
    assert _objects(kube_api, namespace) == {}


def test_an_immutable_secret_is_not_rotated(store: SecretStore, kube_api: k8s_api.FakeKubeAPI, namespace: str) -> None:
    kube_api.seed(namespace, "frozen", {"password": b"pw"}, immutable=True)
    with pytest.raises(InvalidArgumentError, match="immutable"):
        store.rotate("frozen", field="password")
    assert sorted(_objects(kube_api, namespace)) == ["frozen"]
