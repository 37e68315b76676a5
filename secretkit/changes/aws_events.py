"""What EventBridge delivers about Secrets Manager, turned into ``ChangeEvent``s (pure functions).

Secrets Manager's API calls reach EventBridge through CloudTrail as events with ``source``
``aws.secretsmanager`` and ``detail-type`` ``AWS API Call via CloudTrail``; ``detail`` is the
CloudTrail record (``eventName``, ``requestParameters.secretId`` as the caller sent it: a name,
a full or a partial ARN; ``responseElements.arn``, spelt ``aRN`` by some operations before 2024).
The envelope (bare event or SNS notification), the ``source`` and the region are checked by
``eventbridge``, shared with Parameter Store's events (``ssm_events``).
"""

from __future__ import annotations

from typing import Any

from secretkit.changes import eventbridge
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


def parse(body: str | None, *, region: str | None = None) -> eventbridge.Parsed:
    """The events a queue message announces, and why there are none when there are none.

    ``region``: the store's; an event whose envelope names another region is not its own
    (one topic may carry the events of several regions). Nothing here raises on bad input.
    """
    return eventbridge.parse(body, source=SOURCE, service="Secrets Manager", region=region, parser=_event,
                             detail_region="awsRegion")


def _event(doc: dict[str, Any], event_id: str | None) -> eventbridge.Parsed:
    detail = doc["detail"]
    operation = detail.get("eventName")
    kind = KINDS.get(operation) if isinstance(operation, str) else None
    if kind is None:
        return (), f"Secrets Manager event {str(operation)[:60]!r} changes no value"
    secret = _secret_of(detail)
    if secret is None:
        return (), f"{operation} event naming no secret"
    return (ChangeEvent(secret, kind, event_id=event_id),), None


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
