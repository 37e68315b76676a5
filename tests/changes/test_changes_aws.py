"""Push invalidation on aws-sm:// against moto: EventBridge events reach the store through SQS
and SNS, the three ways AWS delivers them, and drop exactly the cached entries they name.

moto's Secrets Manager emits no events (backends.md §8.4), so each test changes the secret with
plain boto3 and then delivers the CloudTrail-shaped event the way EventBridge would: through an
EventBridge rule with an SQS target (which moto routes), or published to the SNS topic that a
rule would target. Reads are counted at the driver (``CountingDriver``), never by mocking boto3.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from secretkit.aio import AsyncSecretStore
from secretkit.drivers.aws.driver import open_driver
from secretkit.drivers.aws.moto import REGION, aws_faithful_moto, fake_aws_env, moto_server
from secretkit.errors import NotFoundError
from secretkit.policies import StoreOptions
from secretkit.secret import Secret
from secretkit.store import SecretStore
from secretkit.testing.faultproxy import proxy_for
from secretkit.testing.spy import CountingDriver
from secretkit.url import StoreURL

moto = pytest.importorskip("moto")

SEEN_WITHIN = 3.0  # seconds: "within a second or two", with room for a loaded CI machine


@pytest.fixture
def aws() -> Iterator[None]:
    with fake_aws_env(), aws_faithful_moto(), moto.mock_aws():
        yield


def client(service: str, endpoint: str | None = None) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint)


def counted_store(changes: str, endpoint: str | None = None, **options: Any) -> SecretStore:
    """An aws-sm:// store hearing ``changes``, whose backend calls are counted."""
    query = f"aws-sm://?region={REGION}"
    url, params = StoreURL.parse(query)
    if endpoint:
        params["endpoint_url"] = endpoint
    driver = CountingDriver(open_driver(url, params))
    store = SecretStore(driver, options=StoreOptions(changes=changes, **options), url=query)
    return store


def reads(store: SecretStore) -> int:
    calls = store.driver.calls  # type: ignore[attr-defined]
    return int(calls["read"] + calls["read_many"])


def listening(store: SecretStore, name: str) -> None:
    """Read ``name`` once (which starts the consumer) and wait until the source listens."""
    store.get(name)
    consumer = store._changes
    assert consumer is not None and consumer.ready.wait(10), "the change source never became ready"
    store.get(name)  # entries loaded before it listened were dropped once


def event(operation: str, secret_id: str, *, region: str = REGION, event_id: str | None = None) -> dict[str, Any]:
    """A Secrets Manager API call as EventBridge delivers it (CloudTrail record in ``detail``)."""
    return {
        "version": "0", "id": event_id or str(uuid.uuid4()), "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.secretsmanager", "account": "123456789012", "time": "2026-01-01T00:00:00Z",
        "region": region, "resources": [],
        "detail": {
            "eventVersion": "1.08", "eventSource": "secretsmanager.amazonaws.com", "eventName": operation,
            "awsRegion": region, "requestParameters": {"secretId": secret_id},
            "responseElements": None if operation != "DeleteSecret" else {"aRN": secret_id},
        },
    }


def eventually(check: Callable[[], bool], within: float = SEEN_WITHIN) -> float:
    """Seconds until ``check()`` holds (fails the test after ``within``)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < within, f"not seen within {within}s"
        time.sleep(0.02)
    return time.monotonic() - start


def rule_to_queue(queue_name: str) -> str:
    """An EventBridge rule on Secrets Manager's events with an SQS target (as docs/caching.md sets up)."""
    sqs, events = client("sqs"), client("events")
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="secrets", EventPattern=json.dumps({
        "source": ["aws.secretsmanager"], "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventSource": ["secretsmanager.amazonaws.com"]}}))
    events.put_targets(Rule="secrets", Targets=[{"Id": "q", "Arn": arn}])
    return url


@contextlib.contextmanager
def heard_secret(queue: str, name: str) -> Iterator[tuple[SecretStore, Any, str]]:
    """A secret ``name`` holding ``one``, and a counted store that has read it and hears a new
    rule's queue (``rule_to_queue``); with the Secrets Manager client that changes the secret,
    and the secret's ARN."""
    url = rule_to_queue(queue)
    sm = client("secretsmanager")
    arn = str(sm.create_secret(Name=name, SecretString="one")["ARN"])
    with counted_store(f"sqs:{url}") as store:
        listening(store, name)
        yield store, sm, arn


def emit(body: dict[str, Any]) -> None:
    """What CloudTrail does after a Secrets Manager call: put the event on the default bus."""
    client("events").put_events(Entries=[{
        "Source": body["source"], "DetailType": body["detail-type"], "Detail": json.dumps(body["detail"])}])


# -- sqs: an EventBridge rule's queue ---------------------------------------------------------


def test_a_change_is_seen_within_seconds_with_an_hour_ttl_and_costs_one_read(aws: None) -> None:
    url = rule_to_queue("secret-events")
    sm = client("secretsmanager")
    sm.create_secret(Name="db", SecretString="one")
    with counted_store(f"sqs:{url}") as store:
        assert store.cache_policy is not None and store.cache_policy.ttl == 3600
        listening(store, "db")
        before = reads(store)
        sm.put_secret_value(SecretId="db", SecretString="two")
        assert store.get("db").text == "one"  # nobody said anything yet: the cache answers
        emit(event("PutSecretValue", "db"))
        eventually(lambda: store.get("db").text == "two")
        for _ in range(20):
            assert store.get("db").text == "two"
        assert reads(store) == before + 1
        stats = store.cache_stats()
        assert stats.events_received == 1 and stats.events_matched == 1 and stats.events_dropped == 0


def test_a_queue_named_rather_than_given_by_url(aws: None) -> None:
    rule_to_queue("by-name")
    sm = client("secretsmanager")
    sm.create_secret(Name="api", SecretString="a")
    with counted_store("sqs:by-name") as store:
        listening(store, "api")
        sm.put_secret_value(SecretId="api", SecretString="b")
        emit(event("PutSecretValue", "api"))
        eventually(lambda: store.get("api").text == "b")


@pytest.mark.parametrize("operation", ["UpdateSecret", "UpdateSecretVersionStage", "RotateSecret", "RestoreSecret"])
def test_every_changing_operation_invalidates(aws: None, operation: str) -> None:
    with heard_secret("ops", "db") as (store, sm, _):
        sm.put_secret_value(SecretId="db", SecretString="two")
        emit(event(operation, "db"))
        eventually(lambda: store.get("db").text == "two")


def test_full_and_partial_arns_name_the_secret(aws: None) -> None:
    with heard_secret("arns", "app/db") as (store, sm, arn):
        sm.put_secret_value(SecretId="app/db", SecretString="two")
        emit(event("PutSecretValue", arn))
        eventually(lambda: store.get("app/db").text == "two")
        sm.put_secret_value(SecretId="app/db", SecretString="three")
        emit(event("PutSecretValue", arn.rsplit("-", 1)[0]))  # a partial ARN: no random suffix
        eventually(lambda: store.get("app/db").text == "three")


def test_every_version_and_stage_of_the_secret_is_dropped(aws: None) -> None:
    with heard_secret("stages", "db") as (store, sm, _):
        sm.put_secret_value(SecretId="db", SecretString="two")
        assert store.get("db", stage="previous").text == "one"  # now cached, as is the current value
        sm.put_secret_value(SecretId="db", SecretString="three")
        assert store.get("db", stage="previous").text == "one"  # nobody said anything yet
        emit(event("PutSecretValue", "db"))
        eventually(lambda: store.get("db", stage="previous").text == "two")
        assert store.get("db").text == "three"


def test_foreign_events_cost_no_read(aws: None) -> None:
    with heard_secret("foreign", "db") as (store, sm, _):
        before = reads(store)
        emit(event("PutSecretValue", "someone-elses"))
        emit(event("PutSecretValue", "arn:aws:secretsmanager:eu-west-3:123456789012:secret:db-AbCdEf"))
        emit(event("GetSecretValue", "db"))  # a read changes nothing
        eventually(lambda: store.cache_stats().events_received == 3)
        time.sleep(0.1)
        assert store.get("db").text == "one"
        assert reads(store) == before
        stats = store.cache_stats()
        assert stats.events_matched == 0 and stats.events_dropped == 2  # the unknown name is no error: not cached


def test_a_delete_event_makes_the_next_read_not_found(aws: None) -> None:
    with heard_secret("deletes", "gone") as (store, sm, arn):
        sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
        emit(event("DeleteSecret", arn))

        def missing() -> bool:
            try:
                store.get("gone")
            except NotFoundError:
                return True
            return False

        eventually(missing)


def test_malformed_and_duplicated_messages_are_dropped_and_the_consumer_lives_on(
    aws: None, caplog: pytest.LogCaptureFixture,
) -> None:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="noise")["QueueUrl"]
    sm = client("secretsmanager")
    sm.create_secret(Name="db", SecretString="one")
    with counted_store(f"sqs:{url}") as store:
        listening(store, "db")
        caplog.set_level("INFO", logger="secretkit")
        for body in ["not json", "[1, 2]", json.dumps({"source": "aws.ec2", "detail": {}}),
                     json.dumps({"source": "aws.secretsmanager", "detail": "x"}),
                     json.dumps({"Type": "Notification", "TopicArn": "arn:aws:sns:x", "Message": "{broken"}),
                     "hunter2-looks-like-a-password"]:
            sqs.send_message(QueueUrl=url, MessageBody=body)
        eventually(lambda: store.cache_stats().events_dropped == 6)
        assert "hunter2" not in caplog.text  # bodies only ever at DEBUG
        sm.put_secret_value(SecretId="db", SecretString="two")
        once = json.dumps(event("PutSecretValue", "db", event_id="same"))
        sqs.send_message(QueueUrl=url, MessageBody=once)
        eventually(lambda: store.get("db").text == "two")
        before = reads(store)
        sqs.send_message(QueueUrl=url, MessageBody=once)  # SQS delivers at least once
        eventually(lambda: store.cache_stats().events_dropped == 7)
        store.get("db")
        assert reads(store) == before
        assert int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                   ["Attributes"]["ApproximateNumberOfMessages"]) == 0  # all acknowledged


# -- sns: a queue of the store's own, subscribed to the topic -----------------------------------


def test_sns_fans_out_to_every_store_one_read_each_and_close_removes_queue_and_subscription(aws: None) -> None:
    sns, sqs, sm = client("sns"), client("sqs"), client("secretsmanager")
    topic = sns.create_topic(Name="secret-changes")["TopicArn"]
    sm.create_secret(Name="db", SecretString="one")
    stores = [counted_store(f"sns:{topic}") for _ in range(3)]
    try:
        for store in stores:
            listening(store, "db")
        assert len(sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]) == 3
        queues = sqs.list_queues(QueueNamePrefix="secretkit-changes-").get("QueueUrls", [])
        assert len(queues) == 3
        policy = json.loads(sqs.get_queue_attributes(QueueUrl=queues[0], AttributeNames=["Policy"])
                            ["Attributes"]["Policy"])
        assert policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] == topic
        before = [reads(s) for s in stores]
        sm.put_secret_value(SecretId="db", SecretString="two")
        sns.publish(TopicArn=topic, Message=json.dumps(event("PutSecretValue", "db")))  # envelope (raw off)
        for store in stores:
            eventually(lambda: store.get("db").text == "two")
        assert [reads(s) - b for s, b in zip(stores, before)] == [1, 1, 1]
    finally:
        for store in stores:
            store.close()
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    assert sqs.list_queues(QueueNamePrefix="secretkit-changes-").get("QueueUrls", []) == []


def test_sns_raw_message_delivery_to_a_queue_is_understood(aws: None) -> None:
    sns, sqs, sm = client("sns"), client("sqs"), client("secretsmanager")
    topic = sns.create_topic(Name="raw")["TopicArn"]
    url = sqs.create_queue(QueueName="raw-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    sm.create_secret(Name="db", SecretString="one")
    with counted_store(f"sqs:{url}") as store:
        listening(store, "db")
        sm.put_secret_value(SecretId="db", SecretString="two")
        sns.publish(TopicArn=topic, Message=json.dumps(event("PutSecretValue", "db")))
        eventually(lambda: store.get("db").text == "two")


# -- watch and the async facade ------------------------------------------------------------------


def test_watch_is_driven_by_events_not_by_its_interval(aws: None) -> None:
    url = rule_to_queue("watch")
    sm = client("secretsmanager")
    sm.create_secret(Name="db", SecretString="one")
    seen: list[str] = []
    with counted_store(f"sqs:{url}") as store:
        with store.watch("db", lambda s: seen.append(s.text), interval=3600):
            assert store._changes is not None and store._changes.ready.wait(10)
            sm.put_secret_value(SecretId="db", SecretString="two")
            emit(event("PutSecretValue", "db"))
            eventually(lambda: seen == ["two"])


def test_the_async_facade_uses_the_same_consumer(aws: None) -> None:
    url = rule_to_queue("aio")
    sm = client("secretsmanager")
    sm.create_secret(Name="db", SecretString="one")

    sync = counted_store(f"sqs:{url}")  # a facade given a store leaves it open: closed below

    async def main() -> None:
        async with AsyncSecretStore(sync) as store:
            assert (await store.get("db")).text == "one"
            assert store.store._changes is not None and store.store._changes.ready.wait(10)
            watch = store.watch("db", interval=3600)
            await watch.start()
            sm.put_secret_value(SecretId="db", SecretString="two")
            emit(event("PutSecretValue", "db"))
            secret: Secret = await asyncio.wait_for(watch.__anext__(), SEEN_WITHIN)
            assert secret.text == "two"
            assert (await store.get("db")).text == "two"
            assert store.cache_stats().events_matched == 1
            await watch.aclose()

    try:
        asyncio.run(main())
    finally:
        sync.close()


# -- the queue down for a while ---------------------------------------------------------------------


def test_an_unreachable_queue_is_retried_while_reads_are_served_from_the_cache() -> None:
    with fake_aws_env(), moto_server() as endpoint, proxy_for(endpoint) as proxy:
        sm, sqs = client("secretsmanager", endpoint), client("sqs", endpoint)
        # A receive cut off by the outage may still take a message on the server side: it comes
        # back after the queue's visibility timeout (30 s by default; 1 s here, for the test's sake).
        url = sqs.create_queue(QueueName="outage", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
        sm.create_secret(Name="db", SecretString="one")
        with counted_store("sqs:outage", endpoint=proxy.url) as store:
            consumer = store._changes
            assert consumer is not None
            consumer.max_backoff = 0.5
            listening(store, "db")
            proxy.down()
            eventually(lambda: consumer.failures >= 2, within=10)
            for _ in range(5):
                assert store.get("db").text == "one"  # served from the cache
            sm.put_secret_value(SecretId="db", SecretString="two")
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event("PutSecretValue", "db")))
            proxy.pass_through()
            eventually(lambda: store.get("db").text == "two", within=10)
            assert consumer.failures == 0
