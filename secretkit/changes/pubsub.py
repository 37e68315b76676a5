"""The ``pubsub:`` change source of gcp-sm://: Secret Manager event notifications over Pub/Sub.

* ``changes=pubsub:projects/P/topics/T``: the topic the secrets publish to (``Secret.topics``).
  The source creates a subscription of its own (``secretkit-changes-<random>`` in the topic's
  project, so every store hears every change), with an expiration policy of one day (the
  service's minimum: a process that crashed without ``close()`` leaves a subscription that
  Pub/Sub deletes after a day without pulls), and deletes it on ``close()``.
* ``changes=pubsub:projects/P/subscriptions/S``: a subscription that exists (one consumer:
  several stores sharing it would each hear only some of the changes); never deleted.

Synchronous unary Pull (one request at a time, waiting up to the consumer's bound) fits the
consumer's one thread better than the client library's streaming ``subscribe()``, which runs
a thread pool of its own. ``close()`` cancels a pull in flight, so a store closes at once.

Endpoint and credentials: ``PUBSUB_EMULATOR_HOST`` (host:port) as the client library honours
it (plaintext, no credentials: the emulator or a local double), else Google's endpoint with
google-auth's default credentials, which need ``roles/pubsub.subscriber`` (and, with a topic,
``roles/pubsub.editor`` or ``pubsub.subscriptions.create``/``delete`` on the project).
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from secretkit.changes.gcp_events import parse
from secretkit.changes.source import Delivery, EventsLost, SourceContext
from secretkit.errors import ConfigError

__all__ = ["ACK_DEADLINE", "EXPIRATION_TTL", "MAX_MESSAGES", "PubSubSource", "open_pubsub"]

#: seconds Pub/Sub waits for an ack before delivering a message again (an event is applied in
#: microseconds; a redelivery after a lost ack is a harmless duplicate)
ACK_DEADLINE = 30
#: seconds without a pull after which Pub/Sub deletes a subscription we created (its minimum)
EXPIRATION_TTL = 86400
MAX_MESSAGES = 100
#: seconds for the calls that are not long polls (create, ack, delete)
CALL_TIMEOUT = 10.0
_TOPIC = re.compile(r"projects/(?P<project>[^/]+)/topics/[^/]+")
_SUBSCRIPTION = re.compile(r"projects/[^/]+/subscriptions/[^/]+")
_FORMS = "pubsub:projects/P/topics/T or pubsub:projects/P/subscriptions/S"


def open_pubsub(context: SourceContext) -> PubSubSource:
    """The source ``changes=pubsub:…`` names (no I/O: the consumer's thread opens it)."""
    target = context.target
    if _TOPIC.fullmatch(target):
        topic: str | None = target
        m = _TOPIC.fullmatch(target)
        assert m is not None
        subscription = f"projects/{m['project']}/subscriptions/secretkit-changes-{uuid.uuid4().hex}"
    elif _SUBSCRIPTION.fullmatch(target):
        topic, subscription = None, target
    else:
        raise ConfigError(f"changes=pubsub:{target} names no Pub/Sub topic or subscription: use {_FORMS}")
    try:
        import google.pubsub_v1  # noqa: F401  (checked here: a missing extra fails at open, not in the thread)
    except ImportError:
        raise ConfigError(
            "changes=pubsub:... needs google-cloud-pubsub: pip install 'secretkit[gcp-pubsub]'"
        ) from None
    return PubSubSource(subscription, topic=topic, wait=context.wait)


def _subscriber() -> Any:
    """A Subscriber client: plaintext to ``PUBSUB_EMULATOR_HOST`` if set, else Google's endpoint."""
    import grpc
    from google.pubsub_v1 import SubscriberClient
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    from secretkit.drivers.gcp.client import GRPC_RECONNECT_OPTIONS, default_credentials, grpc_transport

    emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
    if emulator:
        channel = grpc.insecure_channel(emulator, options=list(GRPC_RECONNECT_OPTIONS))
        return SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
    credentials, _ = default_credentials()
    return SubscriberClient(transport=grpc_transport(SubscriberGrpcTransport, credentials=credentials))


class PubSubSource:
    """Pulls Secret Manager notifications from one Pub/Sub subscription (see the module docstring)."""

    def __init__(self, subscription: str, *, topic: str | None, wait: float) -> None:
        self.subscription = subscription
        #: the topic whose subscription this source creates and deletes; None: an existing one
        self.topic = topic
        self.wait = wait
        self.description = (f"Pub/Sub topic {topic} (subscription {subscription.rsplit('/', 1)[-1]})"
                            if topic else f"Pub/Sub subscription {subscription}")
        self._client: Any = None
        self._lock = threading.Lock()
        self._inflight: Any = None  # the pull in flight, cancelled by close()
        self._closed = False

    # -- ChangeSource -------------------------------------------------------------------

    def open(self) -> None:
        from google.api_core import exceptions as gexc

        with self._lock:
            if self._closed:
                return
            if self._client is None:
                self._client = _subscriber()
        if self.topic is None:
            # Fails (NotFound, PermissionDenied) until the subscription exists and may be read.
            self._client.get_subscription(request={"subscription": self.subscription}, retry=None,
                                          timeout=CALL_TIMEOUT)
            return
        try:
            self._create()
        except gexc.AlreadyExists:
            pass  # made by an earlier open() whose answer was lost

    def _create(self) -> None:
        self._client.create_subscription(
            request={
                "name": self.subscription,
                "topic": self.topic,
                "ack_deadline_seconds": ACK_DEADLINE,
                "expiration_policy": {"ttl": {"seconds": EXPIRATION_TTL}},
                "labels": {"created-by": "secretkit"},
            },
            retry=None,
            timeout=CALL_TIMEOUT,
        )

    def pull(self, timeout: float) -> Sequence[Delivery]:
        import grpc
        from google.api_core import exceptions as gexc
        from google.pubsub_v1.types import PullRequest

        request = PullRequest(subscription=self.subscription, max_messages=MAX_MESSAGES)
        routing = [("x-goog-request-params", f"subscription={self.subscription}")]  # as the client sends it
        with self._lock:
            if self._closed:
                return ()
            # The raw callable's future, not the client's blocking method: close() can cancel it.
            call = self._client.transport.pull.future(
                request, timeout=max(min(timeout, self.wait), 0.1), metadata=routing)
            self._inflight = call
        try:
            response = call.result()
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            if self._closed or code == grpc.StatusCode.CANCELLED:
                return ()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return ()  # nothing arrived within the wait
            if code == grpc.StatusCode.NOT_FOUND and self.topic is not None:
                # Ours expired (a day without pulls) or was deleted: make it again. The changes
                # published meanwhile are lost, so the cache cannot be trusted: EventsLost makes
                # the consumer drop it (the next read of each secret goes to the backend once).
                self._create()
                raise EventsLost(f"{self.subscription} was made anew") from None
            raise gexc.from_grpc_error(exc) from None  # type: ignore[no-untyped-call]
        finally:
            self._inflight = None
        return tuple(_delivery(received) for received in response.received_messages)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        ack_ids = [d.handle for d in deliveries]
        for start in range(0, len(ack_ids), 1000):  # well under Acknowledge's request size limit
            self._client.acknowledge(
                request={"subscription": self.subscription, "ack_ids": ack_ids[start:start + 1000]},
                retry=None, timeout=CALL_TIMEOUT,
            )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            client, inflight = self._client, self._inflight
        if client is None:
            return
        if inflight is not None:
            inflight.cancel()
        try:
            if self.topic is not None:
                client.delete_subscription(request={"subscription": self.subscription}, retry=None,
                                           timeout=CALL_TIMEOUT)
        except Exception:  # noqa: BLE001 - best effort: the expiration policy removes it within a day
            pass
        finally:
            client.transport.close()


def _delivery(received: Any) -> Delivery:
    message = received.message
    events, dropped = parse(dict(message.attributes), message.message_id or None)
    # The body is kept only for DEBUG logs of dropped messages (the consumer's rule); Secret
    # Manager's data is resource metadata, never a secret's value.
    body = None if events else bytes(message.data[:2000]).decode("utf-8", "replace")
    return Delivery(received.ack_id, events, dropped, body)
