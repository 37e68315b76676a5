"""hvac and requests exceptions → portable error codes, and the Vault answers the driver tells apart.

Details carry Vault's own messages and the request path (which names the secret), never a value.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import hvac.exceptions as hx
import requests

from secretkit.drivers.base import Classified, ErrorCode, ErrorTable

#: hvac's exception per status → portable code (reference §1.3): hvac raises these classes for
#: 400, 401, 403, 404, 429, 500, 501, 502 and 503, also on a client the user built (whose errors
#: carry no status); any other status is an UnexpectedError, read through the status table.
_HVAC_CODES: tuple[tuple[type[hx.VaultError], ErrorCode], ...] = (
    (hx.InvalidRequest, ErrorCode.INVALID_ARGUMENT),
    (hx.Unauthorized, ErrorCode.UNAUTHENTICATED),
    (hx.Forbidden, ErrorCode.PERMISSION_DENIED),
    (hx.InvalidPath, ErrorCode.NOT_FOUND),
    (hx.RateLimitExceeded, ErrorCode.THROTTLED),
    (hx.InternalServerError, ErrorCode.UNAVAILABLE),
    (hx.VaultNotInitialized, ErrorCode.UNAVAILABLE),
    (hx.BadGateway, ErrorCode.UNAVAILABLE),
    (hx.VaultDown, ErrorCode.UNAVAILABLE),
)

#: Vault's statuses: the shared ``HTTP_STATUS`` with Vault's own meanings of two. The driver's
#: adapter attaches the status to hvac's UnexpectedError.
TABLE = ErrorTable(statuses={
    412: ErrorCode.UNAVAILABLE,  # Enterprise: state not yet replicated to this node; retry
    423: ErrorCode.PERMISSION_DENIED,  # namespace locked by an administrator
})


def classify(exc: BaseException) -> Classified | None:
    """The portable code of an hvac or requests exception; None for anything else."""
    if isinstance(exc, hx.ParamValidationError):  # hvac refused the arguments before sending
        return Classified(ErrorCode.INVALID_ARGUMENT, f"vault: {exc}")
    if isinstance(exc, hx.VaultError):
        if _PLAIN_TO_TLS in (getattr(exc, "text", None) or ""):
            where = _host(exc.url)
            return Classified(ErrorCode.CONFIG, f"use vault://{where} (or tls=true): the server at {where} "
                                                "speaks TLS, and this store spoke plain http to it")
        return _classify_vault(exc)
    if isinstance(exc, requests.exceptions.RequestException):
        return _classify_transport(exc)
    return None


#: What Go's TLS listener answers to a plain-http request (Vault and OpenBao both are Go servers).
_PLAIN_TO_TLS = "Client sent an HTTP request to an HTTPS server"


def _classify_transport(exc: requests.exceptions.RequestException) -> Classified:
    """Errors before any answer. A message leads with what to change where one change fixes it."""
    url = getattr(getattr(exc, "request", None), "url", None)
    where = _host(url)
    if isinstance(exc, requests.exceptions.SSLError):
        reason = str(exc)
        if "WRONG_VERSION_NUMBER" in reason or "record layer failure" in reason:
            # The server answered the TLS hello in plain http: a dev server, or tls left on by mistake.
            return Classified(ErrorCode.CONFIG, f"use vault+http://{where} (or tls=false): the server at {where} "
                                                "does not speak TLS (dev servers listen on plain http)")
        if "CERTIFICATE_VERIFY_FAILED" in reason:
            return Classified(ErrorCode.CONFIG, "set ca_cert (or VAULT_CACERT) to the CA bundle that signed the "
                                                f"server's certificate: untrusted certificate from {_origin(url)} "
                                                f"({_ssl_reason(reason)})")
        if "certificate" in reason.lower():  # e.g. the server wants a client certificate
            return Classified(ErrorCode.CONFIG, f"check client_cert and client_key: the TLS handshake with {where} "
                                                f"failed ({_ssl_reason(reason)})")
        return Classified(ErrorCode.UNAVAILABLE, f"TLS connection to {_origin(url)} failed ({_ssl_reason(reason)})")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Classified(ErrorCode.UNAVAILABLE, f"timed out connecting to {_origin(url)}")
    if isinstance(exc, requests.exceptions.Timeout):
        return Classified(ErrorCode.DEADLINE_EXCEEDED,
                          f"timed out waiting for the reply of {_origin(url)} (the call may have taken effect)")
    if isinstance(exc, requests.exceptions.ConnectionError):
        why = "connection refused" if "refused" in str(exc).lower() else type(exc).__name__
        return Classified(ErrorCode.UNAVAILABLE,
                          f"cannot connect to {_origin(url)} ({why}): is the server running, and is this its address?")
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return Classified(ErrorCode.CONFIG, f"vault: bad server address: {type(exc).__name__}")
    return Classified(ErrorCode.UNAVAILABLE, f"vault: {type(exc).__name__}")


def _host(url: str | None) -> str:
    """``host:port`` of a request URL (no scheme, path, query or user info), for messages."""
    parts = urlsplit(url or "")
    if not parts.hostname:
        return "the server"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port}" if parts.port else host


def _origin(url: str | None) -> str:
    """``scheme://host:port`` of a request URL, for messages."""
    scheme = urlsplit(url or "").scheme
    return f"{scheme}://{_host(url)}" if scheme else _host(url)


def _ssl_reason(text: str) -> str:
    """OpenSSL's own words (``certificate verify failed: ...``) out of urllib3's wrapping."""
    found = re.search(r"\] ([^(]+?) \(_ssl", text)
    return found.group(1) if found else "TLS error"


def _classify_vault(exc: hx.VaultError) -> Classified:
    detail = _detail(exc)
    for kind, code in _HVAC_CODES:
        if isinstance(exc, kind):
            return Classified(code, detail)
    # hvac's UnexpectedError has no status; our adapter attaches it, else the message tells.
    status = getattr(exc, "status_code", None)
    by_status = TABLE.for_status(status if isinstance(status, int) else None)
    if by_status is not None:
        return Classified(by_status, detail)
    text = detail.lower()
    if "too large" in text:
        return Classified(ErrorCode.INVALID_ARGUMENT, detail)
    if "unsupported operation" in text:
        return Classified(ErrorCode.NOT_SUPPORTED, detail)
    if "locked" in text:
        return Classified(ErrorCode.PERMISSION_DENIED, detail)
    return Classified(ErrorCode.UNKNOWN, detail)


def _detail(exc: Any) -> str:
    errors = [e for e in (getattr(exc, "errors", None) or []) if isinstance(e, str)]
    message = "; ".join(" ".join(e.replace("*", " ").split()) for e in errors) or type(exc).__name__
    where = " ".join(p for p in (getattr(exc, "method", None), _path_of(getattr(exc, "url", None) or "")) if p)
    return f"vault: {message} ({where})" if where else f"vault: {message}"


def _path_of(url: str) -> str:
    marker = url.find("/v1/")
    return url[marker:] if marker >= 0 else url


def _says(exc: BaseException, kind: type[hx.VaultError], text: str) -> bool:
    return isinstance(exc, kind) and any(text in str(e) for e in (exc.errors or []))


def cas_required(exc: BaseException) -> bool:
    """The mount or key has ``cas_required`` and the write sent no ``cas``."""
    return _says(exc, hx.InvalidRequest, "check-and-set parameter required")


def cas_mismatch(exc: BaseException) -> bool:
    """The write's ``cas`` is not the current version number."""
    return _says(exc, hx.InvalidRequest, "check-and-set parameter did not match")


def unknown_role(exc: BaseException) -> bool:
    """A secrets engine's "unknown role" (a 400 on the database and PKI engines, not a 404)."""
    return _says(exc, hx.InvalidRequest, "unknown role")


def acl_denied(exc: BaseException) -> bool:
    """A 403 from the ACL check (Vault wraps it: "1 error occurred: * permission denied"), which
    a live token gets; a dead or unknown token gets a bare "permission denied"."""
    return _says(exc, hx.Forbidden, "error occurred")


def missing_reason(exc: BaseException, version: str | None) -> str:
    """Why a KV v2 read found nothing: no such secret or version, or a deleted/destroyed version."""
    body = getattr(exc, "json", None) or {}
    meta = ((body.get("data") or {}).get("metadata") or {}) if isinstance(body, dict) else {}
    number = meta.get("version", version)
    which = f"version {number}" if version else f"the current version {number}"
    if meta.get("destroyed"):
        return f"{which} was destroyed and cannot be recovered"
    if meta.get("deletion_time"):
        return (f"{which} is deleted (soft delete at {meta['deletion_time']}; "
                "recoverable with `vault kv undelete` until purged)")
    return f"version {version} not found" if version else "secret not found"
