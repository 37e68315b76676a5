"""What EventBridge delivers about SSM Parameter Store, turned into ``ChangeEvent``s (pure functions).

Parameter Store emits events of its own (no CloudTrail needed): ``source`` ``aws.ssm``,
``detail-type`` ``Parameter Store Change``, ``detail`` ``{"operation": "Create" | "Update" |
"Delete" | "LabelParameterVersion", "name": "/prod/db", "type": "String" | "StringList" |
"SecureString", "description": ...}`` and ``resources`` ``["arn:aws:ssm:REGION:ACCOUNT:parameter/prod/db"]``.
That shape is from AWS's documentation as remembered (our backend reference does not record it),
so both spellings of the parameter are accepted: ``detail.name`` first, else an ARN in
``resources`` (``ssm`` driver's ``event_names`` reads both, and drops another region's ARN).

The envelope (bare event or SNS notification), the ``source`` and the region are checked by
``eventbridge``, shared with Secrets Manager's events (``aws_events``). Other ``aws.ssm``
detail-types (CloudTrail API calls, policy actions) are dropped: the rule docs/caching.md gives
sends only ``Parameter Store Change``, and hearing both would read a changed parameter twice.
"""

from __future__ import annotations

from typing import Any

from secretkit.changes import eventbridge
from secretkit.changes.source import ChangeEvent, Kind

__all__ = ["DETAIL_TYPE", "KINDS", "SOURCE", "parse"]

SOURCE = "aws.ssm"
DETAIL_TYPE = "Parameter Store Change"

#: What each operation means for a read. An operation SSM may add later counts as a change: a
#: needless invalidation costs one read, a missed one serves a stale value for a whole TTL.
KINDS: dict[str, Kind] = {
    "Create": "changed",  # a NotFound answer may be cached
    "Update": "changed",
    "LabelParameterVersion": "changed",  # moves a label (a version selector)
    "Delete": "deleted",
}


def parse(body: str | None, *, region: str | None = None) -> eventbridge.Parsed:
    """The events a queue message announces, and why there are none when there are none.

    ``region``: the store's; an event whose envelope names another region is not its own.
    Nothing here raises on bad input.
    """
    return eventbridge.parse(body, source=SOURCE, service="Parameter Store", region=region, parser=_event)


def _event(doc: dict[str, Any], event_id: str | None) -> eventbridge.Parsed:
    if doc.get("detail-type") != DETAIL_TYPE:
        return (), f"aws.ssm event of detail-type {str(doc.get('detail-type'))[:60]!r}, not {DETAIL_TYPE!r}"
    detail = doc["detail"]
    operation = detail.get("operation")
    if not isinstance(operation, str) or not operation:
        return (), "Parameter Store Change without an operation"
    kind = KINDS.get(operation, "changed")
    parameter = _parameter_of(detail, doc.get("resources"))
    if parameter is None:
        return (), f"{operation[:60]} event naming no parameter"
    return (ChangeEvent(parameter, kind, event_id=event_id),), None


def _parameter_of(detail: dict[str, Any], resources: Any) -> str | None:
    """``detail.name`` (the parameter's name), else the first parameter ARN of ``resources``."""
    name = detail.get("name")
    if isinstance(name, str) and name:
        return name
    for resource in resources if isinstance(resources, list) else ():
        if isinstance(resource, str) and resource.startswith("arn:") and ":parameter/" in resource:
            return resource
    return None
