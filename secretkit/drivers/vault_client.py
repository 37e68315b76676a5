"""The HTTP side of the vault:// driver: server address, TLS, an hvac client that never
retries, and the mapping of hvac/requests exceptions to portable error codes."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from secretkit.config import StoreURL
from secretkit.drivers.base import Classified
from secretkit.errors import ConfigError, ErrorCode

if TYPE_CHECKING:
    from secretkit.drivers.vault import VaultOptions


def server_address(url: StoreURL, opts: VaultOptions) -> str:
    """``https://host:port`` from the URL (or ``VAULT_ADDR``), honouring ``tls`` and the scheme."""
    if not url.host:
        addr = os.environ.get("VAULT_ADDR")
        if not addr:
            raise ConfigError("vault:// URL has no host and VAULT_ADDR is not set")
        if opts.tls is not None:
            addr = re.sub(r"^https?://", "https://" if opts.tls else "http://", addr)
        return addr.rstrip("/")
    tls = opts.tls if opts.tls is not None else url.scheme != "vault+http"
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port else ""
    return f"{'https' if tls else 'http'}://{host}{port}"


def _status_adapter() -> Any:
    """hvac's JSON adapter, but its exceptions also carry the HTTP status (for 412, 423, ...)."""
    import hvac.adapters
    import hvac.exceptions

    class StatusAdapter(hvac.adapters.JSONAdapter):  # type: ignore[misc]
        def _raise_for_error(self, method: str, url: str, response: Any) -> None:
            try:
                super()._raise_for_error(method, url, response)
            except hvac.exceptions.VaultError as exc:
                exc.status_code = response.status_code
                raise

    return StatusAdapter


def build_client(url: StoreURL, opts: VaultOptions) -> Any:
    """An hvac client whose HTTP layer never retries (the store's RetryPolicy is the only retry)."""
    import hvac
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    for scheme in ("http://", "https://"):
        session.mount(scheme, HTTPAdapter(max_retries=Retry(total=0, read=False, redirect=0)))
    verify: bool | str = True
    if not opts.tls_verify:
        verify = False
    elif opts.ca_cert:
        verify = opts.ca_cert
    elif os.environ.get("VAULT_CACERT") or os.environ.get("VAULT_CAPATH"):
        verify = os.environ.get("VAULT_CACERT") or os.environ["VAULT_CAPATH"]
    cert_file = opts.client_cert or os.environ.get("VAULT_CLIENT_CERT")
    key_file = opts.client_key or os.environ.get("VAULT_CLIENT_KEY")
    if bool(cert_file) != bool(key_file):
        raise ConfigError("client_cert and client_key go together (options or VAULT_CLIENT_CERT/VAULT_CLIENT_KEY)")
    cert = (cert_file, key_file) if cert_file and key_file else None
    session.verify = verify
    if cert:
        session.cert = cert
    return hvac.Client(
        url=server_address(url, opts),
        token="",  # never let hvac pick a token up itself; TokenKeeper decides
        verify=verify,
        cert=cert,
        timeout=opts.timeout,
        namespace=opts.namespace or os.environ.get("VAULT_NAMESPACE") or None,
        session=session,
        adapter=_status_adapter(),
    )





def classify(exc: BaseException) -> Classified | None:
    """hvac and requests exceptions → portable codes. Details are Vault's messages, never values."""
    import hvac.exceptions as hx
    import requests

    if isinstance(exc, hx.VaultError):
        detail = _vault_detail(exc)
        for kind, code in (
            (hx.InvalidRequest, ErrorCode.INVALID_ARGUMENT),
            (hx.Unauthorized, ErrorCode.UNAUTHENTICATED),
            (hx.Forbidden, ErrorCode.PERMISSION_DENIED),
            (hx.InvalidPath, ErrorCode.NOT_FOUND),
            (hx.RateLimitExceeded, ErrorCode.THROTTLED),
            (hx.InternalServerError, ErrorCode.UNAVAILABLE),
            (hx.VaultNotInitialized, ErrorCode.UNAVAILABLE),
            (hx.BadGateway, ErrorCode.UNAVAILABLE),
            (hx.VaultDown, ErrorCode.UNAVAILABLE),
        ):
            if isinstance(exc, kind):
                return Classified(code, detail)
        # hvac's UnexpectedError has no status; our adapter attaches it, else the message tells.
        status = getattr(exc, "status_code", None)
        if status in _STATUS_CODES:
            return Classified(_STATUS_CODES[status], detail)
        text = detail.lower()
        if "too large" in text:
            return Classified(ErrorCode.INVALID_ARGUMENT, detail)
        if "unsupported operation" in text:
            return Classified(ErrorCode.NOT_SUPPORTED, detail)
        if "locked" in text:
            return Classified(ErrorCode.PERMISSION_DENIED, detail)
        return Classified(ErrorCode.UNKNOWN, detail)
    if isinstance(exc, hx.ParamValidationError):
        return Classified(ErrorCode.INVALID_ARGUMENT, f"vault: {exc}")
    if isinstance(exc, requests.exceptions.SSLError):
        reason = str(exc).lower()
        if "certificate" in reason or "wrong version number" in reason or "record layer failure" in reason:
            # An untrusted certificate, or TLS spoken to a plain-http server: retrying cannot help.
            return Classified(ErrorCode.CONFIG, "vault: TLS handshake failed: untrusted certificate or the server "
                                                "does not speak TLS (check ca_cert, or tls=false for http)")
        return Classified(ErrorCode.UNAVAILABLE, "vault: TLS connection failed")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Classified(ErrorCode.UNAVAILABLE, "vault: timed out connecting")
    if isinstance(exc, requests.exceptions.Timeout):
        return Classified(ErrorCode.DEADLINE_EXCEEDED, "vault: timed out waiting for the reply (the call may have taken effect)")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return Classified(ErrorCode.UNAVAILABLE, "vault: cannot connect to the server")
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return Classified(ErrorCode.CONFIG, f"vault: bad server address: {type(exc).__name__}")
    if isinstance(exc, requests.exceptions.RequestException):
        return Classified(ErrorCode.UNAVAILABLE, f"vault: {type(exc).__name__}")
    return None


#: Statuses hvac raises as UnexpectedError (reference §1.3).
_STATUS_CODES = {
    405: ErrorCode.NOT_SUPPORTED,
    412: ErrorCode.UNAVAILABLE,  # Enterprise: state not yet replicated to this node; retry
    413: ErrorCode.INVALID_ARGUMENT,
    415: ErrorCode.INVALID_ARGUMENT,
    423: ErrorCode.PERMISSION_DENIED,  # namespace locked by an administrator
}


def _vault_detail(exc: Any) -> str:
    errors = [e for e in (getattr(exc, "errors", None) or []) if isinstance(e, str)]
    message = "; ".join(" ".join(e.replace("*", " ").split()) for e in errors) or type(exc).__name__
    where = " ".join(p for p in (getattr(exc, "method", None), _path_of(getattr(exc, "url", None) or "")) if p)
    return f"vault: {message} ({where})" if where else f"vault: {message}"


def _path_of(url: str) -> str:
    marker = url.find("/v1/")
    return url[marker:] if marker >= 0 else url
