"""Key Vault errors → portable codes: one table over azure-core's and azure-identity's exceptions.

A failed request is an ``HttpResponseError`` (401 ``ClientAuthenticationError``, 404
``ResourceNotFoundError``, 409 ``ResourceExistsError``) whose body is
``{"error": {"code", "message", "innererror": {"code", ...}}}``: the innermost code the table
knows decides (``ObjectIsDeletedButRecoverable`` inside ``Conflict``), then the HTTP status.
Messages name secrets, never values; they are cut to 500 characters all the same.

A credential that could get no token is UNAUTHENTICATED only when the token service refused
it; one that could not reach the service, or got a 5xx/429 from it, is classified by that
cause (``token_service``): UNAVAILABLE (or THROTTLED), retried by the store.
"""

from __future__ import annotations

import json
from typing import Any

from azure.core import exceptions as az

from secretkit.drivers.azure.token_service import TokenServiceError, error_code, transient_cause
from secretkit.drivers.base import Classified, ErrorCode, ErrorTable, On, retry_after_seconds

#: Said whenever a write meets a soft-deleted name: Key Vault keeps it for its retention period.
DELETED_HINT = (
    "a deleted secret of this name is kept for the vault's retention period: recover it, or purge it "
    "(delete(..., purge=True)), before writing a new one"
)


def codes_of(exc: az.HttpResponseError) -> list[str]:
    """The error codes of the body, outermost first (``Conflict``, ``ObjectIsDeletedButRecoverable``)."""
    found: list[str] = []
    try:
        text = exc.response.text() if exc.response is not None else ""
        error: Any = json.loads(text).get("error") if text else None
    except (ValueError, AttributeError, TypeError):
        error = None
    while isinstance(error, dict) and len(found) < 8:
        if isinstance(error.get("code"), str):
            found.append(error["code"])
        error = error.get("innererror")
    if not found and exc.error is not None and exc.error.code:
        found.append(exc.error.code)
    return found


def _message(exc: az.HttpResponseError) -> str:
    return (exc.error.message if exc.error is not None and exc.error.message else exc.reason) or ""


def _response(exc: az.HttpResponseError) -> Classified:
    codes = codes_of(exc)
    code = next((TABLE.codes[c] for c in reversed(codes) if c in TABLE.codes), None)
    code = code or TABLE.for_status(exc.status_code) or ErrorCode.UNKNOWN
    detail = f"{'/'.join(codes) or exc.status_code}: {_message(exc)}"
    if "ObjectIsDeletedButRecoverable" in codes:
        detail = f"{detail} ({DELETED_HINT})"
    # a throttled (429) or unavailable (503) vault says how long to wait; the store's retry
    # (the only one: the SDK's is off) waits at least that
    response: Any = exc.response
    delay = retry_after_seconds(response.headers) if exc.status_code in (429, 503) and response is not None else None
    return Classified(code, detail[:500], retry_after=delay)


def _credential(exc: az.ClientAuthenticationError) -> Classified:
    cause = transient_cause(exc)
    if cause is not None:  # the token service was down, not the credential wrong
        found = classify(cause) or Classified(ErrorCode.UNAVAILABLE, f"{type(cause).__name__}: {cause}")
        return Classified(found.code, f"no token from Microsoft Entra ID: {found.detail}"[:500],
                          retry_after=found.retry_after)
    # azure-identity words which sources it tried (environment, managed identity, CLI ...):
    # no token, so nothing secret in it.
    return Classified(ErrorCode.UNAUTHENTICATED, f"{type(exc).__name__}: {exc.message}"[:500])


def _token_service(exc: TokenServiceError) -> Classified:
    # a 504 of the token service is its outage too, not this request's deadline
    code = ErrorCode.THROTTLED if exc.status_code == 429 else ErrorCode.UNAVAILABLE
    oauth = error_code(exc)
    response: Any = exc.response
    delay = retry_after_seconds(response.headers) if response is not None else None
    return Classified(code, f"the token service answered {exc.status_code}" + (f" {oauth}" if oauth else ""),
                      retry_after=delay)


TABLE = ErrorTable(
    exceptions=(
        # A 401 from the vault, and a credential that could get no token (azure-identity's
        # CredentialUnavailableError is one too): neither has a body worth more than its text.
        On(az.ClientAuthenticationError, _credential),
        On(TokenServiceError, _token_service),
        On(az.HttpResponseError, _response),
        On((az.ServiceRequestTimeoutError, az.ServiceResponseTimeoutError), ErrorCode.DEADLINE_EXCEEDED,
           "request timed out: {kind}"),
        On(az.ServiceRequestError, ErrorCode.UNAVAILABLE, "could not send the request: {kind}"),
        On(az.ServiceResponseError, ErrorCode.UNAVAILABLE, "no complete response: {kind}"),
    ),
    codes={
        "SecretNotFound": ErrorCode.NOT_FOUND,
        "NotFound": ErrorCode.NOT_FOUND,
        # a read of a disabled version: portably it is not there (as GCP's disabled versions)
        "SecretDisabled": ErrorCode.NOT_FOUND,
        "ObjectIsDeletedButRecoverable": ErrorCode.CONFLICT,
        # a recover still running: the same write succeeds a moment later
        "ObjectIsBeingRecovered": ErrorCode.UNAVAILABLE,
        "ObjectIsBeingDeleted": ErrorCode.UNAVAILABLE,
        "Throttled": ErrorCode.THROTTLED,
        "BadParameter": ErrorCode.INVALID_ARGUMENT,
        "ForbiddenByPolicy": ErrorCode.PERMISSION_DENIED,
        "ForbiddenByRbac": ErrorCode.PERMISSION_DENIED,
        "ForbiddenByFirewall": ErrorCode.PERMISSION_DENIED,
    },
    # 408 is a timeout the server gave up on (azure-core retries it as transient)
    statuses={408: ErrorCode.UNAVAILABLE},
)

#: Map an azure-core / azure-identity exception to a portable code; the detail never holds a value.
classify = TABLE.classify
