"""The store side of push invalidation, without a cloud: the changes= option, EventBridge's three
delivery shapes, ARNs to names, and the consumer's life (lazy start, close, fork) over the
in-memory topic of ``secretkit.testing.changes``."""

from __future__ import annotations

import json
import os
import time

import pytest

import secretkit
from secretkit.changes import aws_events
from secretkit.changes.source import ChangeEvent
from secretkit.drivers.aws.codec import names_of_secret_id
from secretkit.drivers.memory import MemoryDriver
from secretkit.errors import ConfigError
from secretkit.policies import CachePolicy, StoreOptions
from secretkit.store import SecretStore
from secretkit.testing.changes import HearingDriver, topic

EVENT = {"version": "0", "id": "e-1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.secretsmanager",
         "region": "eu-west-1", "detail": {"eventName": "PutSecretValue", "requestParameters": {"secretId": "db"}}}


def test_vault_has_no_event_source_and_says_polling_is_the_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "t")
    with pytest.raises(ConfigError, match="vault has no change event source.*polling is the floor"):
        secretkit.open("vault://127.0.0.1:1/secret?kv_version=2&changes=sns:arn:aws:sns:eu-west-1:123456789012:t")


def test_a_malformed_option_or_unknown_prefix_is_a_config_error_before_any_io() -> None:
    with pytest.raises(ConfigError, match="PREFIX:TARGET"):
        SecretStore(HearingDriver(MemoryDriver()), options=StoreOptions(changes="no-prefix"))
    with pytest.raises(ConfigError, match="cannot hear changes from 'pubsub'.*memory:"):
        SecretStore(HearingDriver(MemoryDriver()), options=StoreOptions(changes="pubsub:projects/p/topics/t"))
    with pytest.raises(ConfigError, match="not an SNS topic ARN"):
        secretkit.open("aws-sm://?region=eu-west-1", changes="sns:my-topic")


@pytest.mark.parametrize("shape", ["bare", "sns envelope"])
def test_eventbridge_shapes(shape: str) -> None:
    body = json.dumps(EVENT)
    if shape == "sns envelope":
        body = json.dumps({"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:eu-west-1:1:t",
                           "Message": body, "Timestamp": "2026-01-01T00:00:00Z", "SignatureVersion": "1"})
    events, dropped = aws_events.parse(body, region="eu-west-1")
    assert events == (ChangeEvent("db", "changed", event_id="e-1"),) and dropped is None
    assert aws_events.parse(body, region="us-east-1")[1] == "event of region eu-west-1, the store's is us-east-1"


def test_delete_and_response_element_spellings() -> None:
    doc = {**EVENT, "detail": {"eventName": "DeleteSecret", "requestParameters": {},
                               "responseElements": {"aRN": "arn:aws:secretsmanager:eu-west-1:1:secret:db-AbCdEf"}}}
    (event,), _ = aws_events.parse(json.dumps(doc))
    assert event.kind == "deleted" and event.secret.endswith("db-AbCdEf")


def test_arns_to_names() -> None:
    assert names_of_secret_id("app/db", "eu-west-1") == ("app/db",)
    assert names_of_secret_id("arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-AbCdEf", "eu-west-1") == (
        "app/db", "app/db-AbCdEf")  # a full ARN, or a partial one of a name ending like a suffix
    assert names_of_secret_id("arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db", None) == ("app/db",)
    assert names_of_secret_id("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf", "eu-west-1") == ()


def test_the_ttl_defaults_to_an_hour_unless_the_options_name_one() -> None:
    driver = HearingDriver(MemoryDriver())
    with SecretStore(driver, options=StoreOptions(changes="memory:ttl")) as store:
        assert store.cache_policy is not None and store.cache_policy.ttl == 3600
    options = StoreOptions(changes="memory:ttl", cache=CachePolicy(ttl=60))
    with SecretStore(driver, options=options) as store:
        assert store.cache_policy is not None and store.cache_policy.ttl == 60


def test_the_consumer_starts_on_the_first_read_and_close_stops_it() -> None:
    inner = MemoryDriver()
    with SecretStore(HearingDriver(inner), options=StoreOptions(changes="memory:life")) as store:
        assert topic("life").subscribers == 0  # nothing read, nothing to keep fresh: no thread yet
        SecretStore(inner).put("db", "one")
        store.get("db")
        assert store._changes is not None and store._changes.ready.wait(5)
        assert topic("life").subscribers == 1
    assert topic("life").subscribers == 0


def test_after_fork_the_child_hears_changes_with_its_own_source() -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    inner = MemoryDriver()
    writer = SecretStore(inner)
    writer.put("db", "one")
    with SecretStore(HearingDriver(inner), options=StoreOptions(changes="memory:fork")) as store:
        store.get("db")
        assert store._changes is not None and store._changes.ready.wait(5)
        pid = os.fork()
        if pid == 0:  # the child: its first read starts its own consumer, which hears the change
            code = 1
            try:
                store.get("db")
                consumer = store._changes
                if consumer.ready.wait(5) and topic("fork").subscribers == 2:
                    writer.put("db", "two")
                    topic("fork").publish(ChangeEvent("db", "changed"))
                    deadline = time.monotonic() + 5
                    while time.monotonic() < deadline and store.get("db").text != "two":
                        time.sleep(0.02)
                    code = 0 if store.get("db").text == "two" else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
