"""What EventBridge delivers about Secrets Manager, turned into ``ChangeEvent``s (pure functions).

Secrets Manager's API calls reach EventBridge through CloudTrail as events with ``source``
``aws.secretsmanager`` and ``detail-type`` ``AWS API Call via CloudTrail``; ``detail`` is the
CloudTrail record (``eventName``, ``requestParameters.secretId`` as the caller sent it: a name,
a full or a partial ARN; ``responseElements.arn``, spelt ``aRN`` by some operations before 2024).
A queue receives such an event in one of three shapes, all accepted:

* the bare event JSON (an EventBridge rule with an SQS target; SNS raw message delivery);
* an SNS notification envelope (``Type: Notification``) whose ``Message`` is the event JSON
  (SNS to SQS with raw message delivery off, the default).
"""

from __future__ import annotations

import json
from typing import Any

from secretkit.changes.source import ChangeEvent, Kind

#: the CloudTrail event names that change what a read returns, and what they mean
KINDS: dict[str, Kind] = {
    "PutSecretValue": "changed",
    "UpdateSecret": "changed",
    "UpdateSecretVersionStage": "changed",
    "RotateSecret": "changed",
    "RestoreSecret": "changed",
    "DeleteSecret": "deleted",
}
SOURCE = "aws.secretsmanager"


def parse(body: str | None, *, region: str | None = None) -> tuple[tuple[ChangeEvent, ...], str | None]:
    """The events a queue message announces, and why there are none when there are none.

    ``region``: the store's; an event whose envelope names another region is not its own
    (one topic may carry the events of several regions). Nothing here raises on bad input.
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
    return _event(doc, region, message_id)


def _event(doc: dict[str, Any], region: str | None, message_id: Any) -> tuple[tuple[ChangeEvent, ...], str | None]:
    if doc.get("source") != SOURCE:
        return (), f"not a Secrets Manager event (source {str(doc.get('source'))[:60]!r})"
    detail = doc.get("detail")
    if not isinstance(detail, dict):
        return (), "Secrets Manager event without a detail object"
    operation = detail.get("eventName")
    kind = KINDS.get(operation) if isinstance(operation, str) else None
    if kind is None:
        return (), f"Secrets Manager event {str(operation)[:60]!r} changes no value"
    where = doc.get("region") or detail.get("awsRegion")
    if region and isinstance(where, str) and where and where != region:
        return (), f"event of region {where}, the store's is {region}"
    secret = _secret_of(detail)
    if secret is None:
        return (), f"{operation} event naming no secret"
    event_id = doc.get("id") or detail.get("eventID") or message_id
    return (ChangeEvent(secret, kind, event_id=str(event_id) if event_id else None),), None


def _secret_of(detail: dict[str, Any]) -> str | None:
    """``requestParameters.secretId`` (as the caller sent it), else the ARN of the response."""
    for part, keys in (("requestParameters", ("secretId", "name")), ("responseElements", ("arn", "aRN", "ARN"))):
        section = detail.get(part)
        if isinstance(section, dict):
            for key in keys:
                value = section.get(key)
                if isinstance(value, str) and value:
                    return value
    return None


def _json(text: Any) -> Any:
    if not isinstance(text, (str, bytes)):
        return None
    try:
        return json.loads(text)
    except ValueError:  # JSONDecodeError and invalid UTF-8 alike
        return None
