"""The HTTP side of vault://: the server address, TLS, an hvac client that never retries, and
the one request made at open to find the KV mount and its version."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import hvac
import hvac.adapters
import hvac.exceptions
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from secretkit.drivers.base import ConfigError, StoreURL, request_timeout
from secretkit.drivers.vault.options import Options


def server_address(url: StoreURL, opts: Options) -> str:
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


class StatusAdapter(hvac.adapters.JSONAdapter):  # type: ignore[misc]
    """hvac's JSON adapter, but its exceptions also carry the HTTP status (for 412, 423, ...),
    and each request's timeout is the ``timeout`` option capped at what is left of the store's
    attempt (requests' timeouts are per socket read: the store bounds the whole attempt; this
    ends a request it has given up on as soon as the SDK can, and sends no further one)."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["timeout"] = request_timeout(kwargs.get("timeout", self._kwargs.get("timeout")))
        return super().request(*args, **kwargs)

    def _raise_for_error(self, method: str, url: str, response: Any) -> None:
        try:
            super()._raise_for_error(method, url, response)
        except hvac.exceptions.VaultError as exc:
            exc.status_code = response.status_code
            raise


def _verify(opts: Options) -> bool | str:
    if not opts.tls_verify:
        return False
    if opts.ca_cert:
        return opts.ca_cert
    return os.environ.get("VAULT_CACERT") or os.environ.get("VAULT_CAPATH") or True


def build_client(url: StoreURL, opts: Options) -> Any:
    """An hvac client whose HTTP layer never retries (the store's RetryPolicy is the only retry)."""
    session = requests.Session()
    for scheme in ("http://", "https://"):
        session.mount(scheme, HTTPAdapter(max_retries=Retry(total=0, read=False, redirect=0)))
    verify = _verify(opts)
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
        adapter=StatusAdapter,
    )


def detect_mount(client: Any, run: Callable[[Callable[[], Any]], Any], path: str) -> tuple[str, str, int]:
    """(mount, folder inside it, KV version) for a URL path, from ``sys/internal/ui/mounts``
    (answered for any token with a capability somewhere under the mount)."""
    reply = run(lambda: client.adapter.get(f"/v1/sys/internal/ui/mounts/{path}"))
    data = reply["data"]
    if data.get("type") not in ("kv", "generic"):
        raise ConfigError(f"vault mount {data.get('path')!r} is a {data.get('type')!r} engine, not kv")
    mount = str(data["path"]).strip("/")
    prefix = path[len(mount):].strip("/") if path.startswith(mount) else ""
    version = int(((data.get("options") or {}).get("version")) or 1)
    return mount, prefix, version
