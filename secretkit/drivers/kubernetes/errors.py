"""What the kubernetes client raises → portable error codes (details never carry values).

API errors are ``ApiException`` with the API server's ``Status`` object as body; connection
problems surface as urllib3 exceptions (the driver switches urllib3's own retries off, so
each is one attempt).
"""

from __future__ import annotations

import json
import socket
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from secretkit.drivers.base import Classified, ErrorCode, ErrorTable, On

_MAX_DETAIL = 300

#: The API server's statuses: the shared ``HTTP_STATUS`` with two of its own meanings.
STATUSES: dict[int, ErrorCode | None] = {
    410: ErrorCode.UNAVAILABLE,  # expired list continuation: the whole list is tried again
    415: ErrorCode.NOT_SUPPORTED,  # a patch content type this API server does not implement
}


def status_body(exc: ApiException) -> dict[str, Any]:
    """The Status object of an API error (``body`` is bytes on <=v36 clients, str after)."""
    try:
        doc = json.loads(exc.body) if exc.body else {}
    except (TypeError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def is_status(exc: BaseException, code: int, reason: str | None = None) -> bool:
    """True for an ``ApiException`` with HTTP ``code`` (and Status ``reason``, if given)."""
    if not isinstance(exc, ApiException) or exc.status != code:
        return False
    return reason is None or status_body(exc).get("reason") == reason


def rejects_version(exc: ApiException, version: str) -> bool:
    """True when an error answers a conditional write by refusing the resourceVersion itself.

    The API server cannot parse a non-numeric resourceVersion: depending on the version it
    answers 400/422 naming the field, or 500 with the parser's message quoting the value.
    """
    if exc.status not in (400, 422, 500):
        return False
    status = status_body(exc)
    causes = (status.get("details") or {}).get("causes") or []
    text = " ".join([str(status.get("message", ""))] + [str(c.get("field", "")) for c in causes if isinstance(c, dict)])
    return "resourceversion" in text.lower() or f'"{version}"' in text


def rejects_type(exc: ApiException) -> bool:
    """True for the 422 a write gets when its ``type`` is not the Secret's (a type is for life)."""
    if exc.status != 422:
        return False
    causes = (status_body(exc).get("details") or {}).get("causes") or []
    return any(isinstance(c, dict) and c.get("field") == "type" for c in causes)


def table(host: str) -> ErrorTable:
    """What the client raises, talking to the API server at ``host`` (named in transport errors)."""
    where = f"Kubernetes API at {host}"
    transport = (
        # NewConnectionError is a ConnectTimeoutError: both mean no connection was made
        On(urllib3.exceptions.ConnectTimeoutError, ErrorCode.UNAVAILABLE, f"cannot connect to the {where}: {{kind}}"),
        On((urllib3.exceptions.ReadTimeoutError, socket.timeout, TimeoutError),
           ErrorCode.DEADLINE_EXCEEDED, f"the {where} did not answer in time"),
        On((urllib3.exceptions.HTTPError, ConnectionError, OSError),
           ErrorCode.UNAVAILABLE, f"connection to the {where} failed: {{kind}}"),
    )
    unwrapped = ErrorTable(exceptions=transport)
    return ErrorTable(
        exceptions=(
            On(ApiException, _classify_api),
            # urllib3's retries are off, so its MaxRetryError wraps the one attempt's failure
            On(urllib3.exceptions.MaxRetryError,
               lambda exc: unwrapped.classify(exc.reason) if exc.reason is not None else None),
            *transport,
            On(kubernetes.config.ConfigException, ErrorCode.CONFIG, "Kubernetes client configuration: {exc}"),
        ),
        statuses=STATUSES,
    )


def _classify_api(exc: ApiException) -> Classified:
    status = status_body(exc)
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or exc.reason or "").strip()
    code = int(exc.status or 0)
    detail = f"Kubernetes API {code or 'error'} {reason or exc.reason or ''}: {message}"[:_MAX_DETAIL]
    if code == 0:  # the client's wrapping of a TLS failure
        if "CERTIFICATE_VERIFY_FAILED" in message:
            return Classified(ErrorCode.CONFIG, detail)
        return Classified(ErrorCode.UNAVAILABLE, detail)
    if code == 409:
        if reason == "AlreadyExists":
            return Classified(ErrorCode.ALREADY_EXISTS, detail)
        return Classified(ErrorCode.CONFLICT, detail)
    if code == 422 and "immutable" in message:
        return Classified(
            ErrorCode.INVALID_ARGUMENT,
            "the Secret is immutable: Kubernetes rejects any change to its data; delete it and put it again",
        )
    return Classified(_STATUS_TABLE.for_status(code) or ErrorCode.UNKNOWN, detail)


_STATUS_TABLE = ErrorTable(statuses=STATUSES)
