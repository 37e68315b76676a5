"""What every EventBridge-fed queue delivers, whatever the service: the envelope (pure functions).

An EventBridge event reaches a queue in one of three shapes, all accepted:

* the bare event JSON (an EventBridge rule with an SQS target; SNS raw message delivery);
* an SNS notification envelope (``Type: Notification``) whose ``Message`` is the event JSON
  (SNS to SQS with raw message delivery off, the default).

``parse`` unwraps them, checks the event's ``source`` and ``region`` against the store's, and
hands the event to the service's own parser (``aws_events`` for Secrets Manager, ``ssm_events``
for Parameter Store). Nothing here raises on bad input: a message it cannot use is dropped with
a reason (``source.Delivery.dropped``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from secretkit.changes.source import ChangeEvent

__all__ = ["Parsed", "ServiceParser", "event_id", "parse"]

#: The events of one message, and why there are none when there are none.
Parsed = tuple[tuple[ChangeEvent, ...], str | None]
#: ``parser(event, event_id) -> Parsed``: one service's reading of an event of its ``source``
#: (the envelope is already unwrapped, the source and region checked).
ServiceParser = Callable[[dict[str, Any], str | None], Parsed]


def parse(body: str | None, *, source: str, service: str, region: str | None,
          parser: ServiceParser, detail_region: str | None = None) -> Parsed:
    """The events a queue message announces, read by ``parser`` if its ``source`` is ``source``.

    ``service`` names the service in drop reasons; ``region`` is the store's: an event whose
    envelope names another region is not its own (one topic may carry several regions').
    ``detail_region`` is a ``detail`` member naming the region when the envelope does not.
    """
    doc = _json(body)
    if not isinstance(doc, dict):
        return (), "not a JSON object"
    message_id = None
    if doc.get("Type") == "Notification" and "TopicArn" in doc:  # an SNS envelope (raw delivery off)
        message_id = doc.get("MessageId")
        doc = _json(doc.get("Message"))
        if not isinstance(doc, dict):
            return (), "SNS notification whose Message is not a JSON object"
    if doc.get("source") != source:
        return (), f"not a {service} event (source {str(doc.get('source'))[:60]!r})"
    detail = doc.get("detail")
    if not isinstance(detail, dict):
        return (), f"{service} event without a detail object"
    where = doc.get("region") or (detail.get(detail_region) if detail_region else None)
    if region and isinstance(where, str) and where and where != region:
        return (), f"event of region {where}, the store's is {region}"
    return parser(doc, event_id(doc, message_id))


def event_id(doc: dict[str, Any], message_id: Any) -> str | None:
    """The event's id (a redelivered duplicate has the same one), else the SNS message's."""
    detail = doc.get("detail")
    found = doc.get("id") or (detail.get("eventID") if isinstance(detail, dict) else None) or message_id
    return str(found) if found else None


def _json(text: Any) -> Any:
    if not isinstance(text, (str, bytes)):
        return None
    try:
        return json.loads(text)
    except ValueError:  # JSONDecodeError and invalid UTF-8 alike
        return None
