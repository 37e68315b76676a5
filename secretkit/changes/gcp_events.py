"""What Secret Manager publishes to Pub/Sub, as ``ChangeEvent``s (no SDK, no I/O).

Secret Manager event notifications (cloud.google.com/secret-manager/docs/event-notifications)
put everything that matters in the message attributes: ``eventType``, ``secretId`` (the full
name ``projects/P/secrets/NAME``, or ``projects/P/locations/L/secrets/NAME`` for a regional
secret), ``versionId`` for version events, ``dataFormat`` (``JSON_API_V1``); the data is the
Secret or SecretVersion as JSON, which an invalidation does not need (it is never parsed, so a
value-free resource body is never held longer than the message).

A message that is not such a notification is dropped with a reason (the consumer logs it at
DEBUG and acknowledges it), never raised: bad input must not stop the consumer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from secretkit.changes.source import ChangeEvent, Kind
from secretkit.drivers.gcp.codec import secret_resource

__all__ = ["EVENT_KINDS", "IGNORED", "parse"]

#: Every event type Secret Manager documents that changes what a read returns, by kind. A
#: version being added, enabled, disabled or destroyed changes ``latest`` or a pinned version;
#: SECRET_UPDATE can move a version alias; SECRET_ROTATE only announces that a rotator should
#: act, but the rotator's write may come with no event of its own on this topic. SECRET_CREATE
#: matters when a read was answered NotFound and that answer was cached.
EVENT_KINDS: Mapping[str, Kind] = {
    "SECRET_CREATE": "changed",
    "SECRET_UPDATE": "changed",
    "SECRET_DELETE": "deleted",
    "SECRET_VERSION_ADD": "changed",
    "SECRET_VERSION_ENABLE": "changed",
    "SECRET_VERSION_DISABLE": "changed",
    "SECRET_VERSION_DESTROY": "changed",
    "SECRET_VERSION_DESTROY_SCHEDULED": "changed",
    "SECRET_ROTATE": "changed",
}

#: The test message Secret Manager publishes when a topic is set on a secret: no change.
IGNORED = frozenset({"TOPIC_CONFIGURED"})

#: The only data format Secret Manager publishes; another one is not a message we understand.
DATA_FORMAT = "JSON_API_V1"

_KNOWN_SHAPE = re.compile(r"SECRET_[A-Z_]+")


def parse(attributes: Mapping[str, str], message_id: str | None) -> tuple[tuple[ChangeEvent, ...], str | None]:
    """The events of one Pub/Sub message, or ``((), why)`` when it announces no change we use.

    An event type Secret Manager may add later (``SECRET_…``, not in ``EVENT_KINDS``) counts as
    a change: a needless invalidation costs one read, a missed one serves a stale value for a
    whole TTL.
    """
    event_type = attributes.get("eventType")
    if not event_type:
        return (), "no eventType attribute: not a Secret Manager notification"
    if event_type in IGNORED:
        return (), f"{event_type} is a test message"
    kind = EVENT_KINDS.get(event_type)
    if kind is None:
        if not _KNOWN_SHAPE.fullmatch(event_type):
            return (), f"unknown eventType {event_type[:64]!r}"
        kind = "changed"
    data_format = attributes.get("dataFormat")
    if data_format is not None and data_format != DATA_FORMAT:
        return (), f"unknown dataFormat {data_format[:64]!r}"
    secret = attributes.get("secretId", "")
    if "/versions/" in secret or secret_resource(secret) is None:
        return (), "no secretId of the form projects/P/secrets/NAME"
    version = attributes.get("versionId") or None
    if version is not None:
        version = version.rsplit("/", 1)[-1]  # a full version name, or a bare id
    return (ChangeEvent(secret, kind, event_id=message_id, version=version),), None

