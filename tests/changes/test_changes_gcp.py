"""gcp-sm://…?changes=pubsub:… hears Secret Manager's event notifications instead of polling.

The secrets live in the Secret Manager wire double (tests/doubles/gcp_sm.py) and are changed
with the raw Secret Manager client; the notification each change would cause is published, in
the shape Secret Manager publishes it, with the real ``google.cloud.pubsub_v1`` publisher to the
Pub/Sub wire double (tests/doubles/pubsub.py), which the store's source pulls from.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.cloud import pubsub_v1
from google.cloud import secretmanager_v1 as sm
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

import secretkit
from secretkit.changes import gcp_events
from secretkit.changes import pubsub as pubsub_source
from secretkit.changes.source import SourceContext
from secretkit.drivers.gcp import codec
from secretkit.errors import ConfigError, NotFoundError
from secretkit.store import SecretStore
from tests.doubles import gcp_sm
from tests.doubles import pubsub as double

PROJECT, NUMBER = "test-project", "123456789012"
_ids = itertools.count()


@pytest.fixture(scope="module")
def secrets() -> Iterator[gcp_sm.RunningDouble]:
    run = gcp_sm.start(gcp_sm.SecretManagerModel(PROJECT, NUMBER))
    yield run
    run.stop()


@pytest.fixture(scope="module")
def pubsub() -> Iterator[double.RunningDouble]:
    run = double.start(double.PubSubModel(pull_wait=0.5))
    yield run
    run.stop()


@pytest.fixture
def env(pubsub: double.RunningDouble, monkeypatch: pytest.MonkeyPatch) -> Iterator[double.RunningDouble]:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub.target)
    yield pubsub
    pubsub.model.unavailable = False
    pubsub.model.duplicates = False


@pytest.fixture
def raw(secrets: gcp_sm.RunningDouble) -> Iterator[sm.SecretManagerServiceClient]:
    client = sm.SecretManagerServiceClient(
        transport=SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(secrets.grpc_target)))
    yield client
    client.transport.close()


@pytest.fixture
def topic(env: double.RunningDouble) -> Iterator[str]:
    name = f"projects/{PROJECT}/topics/secret-events-{next(_ids)}"
    publisher = pubsub_v1.PublisherClient()
    publisher.create_topic(name=name)
    yield name
    publisher.stop()


@pytest.fixture
def notify(topic: str) -> Iterator[Callable[..., None]]:
    """Publish what Secret Manager publishes for an event on a secret (by its id)."""
    publisher = pubsub_v1.PublisherClient()

    def send(event: str, secret_id: str, version: str | None = None, *, project: str = NUMBER,
             location: str | None = None) -> None:
        parent = f"projects/{project}" + (f"/locations/{location}" if location else "")
        data, attributes = double.notification(event, f"{parent}/secrets/{secret_id}", version=version)
        publisher.publish(topic, data, **attributes).result(timeout=10)

    yield send
    publisher.stop()


def _open(secrets: gcp_sm.RunningDouble, changes: str, **options: Any) -> SecretStore:
    return secretkit.open(f"gcp-sm://{PROJECT}", endpoint=secrets.grpc_target, insecure=True, changes=changes,
                          **options)


@pytest.fixture
def store(secrets: gcp_sm.RunningDouble, topic: str) -> Iterator[SecretStore]:
    with _open(secrets, f"pubsub:{topic}") as s:
        yield s


def _listening(store: Any) -> None:
    """Wait until the store's consumer listens (it starts on the first read, then drops what was
    cached before it listened, so counting reads starts after this)."""
    assert store._changes.ready.wait(10), "the change consumer did not start"


def _secret(raw: sm.SecretManagerServiceClient, value: bytes = b"v1") -> str:
    secret_id = f"db-password-{next(_ids)}"
    raw.create_secret(parent=f"projects/{PROJECT}", secret_id=secret_id,
                      secret={"replication": {"automatic": {}}})
    raw.add_secret_version(parent=f"projects/{PROJECT}/secrets/{secret_id}", payload={"data": value})
    return secret_id


def _change(raw: sm.SecretManagerServiceClient, secret_id: str, value: bytes) -> str:
    added = raw.add_secret_version(parent=f"projects/{PROJECT}/secrets/{secret_id}", payload={"data": value})
    return str(added.name).rsplit("/", 1)[-1]


def _reads(secrets: gcp_sm.RunningDouble) -> int:
    return secrets.model.calls["AccessSecretVersion"]


def _until(check: Callable[[], bool], within: float = 2.0) -> float:
    """Seconds until ``check()`` holds; fails after ``within``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, f"not within {within}s"
        time.sleep(0.02)
    return time.monotonic() - started


def _text(store: SecretStore, name: str) -> str:
    return store.get(name).value.text


# -- what a store hears ------------------------------------------------------------------------


def test_a_change_is_seen_within_seconds_with_an_hour_ttl_and_one_read(
        store: SecretStore, raw: Any, secrets: gcp_sm.RunningDouble, notify: Callable[..., None]) -> None:
    assert store._cache is not None and store._cache.policy.ttl == 3600  # the safety net, not the freshness
    name = _secret(raw)
    assert _text(store, name) == "v1"
    _listening(store)
    assert _text(store, name) == "v1"
    before = _reads(secrets)
    version = _change(raw, name, b"v2")
    assert _text(store, name) == "v1"  # cached: no event yet, no read
    notify("SECRET_VERSION_ADD", name, version)
    took = _until(lambda: _text(store, name) == "v2")
    assert took < 2
    for _ in range(20):
        assert _text(store, name) == "v2"
    assert _reads(secrets) - before == 1  # exactly one backend read for the change
    stats = store.cache_stats()
    assert (stats.events_received, stats.events_matched) == (1, 1)


def test_events_for_other_secrets_projects_and_regions_cost_no_read(
        store: SecretStore, raw: Any, secrets: gcp_sm.RunningDouble, notify: Callable[..., None]) -> None:
    name, other = _secret(raw), _secret(raw)
    _text(store, name)
    _listening(store)
    _text(store, name)
    before = _reads(secrets)
    notify("SECRET_VERSION_ADD", other, "2")  # a secret this store never read
    notify("SECRET_VERSION_ADD", name, "2", project="999999999999")  # another project's secret
    notify("SECRET_VERSION_ADD", name, "2", location="europe-west1")  # a regional secret
    _until(lambda: store.cache_stats().events_received == 3)
    assert _text(store, name) == "v1"
    assert _reads(secrets) == before
    assert store.cache_stats().events_matched == 0


def test_a_delete_event_makes_the_next_read_not_found(
        store: SecretStore, raw: Any, notify: Callable[..., None]) -> None:
    name = _secret(raw)
    _text(store, name)
    _listening(store)
    _text(store, name)
    raw.delete_secret(name=f"projects/{PROJECT}/secrets/{name}")
    notify("SECRET_DELETE", name)

    def gone() -> bool:
        try:
            _text(store, name)
        except NotFoundError:
            return True
        return False

    _until(gone)


def test_a_secret_created_after_a_cached_not_found_is_seen(
        store: SecretStore, raw: Any, notify: Callable[..., None]) -> None:
    _text(store, _secret(raw))
    _listening(store)
    name = f"late-{next(_ids)}"
    with pytest.raises(NotFoundError):
        store.get(name)
    raw.create_secret(parent=f"projects/{PROJECT}", secret_id=name, secret={"replication": {"automatic": {}}})
    raw.add_secret_version(parent=f"projects/{PROJECT}/secrets/{name}", payload={"data": b"new"})
    notify("SECRET_CREATE", name)
    notify("SECRET_VERSION_ADD", name, "1")
    _until(lambda: store.exists(name))


def test_every_version_event_type_invalidates(
        store: SecretStore, raw: Any, secrets: gcp_sm.RunningDouble, notify: Callable[..., None]) -> None:
    name = _secret(raw)
    _text(store, name)
    _listening(store)
    for n, event in enumerate(["SECRET_UPDATE", "SECRET_VERSION_ENABLE", "SECRET_VERSION_DISABLE",
                               "SECRET_VERSION_DESTROY", "SECRET_ROTATE"], start=1):
        _text(store, name)
        before = _reads(secrets)
        notify(event, name, "1" if event.startswith("SECRET_VERSION") else None)
        _until(lambda: store.cache_stats().events_matched == n)
        _text(store, name)
        assert _reads(secrets) - before == 1, event


def test_a_mapped_name_is_matched(store: SecretStore, secrets: gcp_sm.RunningDouble,
                                  raw: Any, notify: Callable[..., None]) -> None:
    name = f"payments/db-{next(_ids)}.password"
    store.put(name, "v1")
    assert _text(store, name) == "v1"
    _listening(store)
    _text(store, name)
    secret_id = codec.NAMES.storage_name(name)
    assert secret_id != name
    notify("SECRET_VERSION_ADD", secret_id, _change(raw, secret_id, b"v2"))
    _until(lambda: _text(store, name) == "v2")


def test_every_store_hears_every_change_on_its_own_subscription(
        secrets: gcp_sm.RunningDouble, env: double.RunningDouble, topic: str, raw: Any,
        notify: Callable[..., None]) -> None:
    name = _secret(raw)
    stores = [_open(secrets, f"pubsub:{topic}") for _ in range(3)]
    try:
        for s in stores:
            _text(s, name)
            _listening(s)
            _text(s, name)
        subscriptions = env.model.subscriptions(topic)
        assert len(subscriptions) == 3
        for sub in subscriptions:
            meta = env.model._subs[sub].meta
            assert meta.expiration_policy.ttl.ToSeconds() == 86400
            assert sub.rsplit("/", 1)[-1].startswith("secretkit-changes-")
        before = _reads(secrets)
        notify("SECRET_VERSION_ADD", name, _change(raw, name, b"v2"))
        for s in stores:
            _until(lambda s=s: _text(s, name) == "v2")  # type: ignore[misc]
        assert _reads(secrets) - before == 3  # one per store
    finally:
        for s in stores:
            s.close()
    assert env.model.subscriptions(topic) == []  # each deleted its own on close


def test_malformed_foreign_and_duplicated_messages_are_acked_and_dropped(
        store: SecretStore, raw: Any, secrets: gcp_sm.RunningDouble, env: double.RunningDouble, topic: str,
        notify: Callable[..., None], caplog: pytest.LogCaptureFixture) -> None:
    name = _secret(raw)
    _text(store, name)
    _listening(store)
    _text(store, name)
    publisher = pubsub_v1.PublisherClient()
    bad: list[tuple[bytes, dict[str, str]]] = [
        (b"not json at all SENTINEL-BODY", {}),  # no attributes
        (b"{}", {"eventType": "SOMETHING_ELSE", "secretId": f"projects/{NUMBER}/secrets/{name}"}),
        (b"{}", {"eventType": "SECRET_UPDATE", "secretId": "not-a-resource-name"}),
        (b"{}", {"eventType": "SECRET_UPDATE", "secretId": f"projects/{NUMBER}/secrets/{name}",
                 "dataFormat": "XML"}),
        double.notification("TOPIC_CONFIGURED", f"projects/{NUMBER}/secrets/{name}"),
    ]
    with caplog.at_level(logging.INFO, logger="secretkit"):
        for data, attributes in bad:
            publisher.publish(topic, data or b"-", **attributes).result(timeout=10)
        _until(lambda: store.cache_stats().events_received == len(bad))
    assert store.cache_stats().events_dropped == len(bad)
    assert "SENTINEL-BODY" not in caplog.text  # bodies only at DEBUG
    before = _reads(secrets)
    env.model.duplicates = True  # at-least-once: the next message comes twice
    notify("SECRET_VERSION_ADD", name, _change(raw, name, b"v2"))
    _until(lambda: store.cache_stats().events_received == len(bad) + 2)
    assert _text(store, name) == "v2"
    _text(store, name)
    assert _reads(secrets) - before == 1
    stats = store.cache_stats()
    assert (stats.events_matched, stats.events_dropped) == (1, len(bad) + 1)
    (sub,) = env.model.subscriptions(topic)
    _until(lambda: env.model.backlog(sub) == 0)  # every one acknowledged, none to come back
    publisher.stop()


def test_close_deletes_the_subscription_it_made_at_once(
        secrets: gcp_sm.RunningDouble, env: double.RunningDouble, topic: str, raw: Any) -> None:
    env.model.pull_wait = 30.0  # a long poll in flight when close() comes
    try:
        store = _open(secrets, f"pubsub:{topic}")
        _text(store, _secret(raw))
        _listening(store)
        (sub,) = env.model.subscriptions(topic)
        time.sleep(0.2)
        started = time.monotonic()
        store.close()
        assert time.monotonic() - started < 2
        assert env.model.subscriptions(topic) == []
    finally:
        env.model.pull_wait = 0.5


def test_an_existing_subscription_is_used_and_kept(
        secrets: gcp_sm.RunningDouble, env: double.RunningDouble, topic: str, raw: Any,
        notify: Callable[..., None]) -> None:
    sub = f"projects/{PROJECT}/subscriptions/ops-owned-{next(_ids)}"
    subscriber = pubsub_v1.SubscriberClient()
    subscriber.create_subscription(request={"name": sub, "topic": topic})
    name = _secret(raw)
    with _open(secrets, f"pubsub:{sub}") as store:
        _text(store, name)
        _listening(store)
        assert env.model.subscriptions(topic) == [sub]  # no subscription of its own
        notify("SECRET_VERSION_ADD", name, _change(raw, name, b"v2"))
        _until(lambda: _text(store, name) == "v2")
    assert env.model.subscriptions(topic) == [sub]  # not deleted on close
    subscriber.close()


def test_pubsub_down_for_a_while_then_back(
        store: SecretStore, raw: Any, secrets: gcp_sm.RunningDouble, env: double.RunningDouble,
        notify: Callable[..., None], caplog: pytest.LogCaptureFixture) -> None:
    name = _secret(raw)
    _text(store, name)
    _listening(store)
    with caplog.at_level(logging.WARNING, logger="secretkit"):
        env.stop()
        try:
            _until(lambda: store._changes.failures >= 1, within=5)  # type: ignore[attr-defined]
            for _ in range(5):
                assert _text(store, name) == "v1"  # reads keep working from the cache
            time.sleep(0.5)
        finally:
            env.restart()
    assert "cannot reach the change events" in caplog.text
    version = _change(raw, name, b"v2")
    notify("SECRET_VERSION_ADD", name, version)
    _until(lambda: _text(store, name) == "v2", within=8)  # after the consumer's backoff


def test_an_expired_subscription_is_made_again(
        store: SecretStore, raw: Any, secrets: gcp_sm.RunningDouble, env: double.RunningDouble, topic: str, notify: Callable[..., None]) -> None:
    name = _secret(raw)
    _text(store, name)
    _listening(store)
    (sub,) = env.model.expire_idle(time.time() + 2 * 86400)  # a day without pulls (e.g. suspended)
    _until(lambda: env.model.subscriptions(topic) == [sub], within=5)
    assert _text(store, name) == "v1"
    before = _reads(secrets)
    time.sleep(0.3)
    notify("SECRET_VERSION_ADD", name, _change(raw, name, b"v2"))
    _until(lambda: _text(store, name) == "v2", within=5)
    assert _reads(secrets) - before == 1


def test_changes_missed_while_the_subscription_was_gone_are_not_served_from_the_cache(
        store: SecretStore, raw: Any, env: double.RunningDouble, topic: str) -> None:
    """Events published while our subscription did not exist never arrive: when the source makes
    it again, the store drops its cache rather than serve a value up to an hour old."""
    name = _secret(raw)
    assert _text(store, name) == "v1"
    _listening(store)
    assert _text(store, name) == "v1"  # cached, with an hour's TTL
    (sub,) = env.model.expire_idle(time.time() + 2 * 86400)
    _change(raw, name, b"v2")  # its notification is lost: nothing is published to a missing subscription
    _until(lambda: env.model.subscriptions(topic) == [sub], within=5)
    _until(lambda: _text(store, name) == "v2", within=5)


def test_watch_is_driven_by_events(store: SecretStore, raw: Any, notify: Callable[..., None]) -> None:
    name = _secret(raw)
    _text(store, name)
    seen: list[str] = []
    changed = threading.Event()

    def callback(secret: Any) -> None:
        seen.append(secret.value.text)
        if secret.value.text == "v2":
            changed.set()

    watcher = store.watch(name, callback, interval=3600)  # polling would take an hour
    _listening(store)
    time.sleep(0.3)
    started = time.monotonic()
    notify("SECRET_VERSION_ADD", name, _change(raw, name, b"v2"))
    assert changed.wait(3)
    assert time.monotonic() - started < 2
    watcher.stop()


def test_the_async_facade_hears_changes(
        secrets: gcp_sm.RunningDouble, topic: str, raw: Any, notify: Callable[..., None]) -> None:
    name = _secret(raw)

    async def main() -> None:
        async with secretkit.open_async(f"gcp-sm://{PROJECT}", endpoint=secrets.grpc_target, insecure=True,
                                        changes=f"pubsub:{topic}") as store:
            assert (await store.get(name)).value.text == "v1"
            await asyncio.to_thread(_listening, store._store)
            assert (await store.get(name)).value.text == "v1"
            notify("SECRET_VERSION_ADD", name, _change(raw, name, b"v2"))
            started = time.monotonic()
            while (await store.get(name)).value.text != "v2":
                assert time.monotonic() - started < 2
                await asyncio.sleep(0.02)

    asyncio.run(main())


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["my-topic", "projects/p/topics", "projects/p/queues/q", "projects/p/topics/t/x"])
def test_a_bad_pubsub_target_is_a_config_error_at_open(secrets: gcp_sm.RunningDouble, target: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")  # nothing listens there: no call is made
    with pytest.raises(ConfigError, match="pubsub:projects/P/topics/T"):
        _open(secrets, f"pubsub:{target}")


def test_another_prefix_names_the_one_gcp_knows(secrets: gcp_sm.RunningDouble) -> None:
    with pytest.raises(ConfigError, match="pubsub:"):
        _open(secrets, "sqs:my-queue")


def test_the_subscription_name_is_unique_and_in_the_topics_project() -> None:
    context = SourceContext(prefix="pubsub", target="projects/events-proj/topics/secrets", driver=None,
                            backend="gcp-sm")
    a, b = pubsub_source.open_pubsub(context), pubsub_source.open_pubsub(context)
    assert a.subscription != b.subscription
    assert a.subscription.startswith("projects/events-proj/subscriptions/secretkit-changes-")
    assert len(a.subscription.rsplit("/", 1)[-1]) <= 255
    assert "secretkit-changes" in a.description and "events-proj" in a.description


# -- parsing and matching ----------------------------------------------------------------------


@pytest.mark.parametrize(("event", "kind"), [
    ("SECRET_CREATE", "changed"), ("SECRET_UPDATE", "changed"), ("SECRET_DELETE", "deleted"),
    ("SECRET_VERSION_ADD", "changed"), ("SECRET_VERSION_ENABLE", "changed"),
    ("SECRET_VERSION_DISABLE", "changed"), ("SECRET_VERSION_DESTROY", "changed"),
    ("SECRET_VERSION_DESTROY_SCHEDULED", "changed"), ("SECRET_ROTATE", "changed"),
    ("SECRET_SOMETHING_NEW", "changed"),  # a future event type: one needless read, never a stale hour
])
def test_event_types_map_to_kinds(event: str, kind: str) -> None:
    _, attributes = double.notification(event, "projects/1/secrets/db", version="4")
    (found,), dropped = gcp_events.parse(attributes, "m-1")
    assert (found.kind, found.secret, found.version, found.event_id, dropped) == (
        kind, "projects/1/secrets/db", "4", "m-1", None)


def test_topic_configured_is_ignored() -> None:
    _, attributes = double.notification("TOPIC_CONFIGURED", "projects/1/secrets/db")
    events, dropped = gcp_events.parse(attributes, "m-2")
    assert events == () and dropped and "test message" in dropped


def test_event_names_match_this_project_location_and_mapped_names(secrets: gcp_sm.RunningDouble) -> None:
    with secretkit.open(f"gcp-sm://{PROJECT}", endpoint=secrets.grpc_target, insecure=True) as s:
        driver: Any = s._driver  # type: ignore[attr-defined]
        assert driver.event_names(f"projects/{PROJECT}/secrets/db") == ("db",)
        assert driver.event_names(f"projects/{NUMBER}/secrets/db") == ("db",)  # number not learnt yet
        s.put("learn-number", "x")
        s.get("learn-number")  # a response names the project by number
        assert driver.event_names(f"projects/{NUMBER}/secrets/db") == ("db",)
        assert driver.event_names("projects/999/secrets/db") == ()  # another project
        assert driver.event_names(f"projects/{PROJECT}/locations/us-east1/secrets/db") == ()
        mapped = codec.NAMES.storage_name("team/db.url")
        assert driver.event_names(f"projects/{NUMBER}/secrets/{mapped}") == (mapped, "team/db.url")
        assert driver.event_names("garbage") == ()
