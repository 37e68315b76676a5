"""Secret Manager errors → portable codes, the same over gRPC and REST.

Both transports raise google-api-core exceptions, but REST picks the class from the HTTP status
alone (``BadRequest`` for INVALID_ARGUMENT and FAILED_PRECONDITION alike), so the canonical
status is read from the REST error body or the gRPC code first, and the class decides only
when neither carries one.
"""

from __future__ import annotations

from typing import Any

import google.auth.exceptions as auth_exc
import grpc
import requests
from google.api_core import exceptions as gexc

from secretkit.drivers.base import Classified, ErrorCode

_BY_STATUS = {
    "NOT_FOUND": ErrorCode.NOT_FOUND,
    "ALREADY_EXISTS": ErrorCode.ALREADY_EXISTS,
    "ABORTED": ErrorCode.CONFLICT,
    "FAILED_PRECONDITION": ErrorCode.CONFLICT,
    "INVALID_ARGUMENT": ErrorCode.INVALID_ARGUMENT,
    "OUT_OF_RANGE": ErrorCode.INVALID_ARGUMENT,
    "PERMISSION_DENIED": ErrorCode.PERMISSION_DENIED,
    "UNAUTHENTICATED": ErrorCode.UNAUTHENTICATED,
    "RESOURCE_EXHAUSTED": ErrorCode.THROTTLED,
    "UNAVAILABLE": ErrorCode.UNAVAILABLE,
    "INTERNAL": ErrorCode.UNAVAILABLE,
    "UNKNOWN": ErrorCode.UNAVAILABLE,
    "CANCELLED": ErrorCode.UNAVAILABLE,
    "DEADLINE_EXCEEDED": ErrorCode.DEADLINE_EXCEEDED,
    "DATA_LOSS": ErrorCode.DATA_LOSS,
    "UNIMPLEMENTED": ErrorCode.NOT_SUPPORTED,
}

# REST errors arrive as the first api-core class registered for the HTTP status; when the
# body carries no status name, this is the best reading of the class alone.
_BY_CLASS: tuple[tuple[type[BaseException], ErrorCode], ...] = (
    (gexc.NotFound, ErrorCode.NOT_FOUND),
    (gexc.AlreadyExists, ErrorCode.ALREADY_EXISTS),
    (gexc.Conflict, ErrorCode.CONFLICT),
    (gexc.FailedPrecondition, ErrorCode.CONFLICT),
    (gexc.BadRequest, ErrorCode.INVALID_ARGUMENT),
    (gexc.Unauthorized, ErrorCode.UNAUTHENTICATED),
    (gexc.Forbidden, ErrorCode.PERMISSION_DENIED),
    (gexc.TooManyRequests, ErrorCode.THROTTLED),
    (gexc.GatewayTimeout, ErrorCode.DEADLINE_EXCEEDED),
    (gexc.DataLoss, ErrorCode.DATA_LOSS),
    (gexc.MethodNotImplemented, ErrorCode.NOT_SUPPORTED),
    (gexc.ServerError, ErrorCode.UNAVAILABLE),
)


def status(exc: gexc.GoogleAPICallError) -> str | None:
    """The canonical status name, also for REST errors (whose class only reflects the HTTP status)."""
    response: Any = getattr(exc, "response", None)
    if response is not None and callable(getattr(response, "json", None)):  # a requests.Response: REST
        try:
            found = response.json()["error"]["status"]
            if isinstance(found, str):
                return found
        except (ValueError, KeyError, TypeError):
            pass
    code = getattr(exc, "grpc_status_code", None)
    return str(code.name) if code is not None else None


def classify(exc: BaseException) -> Classified | None:
    """Portable code for a google-api-core (gRPC or REST), google-auth, requests or grpc error."""
    if isinstance(exc, gexc.GoogleAPICallError):
        found = status(exc)
        code = _BY_STATUS.get(found) if found else None
        if code is None:
            code = next((c for cls, c in _BY_CLASS if isinstance(exc, cls)), ErrorCode.UNKNOWN)
        return Classified(code, f"{found or type(exc).__name__}: {exc.message}"[:500])
    if isinstance(exc, gexc.RetryError):
        return Classified(ErrorCode.UNAVAILABLE, f"RetryError: {exc.message}"[:500])
    if isinstance(exc, auth_exc.DefaultCredentialsError):
        return Classified(ErrorCode.UNAUTHENTICATED, f"Google credentials missing or unusable: {exc}"[:500])
    if isinstance(exc, auth_exc.RefreshError):
        return Classified(ErrorCode.UNAUTHENTICATED, f"credentials could not be refreshed: {exc}"[:500])
    if isinstance(exc, auth_exc.TransportError):
        return Classified(ErrorCode.UNAVAILABLE, f"auth transport error: {exc}"[:500])
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Classified(ErrorCode.UNAVAILABLE, f"could not connect: {type(exc).__name__}")
    if isinstance(exc, requests.exceptions.Timeout):
        return Classified(ErrorCode.DEADLINE_EXCEEDED, f"request timed out: {type(exc).__name__}")
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return Classified(ErrorCode.UNAVAILABLE, f"connection failed: {type(exc).__name__}")
    if isinstance(exc, grpc.RpcError) and callable(getattr(exc, "code", None)):
        name = exc.code().name
        return Classified(_BY_STATUS.get(name, ErrorCode.UNKNOWN), f"{name}: {exc.details()}"[:500])
    return None
