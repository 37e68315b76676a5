"""What a change source is: the contract between the store's consumer and one event queue.

A change source pulls messages from wherever a backend announces changes (an SQS queue an SNS
topic feeds, a Pub/Sub subscription), turns each into ``ChangeEvent``s, and acknowledges
them. It never touches the cache: the consumer (``consumer.py``) matches events to cached
entries, drops them and wakes watchers, the same way for every source.

**Registration.** A driver that can hear changes implements ``ChangeEvents``
(``secretkit.drivers.base``): its ``change_sources`` maps each prefix of the ``changes=``
option to a ``"module:function"`` factory, imported only when a store uses it, e.g.::

    change_sources = {"sns": "secretkit.changes.aws:open_sns", "sqs": "secretkit.changes.aws:open_sqs"}

``changes="sns:arn:aws:sns:eu-west-1:123456789012:secrets"`` then calls
``open_sns(context)`` with a ``SourceContext`` whose ``target`` is the text after the first
``:`` and whose ``driver`` is the store's driver (the source reads the client options, region
or project it needs from it; a driver keeps them as attributes for that). The factory must not
do I/O: it validates ``target`` (``ConfigError`` naming the problem) and returns the source;
the consumer calls ``open()`` in its own thread, and again after a failure.

**Lifecycle**, always from the consumer's one thread: ``open()`` (create a queue, a
subscription; idempotent, retried with backoff when it raises) → ``pull(timeout)`` repeatedly
(long polling: return what arrived within ``timeout`` seconds, possibly nothing) → ``ack``
(every delivery pulled, events or not, so a bad message is not redelivered forever) →
``close()`` (delete what ``open()`` created; best effort, never raises). After a fork the child
drops the parent's source without closing it (the parent still uses the queue) and builds its own.

Any exception from ``open``, ``pull`` or ``ack`` means "the queue is unreachable": the consumer
logs it (never a message body), backs off and retries, while reads keep being served from the
cache. A message a source cannot understand is not an exception: it is a ``Delivery`` without
events whose ``dropped`` says why (logged at DEBUG, acknowledged).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["ChangeEvent", "ChangeSource", "Delivery", "Kind", "SourceContext", "SourceFactory"]

#: ``changed``: the secret has (or may have) a new current value, stage or metadata;
#: ``deleted``: it is gone (the next read is a ``NotFoundError``).
Kind = Literal["changed", "deleted"]


@dataclass(frozen=True)
class ChangeEvent:
    """One change of one secret, as a backend announced it.

    ``secret`` names it as the event did: a plain name, an ARN (full or partial), a full
    resource name (``projects/P/secrets/NAME``); the driver's ``ChangeEvents.event_names``
    turns it into the store's names. ``event_id`` identifies the announcement itself (the
    EventBridge event id, the Pub/Sub message id): a redelivered duplicate has the same one and
    is dropped. ``version`` is the version the event concerns, where it says.
    """

    secret: str
    kind: Kind
    event_id: str | None = None
    version: str | None = None

    def __repr__(self) -> str:  # secrets' names are not values; still keep it short for logs
        return f"ChangeEvent({self.kind} {self.secret!r}, id={self.event_id!r})"


@dataclass(frozen=True)
class Delivery:
    """One message pulled from a source.

    ``handle`` is what ``ChangeSource.ack`` needs (a receipt handle, an ack id). ``events`` are
    the changes it announces (usually one); empty when the message is malformed, about
    something else, or not this store's, and then ``dropped`` says why in a few words (logged
    at DEBUG; never the body).
    """

    handle: Any
    events: tuple[ChangeEvent, ...] = ()
    dropped: str | None = None
    #: the message body, kept only for DEBUG logging of dropped messages (never logged above DEBUG)
    body: str | None = field(default=None, repr=False)


class EventsLost(Exception):
    """Raised by ``ChangeSource.pull`` when the source knows it missed changes (its subscription
    expired and was made anew, so what was published in between never reached it). The consumer
    then drops the whole cache and wakes every watch, as it does when it first starts listening:
    the next read of each secret goes to the backend once instead of serving a value that may be
    a TTL (an hour) old."""


@runtime_checkable
class ChangeSource(Protocol):
    """A queue of change announcements, used by one consumer thread (see the module docstring)."""

    #: what the source listens to, safe to log (topic and queue names, never credentials)
    description: str

    def open(self) -> None:
        """Get ready to pull: create the queue or subscription this source owns, or check the
        one it was given. Idempotent; raises when the service cannot be reached (retried)."""
        ...

    def pull(self, timeout: float) -> Sequence[Delivery]:
        """The messages that arrive within ``timeout`` seconds (long polling), possibly none;
        ``EventsLost`` when the source knows changes were missed."""
        ...

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge (delete) these deliveries so that they are not delivered again."""
        ...

    def close(self) -> None:
        """Delete what ``open`` created (queue, subscription) and release clients; never raises."""
        ...


@dataclass(frozen=True)
class SourceContext:
    """What a source factory is given.

    ``prefix`` and ``target`` split the ``changes=`` option at its first ``:``; ``driver`` is
    the store's driver; ``backend`` its id (for messages); ``wait`` the longest a ``pull``
    should block (the consumer's long-poll bound: the source may use less, never more).
    """

    prefix: str
    target: str
    driver: Any
    backend: str
    wait: float = 20.0


#: ``factory(context: SourceContext) -> ChangeSource``, named in a driver's ``change_sources``.
SourceFactory = Callable[[SourceContext], ChangeSource]
