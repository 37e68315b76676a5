"""The azure-identity credential of an azure-kv:// store (options → credential; no I/O here).

* ``tenant_id`` + ``client_id`` + a client secret: a service principal, ``ClientSecretCredential``.
  The secret comes from the ``client_secret`` option, else from ``AZURE_CLIENT_SECRET`` (the
  variable azure-identity's own ``EnvironmentCredential`` reads), so that a URL or config file
  can name the principal while the secret stays in the environment.
* Otherwise ``DefaultAzureCredential`` (environment, workload identity, managed identity, Azure
  CLI ...); ``client_id`` alone picks a user-assigned managed identity.

Both ask Microsoft Entra ID at ``authority`` (default: ``AZURE_AUTHORITY_HOST``, else
login.microsoftonline.com; a sovereign cloud or Azure Stack names its own), over the same TLS
trust as the vault (``ca_bundle``: a proxy or private CA that signs the vault's certificate
signs the token service's too) and with the store's per-request ``timeout`` (azure-core would
wait 300 s). MSAL validates an authority it does not know by asking login.microsoftonline.com
("instance discovery"); a private authority turns that off (``disable_instance_discovery``),
which a loopback authority (a local test server) does by itself.

azure-identity is imported only here, when a store is opened (it is heavy, and a store handed a
ready client or credential never needs it).

A service principal's credential has azure-core's retries off (``retry_total=0``, as the
vault's client) and raises on a 5xx/429 of the token service before MSAL replays it
(``token_service``): the store's RetryPolicy is the only retry layer, and an Entra ID outage
is UNAVAILABLE, not a wrong secret. ``DefaultAzureCredential`` keeps its sources' own retries
(the managed identity endpoint's are part of its protocol); its transport failures and 5xx
are told from refusals all the same.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from secretkit.drivers.azure.client import is_loopback
from secretkit.drivers.azure.options import Options
from secretkit.drivers.azure.token_service import raise_transient
from secretkit.drivers.base import ConfigError

#: Where a service principal's secret is read from when the options name the principal only.
SECRET_VARIABLE = "AZURE_CLIENT_SECRET"


def credential(opts: Options) -> Any:
    """The credential the options describe (module docstring); ``ConfigError`` before any I/O
    when they describe none."""
    import azure.identity  # noqa: PLC0415 - heavy, and unused by stores given a client

    common = _common(opts)
    secret = _client_secret(opts)
    if secret is not None:
        assert opts.tenant_id is not None and opts.client_id is not None  # checked by _client_secret
        return azure.identity.ClientSecretCredential(opts.tenant_id, opts.client_id, secret, retry_total=0,
                                                     raw_response_hook=raise_transient, **common)
    if opts.client_id:  # a user-assigned managed identity (or workload identity) of this client id
        common["managed_identity_client_id"] = opts.client_id
    return azure.identity.DefaultAzureCredential(**common)


def _client_secret(opts: Options) -> str | None:
    """The service principal's secret, or None when the options name no service principal."""
    if opts.client_secret is not None:
        missing = [k for k in ("tenant_id", "client_id") if not getattr(opts, k)]
        if missing:
            raise ConfigError(f"a service principal needs tenant_id, client_id and client_secret (missing: {missing})")
        return opts.client_secret.get_secret_value()
    if not opts.tenant_id:
        return None
    if not opts.client_id:
        raise ConfigError("tenant_id is for a service principal: give client_id too, and its client_secret")
    found = os.environ.get(SECRET_VARIABLE)
    if not found:
        raise ConfigError(
            f"tenant_id and client_id name a service principal: give its secret in {SECRET_VARIABLE} (or the "
            "client_secret option); for a managed identity give client_id alone")
    return found


def authority_url(authority: str) -> str:
    """``authority`` as azure-identity takes it: a host (``login.microsoftonline.us``) or an
    ``https://`` URL, without a trailing ``/``."""
    parts = urlsplit(authority if "://" in authority else f"https://{authority}")
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError("authority is the Entra ID host (login.microsoftonline.us) or its https:// URL")
    return f"https://{parts.netloc}{parts.path}".rstrip("/")


def _common(opts: Options) -> dict[str, Any]:
    """Keyword arguments every credential takes: authority, TLS trust, timeouts."""
    kwargs: dict[str, Any] = {"connection_timeout": opts.timeout, "read_timeout": opts.timeout}
    if opts.ca_bundle:
        kwargs["connection_verify"] = opts.ca_bundle
    authority = authority_url(opts.authority) if opts.authority else None
    if authority:
        kwargs["authority"] = authority
    off = opts.disable_instance_discovery
    if off is None:
        off = authority is not None and is_loopback(authority)
    if off:
        kwargs["disable_instance_discovery"] = True
    return kwargs
