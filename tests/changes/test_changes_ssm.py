"""Push invalidation on ssm:// against moto: Parameter Store's EventBridge events reach the store
through SQS and SNS and drop exactly the cached entries they name; Secrets Manager's events on the
same queue cost an ssm:// store nothing, and Parameter Store's cost an aws-sm:// store nothing.

moto's Parameter Store emits no events, so each test changes the parameter with plain boto3 and
then delivers the event the way EventBridge would: put on the default bus, where a rule with an
SQS target (which moto routes) picks it up, or published to the SNS topic a rule would target.
The event's shape (``Parameter Store Change``) is from AWS's documentation as remembered
(secretkit/changes/ssm_events.py). Reads are counted at the driver (``CountingDriver``).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from secretkit.changes import ssm_events
from secretkit.drivers.aws.moto import REGION, aws_faithful_moto, fake_aws_env
from secretkit.drivers.ssm.driver import open_driver
from secretkit.errors import NotFoundError
from secretkit.policies import StoreOptions
from secretkit.store import SecretStore
from secretkit.testing.spy import CountingDriver
from secretkit.url import StoreURL
from tests.changes.test_changes_aws import counted_store as counted_aws_store
from tests.changes.test_changes_aws import event as secrets_manager_event
from tests.changes.test_changes_aws import eventually, listening, reads

moto = pytest.importorskip("moto")

ACCOUNT = "123456789012"


@pytest.fixture
def aws() -> Iterator[None]:
    with fake_aws_env(), aws_faithful_moto(), moto.mock_aws():
        yield


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def counted_store(changes: str) -> SecretStore:
    """An ssm:// store hearing ``changes``, whose backend calls are counted."""
    query = f"ssm://?region={REGION}"
    url, params = StoreURL.parse(query)
    return SecretStore(CountingDriver(open_driver(url, params)), options=StoreOptions(changes=changes), url=query)


def arn(name: str, region: str = REGION) -> str:
    """A parameter's ARN: ``parameter/`` then the name without its leading ``/``."""
    return f"arn:aws:ssm:{region}:{ACCOUNT}:parameter/{name.lstrip('/')}"


def event(operation: str, name: str | None, *, region: str = REGION, resources: list[str] | None = None,
          event_id: str | None = None) -> dict[str, Any]:
    """A Parameter Store change as EventBridge delivers it; ``name=None`` names it by ARN only."""
    detail: dict[str, Any] = {"operation": operation, "type": "SecureString", "description": ""}
    if name is not None:
        detail["name"] = name
    return {
        "version": "0", "id": event_id or str(uuid.uuid4()), "detail-type": "Parameter Store Change",
        "source": "aws.ssm", "account": ACCOUNT, "time": "2026-01-01T00:00:00Z", "region": region,
        "resources": resources if resources is not None else [arn(name or "", region)], "detail": detail,
    }


def emit(body: dict[str, Any]) -> None:
    """What Parameter Store does after a change: put the event on the default bus."""
    client("events").put_events(Entries=[{
        "Source": body["source"], "DetailType": body["detail-type"], "Detail": json.dumps(body["detail"]),
        "Resources": body["resources"]}])


def rule_to_queue(queue_name: str) -> str:
    """The EventBridge rule docs/caching.md gives for Parameter Store, with an SQS target; it also
    takes Secrets Manager's events, as one rule for a fleet reading both would."""
    sqs, events = client("sqs"), client("events")
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="parameters", EventPattern=json.dumps({
        "source": ["aws.ssm"], "detail-type": ["Parameter Store Change"]}))
    events.put_rule(Name="secrets", EventPattern=json.dumps({"source": ["aws.secretsmanager"]}))
    for rule in ("parameters", "secrets"):
        events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue_arn}])
    return url


@contextlib.contextmanager
def heard(queue: str, stored: str, read_as: str | None = None) -> Iterator[tuple[SecretStore, Any]]:
    """A parameter ``stored`` holding ``one``, and a counted store that has read it (as
    ``read_as``, default ``stored``) and hears a new rule's queue; with the SSM client."""
    url = rule_to_queue(queue)
    ssm = client("ssm")
    ssm.put_parameter(Name=stored, Value="one", Type="SecureString")
    with counted_store(f"sqs:{url}") as store:
        listening(store, read_as or stored)
        yield store, ssm


def missing(store: SecretStore, name: str) -> bool:
    try:
        store.get(name)
    except NotFoundError:
        return True
    return False


# -- sqs: an EventBridge rule's queue ---------------------------------------------------------


def test_a_change_is_seen_within_seconds_with_an_hour_ttl_and_costs_one_read(aws: None) -> None:
    with heard("params", "/prod/db", read_as="prod/db") as (store, ssm):  # the portable spelling
        assert store.cache_policy is not None and store.cache_policy.ttl == 3600
        before = reads(store)
        ssm.put_parameter(Name="/prod/db", Value="two", Type="SecureString", Overwrite=True)
        assert store.get("prod/db").text == "one"  # nobody said anything yet: the cache answers
        emit(event("Update", "/prod/db"))
        eventually(lambda: store.get("prod/db").text == "two")
        for _ in range(20):
            assert store.get("prod/db").text == "two"
        assert reads(store) == before + 1
        stats = store.cache_stats()
        assert stats.events_received == 1 and stats.events_matched == 1 and stats.events_dropped == 0


@pytest.mark.parametrize("operation", ["Create", "LabelParameterVersion"])
def test_every_changing_operation_invalidates(aws: None, operation: str) -> None:
    with heard("ops", "/app/key") as (store, ssm):
        ssm.put_parameter(Name="/app/key", Value="two", Type="SecureString", Overwrite=True)
        emit(event(operation, "/app/key"))
        eventually(lambda: store.get("/app/key").text == "two")


@pytest.mark.parametrize(("stored", "read_as"), [("/prod/db", "prod/db"), ("/prod/db", "/prod/db"), ("db", "db")])
def test_an_event_naming_the_parameter_by_arn_only_reaches_each_spelling(aws: None, stored: str, read_as: str) -> None:
    with heard("arns", stored, read_as) as (store, ssm):
        real_arn = ssm.get_parameter(Name=stored)["Parameter"]["ARN"]
        assert real_arn == arn(stored)  # the ARN drops a hierarchical name's leading '/'
        ssm.put_parameter(Name=stored, Value="two", Type="SecureString", Overwrite=True)
        emit(event("Update", None, resources=[real_arn]))
        eventually(lambda: store.get(read_as).text == "two")


def test_a_delete_event_makes_the_next_read_not_found(aws: None) -> None:
    with heard("deletes", "/prod/gone", read_as="prod/gone") as (store, ssm):
        ssm.delete_parameter(Name="/prod/gone")
        assert store.get("prod/gone").text == "one"  # cached until the event comes
        emit(event("Delete", "/prod/gone"))
        eventually(lambda: missing(store, "prod/gone"))


def test_foreign_events_cost_no_read(aws: None) -> None:
    with heard("foreign", "/prod/db") as (store, ssm):
        before = reads(store)
        emit(event("Update", "/prod/other"))  # another parameter: not cached
        emit(event("Update", None, resources=[arn("/prod/db", "eu-west-3")]))  # another region's ARN
        # another region's event (a cross-region bus or topic forwards it as it was)
        client("sqs").send_message(QueueUrl=client("sqs").get_queue_url(QueueName="foreign")["QueueUrl"],
                                   MessageBody=json.dumps(event("Update", "/prod/db", region="eu-west-3")))
        emit(secrets_manager_event("PutSecretValue", "/prod/db"))  # Secrets Manager's, same name
        eventually(lambda: store.cache_stats().events_received == 4)
        time.sleep(0.1)
        assert store.get("/prod/db").text == "one"
        assert reads(store) == before
        stats = store.cache_stats()
        assert stats.events_matched == 0 and stats.events_dropped == 3  # the unknown name is no error: not cached


def test_an_aws_sm_store_on_the_same_queue_pays_nothing_for_parameter_events(aws: None) -> None:
    url = rule_to_queue("shared")
    sm = client("secretsmanager")
    sm.create_secret(Name="db", SecretString="one")
    with counted_aws_store(f"sqs:{url}") as store:
        listening(store, "db")
        before = reads(store)
        emit(event("Update", "db"))
        emit(event("Delete", "db"))
        eventually(lambda: store.cache_stats().events_dropped == 2)
        assert store.get("db").text == "one" and reads(store) == before


# -- sns: a queue of the store's own, subscribed to the topic -----------------------------------


def test_sns_fans_out_to_every_store_one_read_each_and_close_removes_queue_and_subscription(aws: None) -> None:
    sns, sqs, ssm = client("sns"), client("sqs"), client("ssm")
    topic = sns.create_topic(Name="parameter-changes")["TopicArn"]
    ssm.put_parameter(Name="/prod/db", Value="one", Type="SecureString")
    stores = [counted_store(f"sns:{topic}") for _ in range(2)]
    try:
        for store in stores:
            listening(store, "prod/db")
        assert len(sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]) == 2
        before = [reads(s) for s in stores]
        ssm.put_parameter(Name="/prod/db", Value="two", Type="SecureString", Overwrite=True)
        sns.publish(TopicArn=topic, Message=json.dumps(event("Update", "/prod/db")))  # envelope (raw off)
        for store in stores:
            eventually(lambda: store.get("prod/db").text == "two")
        assert [reads(s) - b for s, b in zip(stores, before)] == [1, 1]
    finally:
        for store in stores:
            store.close()
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    assert sqs.list_queues(QueueNamePrefix="secretkit-changes-").get("QueueUrls", []) == []


# -- watch ----------------------------------------------------------------------------------------


def test_watch_is_driven_by_events_not_by_its_interval(aws: None) -> None:
    url = rule_to_queue("watch")
    ssm = client("ssm")
    ssm.put_parameter(Name="/prod/db", Value="one", Type="SecureString")
    seen: list[str] = []
    with counted_store(f"sqs:{url}") as store:
        with store.watch("prod/db", lambda s: seen.append(s.text), interval=3600):
            assert store._changes is not None and store._changes.ready.wait(10)
            ssm.put_parameter(Name="/prod/db", Value="two", Type="SecureString", Overwrite=True)
            emit(event("Update", "/prod/db"))
            eventually(lambda: seen == ["two"])


# -- the parser alone -------------------------------------------------------------------------------


def test_the_parser_reads_both_shapes_and_drops_what_is_not_a_parameter_change() -> None:
    bare = event("Delete", "/prod/db", event_id="e-1")
    (found,), dropped = ssm_events.parse(json.dumps(bare), region=REGION)
    assert (found.secret, found.kind, found.event_id, dropped) == ("/prod/db", "deleted", "e-1", None)
    envelope = json.dumps({"Type": "Notification", "MessageId": "m", "TopicArn": f"arn:aws:sns:{REGION}:1:t",
                           "Message": json.dumps(event("Update", None, resources=[arn("db")]))})
    (found,), _ = ssm_events.parse(envelope, region=REGION)
    assert (found.secret, found.kind) == (arn("db"), "changed")
    later = event("SomethingNew", "/prod/db")  # an operation added later still invalidates
    assert ssm_events.parse(json.dumps(later))[0][0].kind == "changed"
    for doc, why in [
        ({**bare, "detail-type": "Parameter Store Policy Action"}, "detail-type"),
        ({**bare, "detail": {"name": "/prod/db"}}, "without an operation"),
        ({**bare, "detail": {"operation": "Update"}, "resources": []}, "naming no parameter"),
        (secrets_manager_event("PutSecretValue", "db"), "not a Parameter Store event"),
        (event("Update", "/prod/db", region="eu-west-3"), "region eu-west-3"),
    ]:
        events, dropped = ssm_events.parse(json.dumps(doc), region=REGION)
        assert events == () and dropped is not None and why in dropped, dropped


def test_event_names_map_a_name_or_arn_to_every_spelling_the_store_may_have_cached() -> None:
    from secretkit.drivers.ssm.codec import names_of_event

    assert names_of_event("/prod/db", REGION) == ("/prod/db", "prod/db")
    assert names_of_event(arn("/prod/db"), REGION) == ("/prod/db", "prod/db")
    assert names_of_event("/db", REGION) == ("/db",)  # portable "db" is the flat parameter db
    assert names_of_event(arn("db"), REGION) == ("db", "/db")  # the ARN of db and of /db are one
    assert names_of_event(arn("db"), None) == ("db", "/db")
    assert names_of_event(arn("db", "eu-west-3"), REGION) == ()
    assert names_of_event("aws-reserved", REGION) == ()
