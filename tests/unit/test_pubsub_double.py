"""The Pub/Sub wire double (tests/doubles/pubsub.py) behaves like the service for what secretkit uses.

Driven through the real ``google.cloud.pubsub_v1`` clients with ``PUBSUB_EMULATOR_HOST``, as a
user points them at the emulator (wire reference §9.3).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from tests.doubles import pubsub as double

TOPIC = "projects/test-project/topics/secret-events"
SUB = "projects/test-project/subscriptions/consumer-1"


@pytest.fixture
def running() -> Iterator[double.RunningDouble]:
    run = double.start(double.PubSubModel(pull_wait=0.3))
    yield run
    run.stop()


@pytest.fixture
def clients(running: double.RunningDouble, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[pubsub_v1.PublisherClient, pubsub_v1.SubscriberClient]]:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", running.target)
    pub, sub = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    pub.create_topic(name=TOPIC)
    yield pub, sub
    sub.close()


def _subscribe(sub: pubsub_v1.SubscriberClient, name: str = SUB, **extra: Any) -> Any:
    return sub.create_subscription(request={"name": name, "topic": TOPIC, **extra})


def _pull(sub: pubsub_v1.SubscriberClient, name: str = SUB, n: int = 10, timeout: float = 5) -> list[Any]:
    return list(sub.pull(request={"subscription": name, "max_messages": n}, timeout=timeout, retry=None)
                .received_messages)


def test_published_message_reaches_every_subscription_with_its_attributes(clients: Any) -> None:
    pub, sub = clients
    _subscribe(sub)
    _subscribe(sub, SUB + "-b")
    data, attrs = double.notification("SECRET_VERSION_ADD", "projects/test-project/secrets/db", version="3")
    message_id = pub.publish(TOPIC, data, **attrs).result(timeout=5)
    for name in (SUB, SUB + "-b"):
        (got,) = _pull(sub, name)
        assert got.message.message_id == message_id
        assert dict(got.message.attributes) == {
            "eventType": "SECRET_VERSION_ADD", "dataFormat": "JSON_API_V1",
            "secretId": "projects/test-project/secrets/db",
            "versionId": "projects/test-project/secrets/db/versions/3",
        }
        assert json.loads(got.message.data)["name"] == "projects/test-project/secrets/db/versions/3"
        assert got.message.publish_time.timestamp() == pytest.approx(time.time(), abs=10)


def test_subscription_hears_only_what_is_published_after_it_exists(clients: Any) -> None:
    pub, sub = clients
    pub.publish(TOPIC, b"before").result(timeout=5)
    _subscribe(sub)
    pub.publish(TOPIC, b"after").result(timeout=5)
    assert [m.message.data for m in _pull(sub)] == [b"after"]


def test_create_subscription_defaults_and_limits(clients: Any) -> None:
    _, sub = clients
    made = _subscribe(sub)
    assert made.ack_deadline_seconds == 10
    assert made.expiration_policy.ttl.total_seconds() == 31 * 86400  # unset: 31 days
    one_day = _subscribe(sub, SUB + "-day", ack_deadline_seconds=30, expiration_policy={"ttl": {"seconds": 86400}})
    assert (one_day.ack_deadline_seconds, one_day.expiration_policy.ttl.total_seconds()) == (30, 86400)
    assert sub.get_subscription(subscription=SUB + "-day").expiration_policy.ttl.total_seconds() == 86400
    with pytest.raises(gexc.InvalidArgument):  # the minimum ttl is one day
        _subscribe(sub, SUB + "-hour", expiration_policy={"ttl": {"seconds": 3600}})
    with pytest.raises(gexc.InvalidArgument):
        _subscribe(sub, SUB + "-slow", ack_deadline_seconds=601)
    with pytest.raises(gexc.InvalidArgument):  # ids start with a letter, 3..255 characters
        _subscribe(sub, "projects/test-project/subscriptions/9lives")
    with pytest.raises(gexc.InvalidArgument):
        _subscribe(sub, "projects/test-project/subscriptions/google-owned")


def test_not_found_and_already_exists_as_the_service_answers(clients: Any) -> None:
    pub, sub = clients
    _subscribe(sub)
    with pytest.raises(gexc.AlreadyExists):
        _subscribe(sub)
    with pytest.raises(gexc.AlreadyExists):
        pub.create_topic(name=TOPIC)
    with pytest.raises(gexc.NotFound):
        sub.create_subscription(request={"name": SUB + "-x", "topic": TOPIC + "-missing"})
    with pytest.raises(gexc.NotFound):
        pub.get_topic(topic=TOPIC + "-missing")
    sub.delete_subscription(subscription=SUB)
    for call in (lambda: _pull(sub), lambda: sub.get_subscription(subscription=SUB),
                 lambda: sub.delete_subscription(subscription=SUB)):
        with pytest.raises(gexc.NotFound):
            call()


def test_pull_waits_for_a_message_then_answers_empty(clients: Any, running: double.RunningDouble) -> None:
    pub, sub = clients
    _subscribe(sub)
    started = time.monotonic()
    assert _pull(sub) == []
    assert 0.25 <= time.monotonic() - started < 2  # held open pull_wait, not answered at once
    running.model.pull_wait = 5.0
    timer = threading.Timer(0.2, lambda: pub.publish(TOPIC, b"late").result(timeout=5))
    timer.start()
    started = time.monotonic()
    assert [m.message.data for m in _pull(sub)] == [b"late"]  # answered when it came
    assert time.monotonic() - started < 2
    timer.join()


def test_pull_answers_empty_before_the_callers_deadline(clients: Any, running: double.RunningDouble) -> None:
    _, sub = clients
    _subscribe(sub)
    running.model.pull_wait = 30.0
    started = time.monotonic()
    assert _pull(sub, timeout=0.5) == []
    assert time.monotonic() - started < 1.5


def test_max_messages_and_acknowledge(clients: Any, running: double.RunningDouble) -> None:
    pub, sub = clients
    _subscribe(sub)
    for i in range(5):
        pub.publish(TOPIC, f"m{i}".encode())
    pub.stop()  # flushes the batch
    first = _pull(sub, n=3)
    assert [m.message.data for m in first] == [b"m0", b"m1", b"m2"]
    sub.acknowledge(subscription=SUB, ack_ids=[m.ack_id for m in first])
    assert [m.message.data for m in _pull(sub, n=3)] == [b"m3", b"m4"]
    assert running.model.backlog(SUB) == 2  # pulled, not acknowledged
    with pytest.raises(gexc.InvalidArgument):
        sub.pull(request={"subscription": SUB, "max_messages": 0}, retry=None)


def test_unacknowledged_message_comes_back_after_the_ack_deadline(clients: Any) -> None:
    pub, sub = clients
    _subscribe(sub)
    pub.publish(TOPIC, b"again").result(timeout=5)
    (first,) = _pull(sub)
    # Shorten the deadline to keep the test fast (10 s is the least a subscription takes).
    sub.modify_ack_deadline(subscription=SUB, ack_ids=[first.ack_id], ack_deadline_seconds=1)
    assert _pull(sub, timeout=0.5) == []  # still leased
    time.sleep(0.7)
    (second,) = _pull(sub)
    assert second.message.message_id == first.message.message_id
    assert second.ack_id != first.ack_id
    sub.acknowledge(subscription=SUB, ack_ids=[first.ack_id])  # a stale ack id changes nothing
    sub.modify_ack_deadline(subscription=SUB, ack_ids=[second.ack_id], ack_deadline_seconds=0)  # a nack
    (third,) = _pull(sub)
    sub.acknowledge(subscription=SUB, ack_ids=[third.ack_id])
    assert _pull(sub, timeout=0.5) == []


def test_unavailable_switch_and_restart_on_the_same_port(clients: Any, running: double.RunningDouble) -> None:
    pub, sub = clients
    _subscribe(sub)
    running.model.unavailable = True
    with pytest.raises(gexc.ServiceUnavailable):
        _pull(sub)
    running.model.unavailable = False
    running.stop()
    with pytest.raises(gexc.ServiceUnavailable):
        sub.get_subscription(request={"subscription": SUB}, timeout=2, retry=None)
    running.restart()
    pub.publish(TOPIC, b"back").result(timeout=10)  # the model outlived the outage
    assert [m.message.data for m in _pull(sub, timeout=10)] == [b"back"]


def test_unavailable_fails_a_waiting_pull(clients: Any, running: double.RunningDouble) -> None:
    _, sub = clients
    _subscribe(sub)
    running.model.pull_wait = 10.0
    timer = threading.Timer(0.2, lambda: setattr(running.model, "unavailable", True))
    timer.start()
    started = time.monotonic()
    with pytest.raises(gexc.ServiceUnavailable):
        _pull(sub)
    assert time.monotonic() - started < 2
    timer.join()


def test_deleted_topic_leaves_subscriptions_detached(clients: Any) -> None:
    pub, sub = clients
    _subscribe(sub)
    pub.delete_topic(topic=TOPIC)
    assert sub.get_subscription(subscription=SUB).topic == double.DELETED_TOPIC
    with pytest.raises(gexc.NotFound):
        pub.publish(TOPIC, b"x").result(timeout=5)


def test_expiration_deletes_idle_subscriptions_only(clients: Any, running: double.RunningDouble) -> None:
    _, sub = clients
    _subscribe(sub, expiration_policy={"ttl": {"seconds": 86400}})
    _subscribe(sub, SUB + "-forever", expiration_policy={})  # an empty policy never expires
    assert running.model.expire_idle(time.time() + 3600) == []
    assert running.model.expire_idle(time.time() + 86401) == [SUB]
    assert running.model.subscriptions() == [SUB + "-forever"]


def test_topic_configured_test_message_has_no_data() -> None:
    data, attrs = double.notification("TOPIC_CONFIGURED", "projects/p/secrets/s")
    assert (data, attrs) == (b"", {"eventType": "TOPIC_CONFIGURED"})
