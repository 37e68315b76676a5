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

from secretkit.drivers.base import Classified, ErrorCode

_MAX_DETAIL = 300

_BY_STATUS = {
    400: ErrorCode.INVALID_ARGUMENT,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.PERMISSION_DENIED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.NOT_SUPPORTED,
    410: ErrorCode.UNAVAILABLE,  # expired list continuation: the whole list is tried again
    413: ErrorCode.INVALID_ARGUMENT,
    415: ErrorCode.NOT_SUPPORTED,
    422: ErrorCode.INVALID_ARGUMENT,
    429: ErrorCode.THROTTLED,
    504: ErrorCode.DEADLINE_EXCEEDED,
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


def classify(exc: BaseException, host: str) -> Classified | None:
    """The portable code of anything the client raised; None if it is not the client's."""
    if isinstance(exc, ApiException):
        return _classify_api(exc)
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    where = f"Kubernetes API at {host}"
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):  # NewConnectionError included
        return Classified(ErrorCode.UNAVAILABLE, f"cannot connect to the {where}: {type(exc).__name__}")
    if isinstance(exc, (urllib3.exceptions.ReadTimeoutError, socket.timeout, TimeoutError)):
        return Classified(ErrorCode.DEADLINE_EXCEEDED, f"the {where} did not answer in time")
    if isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, OSError)):
        return Classified(ErrorCode.UNAVAILABLE, f"connection to the {where} failed: {type(exc).__name__}")
    if isinstance(exc, kubernetes.config.ConfigException):
        return Classified(ErrorCode.CONFIG, f"Kubernetes client configuration: {exc}")
    return None


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
    if code in _BY_STATUS:
        return Classified(_BY_STATUS[code], detail)
    if code >= 500:
        return Classified(ErrorCode.UNAVAILABLE, detail)
    return Classified(ErrorCode.UNKNOWN, detail)
