"""Change notification on Kubernetes: the real client's watch against the API double.

``store.watch`` follows the API server's watch stream (no polling: the interval is an hour
here), survives compaction (410 Expired) and broken streams, and stops promptly.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

import secretkit
from secretkit.secret import Secret
from secretkit.store import SecretStore
from tests.doubles import k8s_api

NS = "watching"


@pytest.fixture(scope="module")
def api() -> Iterator[k8s_api.FakeKubeAPI]:
    with k8s_api.FakeKubeAPI() as server:
        yield server


@pytest.fixture
def store(api: k8s_api.FakeKubeAPI) -> Iterator[SecretStore]:
    with secretkit.open(f"k8s://{NS}?host={api.url}&watch_timeout=2", cache=False,
                        retry={"initial_backoff": 0.01, "max_backoff": 0.05}) as s:
        yield s


class Seen:
    def __init__(self) -> None:
        self.values: list[str] = []
        self.event = threading.Event()

    def __call__(self, secret: Secret) -> None:
        self.values.append(secret.text)
        self.event.set()

    def wait_for(self, value: str, timeout: float = 8) -> bool:
        deadline = time.monotonic() + timeout
        while value not in self.values and time.monotonic() < deadline:
            time.sleep(0.01)
        return value in self.values


def name() -> str:
    return f"app/db-{uuid.uuid4().hex[:6]}"


def test_a_change_arrives_by_the_stream(store: SecretStore) -> None:
    key, seen = name(), Seen()
    store.put(key, "v1")
    with store.watch(key, seen, interval=3600) as watcher:
        assert watcher.streaming
        time.sleep(0.2)
        started = time.monotonic()
        store.put(key, "v2")
        assert seen.wait_for("v2")
        assert time.monotonic() - started < 2  # well before the next watch request
        store.put(key, "v3")
        assert seen.wait_for("v3")
    assert seen.values == ["v2", "v3"]


def test_delete_then_recreate_reports_the_new_value(store: SecretStore) -> None:
    key, seen = name(), Seen()
    store.put(key, "old")
    with store.watch(key, seen, interval=3600):
        time.sleep(0.2)
        store.delete(key)
        store.put(key, "recreated")
        assert seen.wait_for("recreated")
    assert "old" not in seen.values


def test_compaction_mid_watch_relists_and_keeps_reporting(store: SecretStore, api: k8s_api.FakeKubeAPI) -> None:
    key, seen = name(), Seen()
    store.put(key, "v1")
    with store.watch(key, seen, interval=3600) as watcher:
        time.sleep(0.2)
        api.compact()  # the next watch request resumes from a compacted version: 410 Expired
        time.sleep(2.5)  # the current watch request ends (watch_timeout=2) and resumes
        store.put(key, "after-compaction")
        assert seen.wait_for("after-compaction")
        assert watcher.errors == 0  # the driver re-listed by itself: no failure reached the watcher


def test_broken_stream_falls_back_to_a_poll_and_resumes(store: SecretStore, api: k8s_api.FakeKubeAPI) -> None:
    key, seen = name(), Seen()
    store.put(key, "v1")
    with store.watch(key, seen, interval=3600) as watcher:
        time.sleep(0.2)
        api.fail_next(500, count=3, reason="InternalError")  # the next watch/list requests fail
        time.sleep(2.5)  # the open watch request ends and the next ones hit the faults
        store.put(key, "v2")
        assert seen.wait_for("v2")
        assert watcher.errors >= 1
        store.put(key, "v3")
        assert seen.wait_for("v3")


def test_stop_is_prompt_and_reports_nothing_after(store: SecretStore) -> None:
    key, seen = name(), Seen()
    store.put(key, "v1")
    watcher = store.watch(key, seen, interval=3600)
    time.sleep(0.2)
    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 1
    assert not watcher._thread.is_alive()  # the open watch request was cut, not waited out
    store.put(key, "after-stop")
    time.sleep(0.5)
    assert seen.values == []


# -- the double's watch, through the client's own watch machinery -----------------------


def _core(api: k8s_api.FakeKubeAPI) -> Any:
    return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(kubernetes.client.Configuration(host=api.url)))


def _events(core: Any, **kwargs: Any) -> list[dict[str, Any]]:
    stream = kubernetes.watch.Watch().stream(core.list_namespaced_secret, "dbl", timeout_seconds=1, **kwargs)
    return [{"type": e["type"], "rv": e["raw_object"].get("metadata", {}).get("resourceVersion"),
             "name": e["raw_object"].get("metadata", {}).get("name")} for e in stream]


def test_double_streams_changes_from_a_resource_version(api: k8s_api.FakeKubeAPI) -> None:
    core = _core(api)
    start = core.list_namespaced_secret("dbl").metadata.resource_version
    core.create_namespaced_secret("dbl", {"metadata": {"name": "a", "labels": {"tier": "db"}}})
    core.create_namespaced_secret("dbl", {"metadata": {"name": "b"}})
    core.patch_namespaced_secret("a", "dbl", {"data": {"k": "dg=="}})
    core.delete_namespaced_secret("a", "dbl")
    seen = _events(core, resource_version=start)
    assert [(e["type"], e["name"]) for e in seen] == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert [int(e["rv"]) for e in seen] == sorted(int(e["rv"]) for e in seen)
    only_db = _events(core, resource_version=start, label_selector="tier=db")
    assert {e["name"] for e in only_db} == {"a"}
    by_name = _events(core, resource_version=start, field_selector="metadata.name=b")
    assert [(e["type"], e["name"]) for e in by_name] == [("ADDED", "b")]


def test_double_without_a_version_lists_first_and_bookmarks_at_the_end(api: k8s_api.FakeKubeAPI) -> None:
    core = _core(api)
    core.create_namespaced_secret("dbl", {"metadata": {"name": "c"}})
    seen = _events(core, field_selector="metadata.name=c", allow_watch_bookmarks=True)
    assert [e["type"] for e in seen] == ["ADDED", "BOOKMARK"]
    assert int(seen[1]["rv"]) >= int(seen[0]["rv"])


def test_double_answers_a_compacted_version_with_410(api: k8s_api.FakeKubeAPI) -> None:
    core = _core(api)
    start = core.list_namespaced_secret("dbl").metadata.resource_version
    core.create_namespaced_secret("dbl", {"metadata": {"name": "d"}})
    api.compact()
    with pytest.raises(kubernetes.client.ApiException) as info:
        _events(core, resource_version=start)
    assert info.value.status == 410




def test_a_failing_callback_does_not_end_the_watch(store: SecretStore) -> None:
    key, seen = name(), Seen()
    store.put(key, "v1")

    def flaky(secret: Secret) -> None:
        seen(secret)
        if secret.text == "v2":
            raise RuntimeError("the pool could not reconnect")

    with store.watch(key, flaky, interval=3600) as watcher:
        time.sleep(0.2)
        store.put(key, "v2")
        assert seen.wait_for("v2")
        store.put(key, "v3")
        assert seen.wait_for("v3")
        assert watcher.errors == 1


def test_polling_watch_survives_a_failing_callback(memory_store: SecretStore) -> None:
    seen = Seen()
    memory_store.put("polled/x", "v1")

    def failing(secret: Secret) -> None:
        seen(secret)
        raise RuntimeError("boom")

    with memory_store.watch("polled/x", failing, interval=0.02) as watcher:
        assert not watcher.streaming
        memory_store.put("polled/x", "v2")
        assert seen.wait_for("v2")
        memory_store.put("polled/x", "v3")
        assert seen.wait_for("v3")
