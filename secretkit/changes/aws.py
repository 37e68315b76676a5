"""The change sources of ``aws-sm://`` and ``ssm://``: ``sqs:QUEUE`` and ``sns:TOPIC_ARN``.

* ``sqs:QUEUE_URL_OR_NAME``: a queue this process owns (an EventBridge rule's target, or an SNS
  subscription): received with long polling, deleted once applied. One consumer per queue: two
  stores on one queue would each see only some of the events.
* ``sns:TOPIC_ARN``: the store creates a queue of its own (``secretkit-changes-<random>``),
  allows the topic to send to it (queue policy), subscribes it to the topic (so every process
  hears every change: fan-out), consumes it, and unsubscribes and deletes the queue on
  ``close()``. A process that dies without closing leaves both behind (the queue keeps
  messages ``RETENTION`` seconds); their name prefix says what they are.

Both use the client options of the store's driver (region, endpoint_url, profile, timeouts:
the same credential chain as the store), through ``drivers/aws/common.py``. The queue is the
same for every AWS service; what differs is the events on it: ``open_sqs``/``open_sns`` read
Secrets Manager's (``aws_events``), ``open_ssm_sqs``/``open_ssm_sns`` Parameter Store's
(``ssm_events``), each ignoring the other's.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from secretkit.changes import aws_events, ssm_events
from secretkit.changes.eventbridge import Parsed
from secretkit.changes.source import Delivery, SourceContext
from secretkit.drivers.aws import common
from secretkit.errors import ConfigError

_log = logging.getLogger("secretkit.changes")

#: how long a queue of our own keeps an undelivered message (seconds): events older than the
#: cache's safety TTL are worth nothing, and a queue a crashed process left behind stays small
RETENTION = 3600
QUEUE_PREFIX = "secretkit-changes-"
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")

#: ``parse(body, region=...)``: one service's reading of a queue message (``aws_events.parse``)
Parser = Callable[..., Parsed]


def client_options(driver: Any) -> common.ClientOptions:
    """The AWS client options of the store's driver (those it was opened with; for a client
    the user passed, its region and boto3's default chain)."""
    options = getattr(driver, "client_options", None)
    if isinstance(options, common.ClientOptions):
        return common.ClientOptions(**{k: getattr(options, k) for k in common.ClientOptions.model_fields})
    region = getattr(getattr(getattr(driver, "client", None), "meta", None), "region_name", None)
    return common.ClientOptions(region=region)


class SqsSource:
    """Long-polls one SQS queue; see the module docstring."""

    def __init__(self, context: SourceContext, queue: str, parse: Parser = aws_events.parse) -> None:
        self.parse = parse
        self.options = client_options(context.driver)
        self.queue = queue
        self.queue_url: str | None = queue if queue.startswith(("https://", "http://")) else None
        self.description = f"SQS queue {queue}"
        self.wait = max(0, min(20, int(context.wait), int(self.options.read_timeout) - 1))
        self.region = self.options.region
        self.sqs: Any = None

    def _clients(self) -> None:
        if self.sqs is None:
            self.sqs = common.make_client("sqs", self.options, title="Amazon SQS")
            self.region = self.region or self.sqs.meta.region_name

    def open(self) -> None:
        self._clients()
        if self.queue_url is None:
            self.queue_url = self.sqs.get_queue_url(QueueName=self.queue)["QueueUrl"]

    def pull(self, timeout: float) -> Sequence[Delivery]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=max(0, min(self.wait, int(timeout))),
            MessageAttributeNames=["All"],
        )
        out = []
        for message in response.get("Messages", []):
            body = message.get("Body")
            events, dropped = self.parse(body, region=self.region)
            out.append(Delivery(handle=message.get("ReceiptHandle"), events=events, dropped=dropped, body=body))
        return out

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        handles = [d.handle for d in deliveries if d.handle]
        for start in range(0, len(handles), 10):
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles[start:start + 10])]
            failed = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed", [])
            if failed:  # a stale receipt handle: the message comes again and is dropped as a duplicate
                _log.debug("secretkit: %d change messages not deleted from %s", len(failed), self.description)

    def close(self) -> None:
        client, self.sqs = self.sqs, None
        if client is not None:
            client.close()


class SnsSource(SqsSource):
    """A queue of its own subscribed to an SNS topic; see the module docstring."""

    def __init__(self, context: SourceContext, topic_arn: str, parse: Parser = aws_events.parse) -> None:
        super().__init__(context, QUEUE_PREFIX + uuid.uuid4().hex[:20], parse)
        self.topic_arn = topic_arn
        self.description = f"SNS topic {topic_arn} (through SQS queue {self.queue})"
        self.sns: Any = None
        self.subscription: str | None = None

    def open(self) -> None:
        if self.subscription is not None:
            return
        self._clients()
        if self.sns is None:
            self.sns = common.make_client("sns", self.options, title="Amazon SNS")
        try:
            if self.queue_url is None:
                self.queue_url = self.sqs.create_queue(
                    QueueName=self.queue, Attributes={"MessageRetentionPeriod": str(RETENTION)})["QueueUrl"]
            arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
            queue_arn = arn["Attributes"]["QueueArn"]
            self.sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": queue_policy(queue_arn,
                                                                                                        self.topic_arn)})
            self.subscription = self.sns.subscribe(
                TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn, ReturnSubscriptionArn=True,
            )["SubscriptionArn"]
        except Exception:
            self._remove()  # nothing half-made is left behind (open is tried again from scratch)
            raise

    def close(self) -> None:
        self._remove()
        sns, self.sns = self.sns, None
        if sns is not None:
            sns.close()
        super().close()

    def _remove(self) -> None:
        """Unsubscribe and delete the queue, as far as they exist (best effort: never raises)."""
        subscription, self.subscription = self.subscription, None
        queue_url, self.queue_url = self.queue_url, None
        try:
            if subscription is not None and self.sns is not None:
                self.sns.unsubscribe(SubscriptionArn=subscription)
        except Exception as exc:  # noqa: BLE001 - best effort: the topic's deliveries then fail harmlessly
            _log.warning("secretkit: could not unsubscribe %s from %s (%s)", self.queue, self.topic_arn,
                         type(exc).__name__)
        try:
            if queue_url is not None and self.sqs is not None:
                self.sqs.delete_queue(QueueUrl=queue_url)
        except Exception as exc:  # noqa: BLE001 - best effort
            _log.warning("secretkit: could not delete the change queue %s (%s)", self.queue, type(exc).__name__)


def queue_policy(queue_arn: str, topic_arn: str) -> str:
    """The queue policy letting ``topic_arn`` (only) send to the queue."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "secretkit-changes", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        }],
    })


def open_sqs(context: SourceContext, parse: Parser = aws_events.parse) -> SqsSource:
    """``changes=sqs:QUEUE_URL_OR_NAME`` (Secrets Manager's events unless ``parse`` says otherwise)."""
    target = context.target
    if not (target.startswith(("https://", "http://")) or _QUEUE_NAME.match(target)):
        raise ConfigError(f"changes=sqs:{target!r}: not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME) "
                          "or queue name (1-80 letters, digits, - and _)")
    return SqsSource(context, target, parse)


def open_sns(context: SourceContext, parse: Parser = aws_events.parse) -> SnsSource:
    """``changes=sns:TOPIC_ARN`` (Secrets Manager's events unless ``parse`` says otherwise)."""
    if not _TOPIC_ARN.match(context.target):
        raise ConfigError(f"changes=sns:{context.target!r}: not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:TOPIC)")
    return SnsSource(context, context.target, parse)


def open_ssm_sqs(context: SourceContext) -> SqsSource:
    """``changes=sqs:QUEUE_URL_OR_NAME`` of ``ssm://``: Parameter Store's events."""
    return open_sqs(context, ssm_events.parse)


def open_ssm_sns(context: SourceContext) -> SnsSource:
    """``changes=sns:TOPIC_ARN`` of ``ssm://``: Parameter Store's events."""
    return open_sns(context, ssm_events.parse)
