"""A wire-level double of Google Cloud Pub/Sub (``google.pubsub.v1``), for the real client library.

A gRPC server on a loopback port serves ``Publisher`` (CreateTopic, GetTopic, Publish,
DeleteTopic) and ``Subscriber`` (CreateSubscription, GetSubscription, DeleteSubscription, Pull,
Acknowledge, ModifyAckDeadline) with generic handlers that (de)serialize with the client
library's own protobuf classes, so ``google.cloud.pubsub_v1`` clients talk to it through
``PUBSUB_EMULATOR_HOST`` or an explicit insecure channel (wire reference §9). StreamingPull is
not served: secretkit's consumer uses unary Pull, and a client that streams gets UNIMPLEMENTED.

What it models, as the service does: names checked against the service's grammar
(INVALID_ARGUMENT), NOT_FOUND and ALREADY_EXISTS where the service answers them, a subscription
receives the messages published after it was created, ``ack_deadline_seconds`` 10..600 (0 means
the default 10), ``expiration_policy`` (unset: 31 days, at least 1 day, empty ttl: never),
Pull waits a while for a message when there is none (up to ``pull_wait`` seconds, within the
call's deadline), a message neither acknowledged nor extended within its ack deadline is
delivered again (with a new ack id), ModifyAckDeadline 0 is a nack, deleting a topic leaves its
subscriptions attached to ``_deleted-topic_``.

Test hooks: ``calls`` counts requests per RPC, ``last_request`` keeps the latest request of
each, ``unavailable`` makes every RPC fail with UNAVAILABLE while it is set (waiting pulls
included), ``RunningDouble.stop``/``restart`` take the server away and bring it back on the same
port, ``expire_idle(at)`` deletes the subscriptions whose expiration policy has run out by then,
``backlog(subscription)`` counts the messages not yet acknowledged, ``duplicates`` delivers
every message published twice. ``notification`` builds a
Secret Manager event notification (attributes and data) in the shape the service publishes.
"""

from __future__ import annotations

import atexit
import itertools
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import empty_pb2
from google.pubsub_v1.types import pubsub

from tests.doubles.grpc_model import ModelError, method_of, unary_handler

PUBLISHER = "google.pubsub.v1.Publisher"
SUBSCRIBER = "google.pubsub.v1.Subscriber"
Code = grpc.StatusCode

Topic = pubsub.Topic.pb()
Subscription = pubsub.Subscription.pb()
PubsubMessage = pubsub.PubsubMessage.pb()

DEFAULT_ACK_DEADLINE = 10
MAX_ACK_DEADLINE = 600
DEFAULT_EXPIRATION = 31 * 86400
MIN_EXPIRATION = 86400
DELETED_TOPIC = "_deleted-topic_"
#: A topic or subscription id (pubsub.proto): starts with a letter, 3..255 of letters, digits and
#: ``-_.~+%``, never starting with ``goog``.
_ID = re.compile(r"[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}")
_NAME = re.compile(r"projects/(?P<project>[^/]+)/(?P<kind>topics|subscriptions)/(?P<id>[^/]+)")


@dataclass
class _Delivery:
    message: Any  # a PubsubMessage protobuf, message_id and publish_time filled in
    due: float = 0.0  # monotonic time from which it may be delivered (again)
    ack_id: str = ""  # the ack id of its latest delivery ("" before the first)
    attempts: int = 0


@dataclass
class _Subscription:
    meta: Any  # a Subscription protobuf as the service returns it
    pending: list[_Delivery] = field(default_factory=list)  # in publish order
    last_active: float = 0.0  # wall time of the latest pull, for expiration


class PubSubModel:
    """Topics and subscriptions of any project, kept in memory."""

    def __init__(self, pull_wait: float = 1.0) -> None:
        #: How long a Pull with no message to give waits for one (the service holds a pull open
        #: for a while, then answers empty); the call's own deadline bounds it too.
        self.pull_wait = pull_wait
        self.calls: Counter[str] = Counter()
        self.last_request: dict[str, Any] = {}
        self._unavailable = False
        #: while set, every message published is delivered twice (same message id), as an
        #: at-least-once service may
        self.duplicates = False
        self._topics: dict[str, Any] = {}
        self._subs: dict[str, _Subscription] = {}
        self._ids = itertools.count(1)
        self._cond = threading.Condition()

    # -- test hooks ---------------------------------------------------------------------

    @property
    def unavailable(self) -> bool:
        return self._unavailable

    @unavailable.setter
    def unavailable(self, value: bool) -> None:
        with self._cond:
            self._unavailable = value
            self._cond.notify_all()  # waiting pulls fail now, as on a lost connection

    def subscriptions(self, topic: str | None = None) -> list[str]:
        """The subscriptions that exist (those of ``topic`` if given)."""
        with self._cond:
            return sorted(n for n, s in self._subs.items() if topic is None or s.meta.topic == topic)

    def backlog(self, subscription: str) -> int:
        """Messages of ``subscription`` not acknowledged yet (delivered or not)."""
        with self._cond:
            return len(self._subs[subscription].pending)

    def expire_idle(self, at: float | None = None) -> list[str]:
        """Delete the subscriptions whose expiration ttl has passed since their last pull by ``at``."""
        at = time.time() if at is None else at
        with self._cond:
            gone = []
            for name, sub in list(self._subs.items()):
                policy = sub.meta.expiration_policy
                if policy.HasField("ttl") and sub.last_active + policy.ttl.ToSeconds() <= at:
                    del self._subs[name]
                    gone.append(name)
            self._cond.notify_all()
            return gone

    def reset(self) -> None:
        with self._cond:
            self._topics.clear()
            self._subs.clear()
            self.calls.clear()
            self.last_request.clear()
            self._unavailable = False
            self._cond.notify_all()

    # -- dispatch -----------------------------------------------------------------------

    def dispatch(self, rpc: str, request: Any, context: grpc.ServicerContext | None = None) -> Any:
        with self._cond:
            self.calls[rpc] += 1
            self.last_request[rpc] = request
            if self._unavailable:
                raise ModelError(Code.UNAVAILABLE, "The service is currently unavailable.")
            handler = method_of(self, rpc)
            if rpc == "Pull":
                return handler(request, context)
            return handler(request)

    @staticmethod
    def _check(name: str, kind: str) -> None:
        m = _NAME.fullmatch(name)
        if not m or m["kind"] != kind or not _ID.fullmatch(m["id"]) or m["id"].startswith("goog"):
            raise ModelError(Code.INVALID_ARGUMENT, f"Invalid [{kind}] name: (name={name})")

    def _topic(self, name: str) -> Any:
        self._check(name, "topics")
        if name not in self._topics:
            raise ModelError(Code.NOT_FOUND, f"Resource not found (resource={name.rsplit('/', 1)[-1]}).")
        return self._topics[name]

    def _sub(self, name: str) -> _Subscription:
        self._check(name, "subscriptions")
        if name not in self._subs:
            raise ModelError(Code.NOT_FOUND, f"Resource not found (resource={name.rsplit('/', 1)[-1]}).")
        return self._subs[name]

    # -- Publisher ----------------------------------------------------------------------

    def _create_topic(self, req: Any) -> Any:
        self._check(req.name, "topics")
        if req.name in self._topics:
            raise ModelError(Code.ALREADY_EXISTS, "Resource already exists in the project (resource="
                             f"{req.name.rsplit('/', 1)[-1]}).")
        topic = Topic()
        topic.CopyFrom(req)
        self._topics[req.name] = topic
        return topic

    def _get_topic(self, req: Any) -> Any:
        return self._topic(req.topic)

    def _delete_topic(self, req: Any) -> Any:
        self._topic(req.topic)
        del self._topics[req.topic]
        for sub in self._subs.values():
            if sub.meta.topic == req.topic:
                sub.meta.topic = DELETED_TOPIC
        return empty_pb2.Empty()

    def _publish(self, req: Any) -> Any:
        self._topic(req.topic)
        if not req.messages:
            raise ModelError(Code.INVALID_ARGUMENT, "The request contains no messages.")
        if any(not m.data and not m.attributes for m in req.messages):
            raise ModelError(Code.INVALID_ARGUMENT, "Some messages do not have data or attributes.")
        ids = []
        for m in req.messages:
            msg = PubsubMessage()
            msg.CopyFrom(m)
            msg.message_id = str(next(self._ids))
            msg.publish_time.GetCurrentTime()
            ids.append(msg.message_id)
            for sub in self._subs.values():
                if sub.meta.topic == req.topic:
                    sub.pending.extend(_Delivery(msg) for _ in range(2 if self.duplicates else 1))
        self._cond.notify_all()
        return pubsub.PublishResponse.pb()(message_ids=ids)

    # -- Subscriber ---------------------------------------------------------------------

    def _create_subscription(self, req: Any) -> Any:
        self._check(req.name, "subscriptions")
        self._topic(req.topic)
        if req.name in self._subs:
            raise ModelError(Code.ALREADY_EXISTS, "Resource already exists in the project (resource="
                             f"{req.name.rsplit('/', 1)[-1]}).")
        deadline = req.ack_deadline_seconds or DEFAULT_ACK_DEADLINE
        if not DEFAULT_ACK_DEADLINE <= deadline <= MAX_ACK_DEADLINE:
            raise ModelError(Code.INVALID_ARGUMENT, "Invalid ack_deadline_seconds: must be between 10 and 600.")
        sub = Subscription()
        sub.CopyFrom(req)
        sub.ack_deadline_seconds = deadline
        if not req.HasField("expiration_policy"):
            sub.expiration_policy.ttl.FromSeconds(DEFAULT_EXPIRATION)
        elif req.expiration_policy.HasField("ttl") and req.expiration_policy.ttl.ToSeconds() < MIN_EXPIRATION:
            raise ModelError(Code.INVALID_ARGUMENT, "Invalid expiration_policy.ttl: must be at least 1 day.")
        if not sub.HasField("message_retention_duration"):
            sub.message_retention_duration.FromSeconds(7 * 86400)
        sub.state = pubsub.Subscription.State.ACTIVE
        self._subs[req.name] = _Subscription(sub, last_active=time.time())
        return sub

    def _get_subscription(self, req: Any) -> Any:
        return self._sub(req.subscription).meta

    def _delete_subscription(self, req: Any) -> Any:
        self._sub(req.subscription)
        del self._subs[req.subscription]
        self._cond.notify_all()  # a pull waiting on it fails
        return empty_pb2.Empty()

    def _pull(self, req: Any, context: grpc.ServicerContext | None) -> Any:
        sub = self._sub(req.subscription)
        if req.max_messages <= 0:
            raise ModelError(Code.INVALID_ARGUMENT, "max_messages must be greater than 0.")
        sub.last_active = time.time()
        wait = 0.0 if req.return_immediately else self.pull_wait
        remaining = context.time_remaining() if context is not None else None
        if remaining is not None:
            wait = min(wait, max(remaining - 0.05, 0.0))  # answer (empty) before the caller's deadline
        end = time.monotonic() + wait
        while True:
            now = time.monotonic()
            ready = [d for d in sub.pending if d.due <= now][: req.max_messages]
            if ready or now >= end:
                break
            due = [d.due for d in sub.pending if d.due > now]
            self._cond.wait(min([end, *due]) - now)
            if self._unavailable:
                raise ModelError(Code.UNAVAILABLE, "The service is currently unavailable.")
            if self._subs.get(req.subscription) is not sub:
                raise ModelError(Code.NOT_FOUND, "Resource not found (resource="
                                 f"{req.subscription.rsplit('/', 1)[-1]}).")
        out = pubsub.PullResponse.pb()()
        for d in ready:
            d.attempts += 1
            d.ack_id = f"{d.message.message_id}-{d.attempts}-{next(self._ids)}"
            d.due = now + sub.meta.ack_deadline_seconds
            out.received_messages.add(ack_id=d.ack_id, message=d.message)
        return out

    def _delivered(self, sub: _Subscription, ack_ids: Any) -> list[_Delivery]:
        wanted = set(ack_ids)
        # An ack id of an earlier delivery no longer counts, as on the service (without
        # exactly-once delivery, such ids are silently ignored).
        return [d for d in sub.pending if d.ack_id in wanted]

    def _acknowledge(self, req: Any) -> Any:
        sub = self._sub(req.subscription)
        if not req.ack_ids:
            raise ModelError(Code.INVALID_ARGUMENT, "No ack ids specified.")
        done = {id(d) for d in self._delivered(sub, req.ack_ids)}
        sub.pending = [d for d in sub.pending if id(d) not in done]
        return empty_pb2.Empty()

    def _modify_ack_deadline(self, req: Any) -> Any:
        sub = self._sub(req.subscription)
        if not 0 <= req.ack_deadline_seconds <= MAX_ACK_DEADLINE:
            raise ModelError(Code.INVALID_ARGUMENT, "Invalid ack deadline: must be between 0 and 600 seconds.")
        now = time.monotonic()
        for d in self._delivered(sub, req.ack_ids):
            d.due = now + req.ack_deadline_seconds
        self._cond.notify_all()  # a nack (0) makes it deliverable now
        return empty_pb2.Empty()


_RPCS: dict[str, dict[str, tuple[Any, Callable[[Any], bytes]]]] = {
    PUBLISHER: {
        "CreateTopic": (Topic, Topic.SerializeToString),
        "GetTopic": (pubsub.GetTopicRequest.pb(), Topic.SerializeToString),
        "DeleteTopic": (pubsub.DeleteTopicRequest.pb(), empty_pb2.Empty.SerializeToString),
        "Publish": (pubsub.PublishRequest.pb(), pubsub.PublishResponse.pb().SerializeToString),
    },
    SUBSCRIBER: {
        "CreateSubscription": (Subscription, Subscription.SerializeToString),
        "GetSubscription": (pubsub.GetSubscriptionRequest.pb(), Subscription.SerializeToString),
        "DeleteSubscription": (pubsub.DeleteSubscriptionRequest.pb(), empty_pb2.Empty.SerializeToString),
        "Pull": (pubsub.PullRequest.pb(), pubsub.PullResponse.pb().SerializeToString),
        "Acknowledge": (pubsub.AcknowledgeRequest.pb(), empty_pb2.Empty.SerializeToString),
        "ModifyAckDeadline": (pubsub.ModifyAckDeadlineRequest.pb(), empty_pb2.Empty.SerializeToString),
    },
}


def grpc_handlers(model: PubSubModel) -> tuple[grpc.GenericRpcHandler, ...]:
    return tuple(unary_handler(service, rpcs, model.dispatch) for service, rpcs in _RPCS.items())


# -- Secret Manager's notifications -----------------------------------------------------------


def notification(event_type: str, secret: str, *, version: str | None = None,
                 resource: dict[str, Any] | None = None) -> tuple[bytes, dict[str, str]]:
    """``(data, attributes)`` of the message Secret Manager publishes for ``event_type`` on ``secret``.

    ``secret`` is the full name (``projects/P/secrets/NAME``); ``version`` the version id of a
    version event (its full name goes into ``versionId``); ``data`` is the resource as
    proto3-JSON (the secret, or the version for version events), as the service sends it.
    """
    if event_type == "TOPIC_CONFIGURED":  # the test message: no data, no other attributes
        return b"", {"eventType": event_type}
    attributes = {"eventType": event_type, "dataFormat": "JSON_API_V1", "secretId": secret}
    if version is not None:
        attributes["versionId"] = f"{secret}/versions/{version}"
        body = resource or {"name": attributes["versionId"], "createTime": "2024-01-01T00:00:00Z",
                            "state": "ENABLED", "replicationStatus": {"automatic": {}}, "etag": '"1"'}
    else:
        body = resource or {"name": secret, "replication": {"automatic": {}},
                            "createTime": "2024-01-01T00:00:00Z", "etag": '"1"'}
    return json.dumps(body).encode(), attributes


# -- servers --------------------------------------------------------------------------------


@dataclass
class RunningDouble:
    model: PubSubModel
    target: str  # host:port, for PUBSUB_EMULATOR_HOST or grpc.insecure_channel
    _server: grpc.Server | None

    def stop(self) -> None:
        """Take the server away (connections refused) until ``restart``; the model is kept."""
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def restart(self) -> None:
        """Serve the same model on the same port again."""
        if self._server is None:
            self._server, _ = _serve(self.model, self.target)

    @property
    def running(self) -> bool:
        return self._server is not None


def _serve(model: PubSubModel, target: str) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    server.add_generic_rpc_handlers(grpc_handlers(model))
    port = server.add_insecure_port(target)
    if not port:
        raise RuntimeError(f"cannot listen on {target}")
    server.start()
    return server, port


def start(model: PubSubModel | None = None) -> RunningDouble:
    """Serve ``model`` (a new one if None) over gRPC on a free loopback port."""
    model = model or PubSubModel()
    server, port = _serve(model, "127.0.0.1:0")
    return RunningDouble(model, f"127.0.0.1:{port}", server)


_shared: RunningDouble | None = None
_shared_lock = threading.Lock()


def shared() -> RunningDouble:
    """One running double for the whole test process (stopped at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = start()
            atexit.register(_shared.stop)
        return _shared
