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

from secretkit.drivers.base import Classified, ErrorCode, ErrorTable, On

# REST errors arrive as the first api-core class registered for the HTTP status; when the
# body carries no status name, this is the best reading of the class alone.
_BY_CLASS = ErrorTable(exceptions=(
    On(gexc.NotFound, ErrorCode.NOT_FOUND),
    On(gexc.AlreadyExists, ErrorCode.ALREADY_EXISTS),
    On(gexc.Conflict, ErrorCode.CONFLICT),
    On(gexc.FailedPrecondition, ErrorCode.CONFLICT),
    On(gexc.BadRequest, ErrorCode.INVALID_ARGUMENT),
    On(gexc.Unauthorized, ErrorCode.UNAUTHENTICATED),
    On(gexc.Forbidden, ErrorCode.PERMISSION_DENIED),
    On(gexc.TooManyRequests, ErrorCode.THROTTLED),
    On(gexc.GatewayTimeout, ErrorCode.DEADLINE_EXCEEDED),
    On(gexc.DataLoss, ErrorCode.DATA_LOSS),
    On(gexc.MethodNotImplemented, ErrorCode.NOT_SUPPORTED),
    On(gexc.ServerError, ErrorCode.UNAVAILABLE),
))


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


def _api_call(exc: gexc.GoogleAPICallError) -> Classified:
    found = status(exc)
    code = TABLE.for_grpc(found)
    if code is None:
        by_class = _BY_CLASS.classify(exc)
        code = by_class.code if by_class is not None else ErrorCode.UNKNOWN
    return Classified(code, f"{found or type(exc).__name__}: {exc.message}"[:500])


def _rpc_error(exc: grpc.RpcError) -> Classified | None:
    if not callable(getattr(exc, "code", None)):
        return None
    name = exc.code().name
    return Classified(TABLE.for_grpc(name) or ErrorCode.UNKNOWN, f"{name}: {exc.details()}"[:500])


#: Secret Manager speaks gRPC status codes over both transports: the shared ``GRPC_CODES`` as is.
TABLE = ErrorTable(exceptions=(
    On(gexc.GoogleAPICallError, _api_call),
    On(gexc.RetryError, lambda exc: Classified(ErrorCode.UNAVAILABLE, f"RetryError: {exc.message}"[:500])),
    On(auth_exc.DefaultCredentialsError,
       lambda exc: Classified(ErrorCode.UNAUTHENTICATED, f"Google credentials missing or unusable: {exc}"[:500])),
    On(auth_exc.RefreshError,
       lambda exc: Classified(ErrorCode.UNAUTHENTICATED, f"credentials could not be refreshed: {exc}"[:500])),
    On(auth_exc.TransportError, lambda exc: Classified(ErrorCode.UNAVAILABLE, f"auth transport error: {exc}"[:500])),
    On(requests.exceptions.ConnectTimeout, ErrorCode.UNAVAILABLE, "could not connect: {kind}"),
    On(requests.exceptions.Timeout, ErrorCode.DEADLINE_EXCEEDED, "request timed out: {kind}"),
    On((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError),
       ErrorCode.UNAVAILABLE, "connection failed: {kind}"),
    On(grpc.RpcError, _rpc_error),
))

#: Portable code for a google-api-core (gRPC or REST), google-auth, requests or grpc error.
classify = TABLE.classify
