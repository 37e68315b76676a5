"""Telling a Microsoft Entra ID outage from a credential Entra ID refused.

azure-identity raises ``ClientAuthenticationError`` for every way a token request can fail:
its ``wrap_exceptions`` turns whatever went wrong into one, ``from`` the original. Left at
that, a token service that is down reads as a wrong client secret (UNAUTHENTICATED: never
retried, CLI exit 4). What it wraps tells the two apart:

* the token service could not be reached (refused, reset, TLS failure, timeout): the cause is
  azure-core's ``ServiceRequestError`` / ``ServiceResponseError`` (or a timeout subclass);
* the token service answered 5xx or 429: MSAL turns a 5xx into ``MsalServiceError("HTTP Error:
  503")`` and a 429 with an OAuth body into an error dict, which azure-identity words as
  ``Authentication failed: <description>`` with no status at all. So a credential this driver
  builds gets ``raise_transient`` as its azure-core ``raw_response_hook``: a 5xx or 429 of the
  token service raises ``TokenServiceError`` (an ``HttpResponseError`` with the status and
  ``Retry-After``) before MSAL sees the answer;
* anything else (``invalid_client``, ``unauthorized_client``, ``invalid_tenant``, no
  credential found) is a real refusal: UNAUTHENTICATED, as before.

Raising before MSAL reads the answer has a second purpose: MSAL's ``ThrottledHttpClient``
remembers a 5xx/429 answer of a token endpoint for its ``Retry-After`` (5 s when there is none)
and replays it to every request of that time without asking, so a store retry a moment after
an outage ended would still fail. An answer MSAL never saw is never replayed; the store's
RetryPolicy (which waits at least ``Retry-After``) is the only retry layer.
"""

from __future__ import annotations

import json
import re
from typing import Any

from azure.core import exceptions as az

_MSAL_HTTP = re.compile(r"HTTP Error: (\d{3})")


class TokenServiceError(az.HttpResponseError):
    """Microsoft Entra ID (or another token source) answered a token request 5xx or 429."""


def raise_transient(response: Any) -> None:
    """azure-core ``raw_response_hook`` of a credential's pipeline: a 5xx or 429 answer raises
    ``TokenServiceError``; every other answer goes on to MSAL as it came."""
    http = response.http_response
    status = http.status_code
    if status == 429 or 500 <= status <= 599:
        raise TokenServiceError(message=f"the token service answered {status}", response=http)


def transient_cause(exc: BaseException) -> BaseException | None:
    """What a credential's ``ClientAuthenticationError`` wraps when the token service was down
    (the module docstring), or None when the service refused the credential."""
    seen: set[int] = set()
    found: BaseException | None = exc.__cause__ or exc.__context__
    while found is not None and id(found) not in seen:
        seen.add(id(found))
        if isinstance(found, (TokenServiceError, az.ServiceRequestError, az.ServiceResponseError)):
            return found
        # a credential built without the hook (DefaultAzureCredential's sources) still shows a 5xx
        match = _MSAL_HTTP.fullmatch(str(found)) if type(found).__name__ == "MsalServiceError" else None
        if match and 500 <= int(match.group(1)) <= 599:
            return found
        found = found.__cause__ or found.__context__
    return None


def error_code(exc: TokenServiceError) -> str:
    """The OAuth ``error`` of the answer's body (``temporarily_unavailable``), or ``""``."""
    try:
        body = json.loads(exc.response.text()) if exc.response is not None else None
    except (ValueError, AttributeError, TypeError):
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else ""
