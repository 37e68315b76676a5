"""The vault URL and the ``SecretClient`` of an azure-kv:// store.

(The credential is made in ``credentials``.) azure-core's own retries are off
(``retry_total=0``): the store's RetryPolicy is the only retry layer, so a throttled call (429)
is retried by the store with its backoff, never by both (which would multiply attempts).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from secretkit.drivers.azure.options import Options
from secretkit.drivers.base import ConfigError, StoreURL

PUBLIC_SUFFIX = ".vault.azure.net"


def vault_url(url: StoreURL, opts: Options) -> str:
    """``https://NAME.vault.azure.net`` for ``azure-kv://NAME``; ``https://HOST[:PORT]`` for a
    host with a dot or a port; the ``vault_url`` option as given."""
    if url.path not in ("", "/"):
        raise ConfigError("an azure-kv URL names only the vault: azure-kv://VAULT_NAME or azure-kv://HOST[:PORT]")
    if opts.vault_url:
        if url.host:
            raise ConfigError("give the vault either in the URL (azure-kv://VAULT_NAME) or as vault_url, not both")
        if not opts.vault_url.startswith("https://"):
            raise ConfigError("vault_url must be https:// (Key Vault's bearer authentication refuses plain HTTP)")
        return opts.vault_url.rstrip("/")
    if not url.host:
        raise ConfigError("no vault: use azure-kv://VAULT_NAME (or the vault_url option)")
    if "." in url.host or ":" in url.host or url.port is not None or url.host == "localhost":
        host = f"[{url.host}]" if ":" in url.host else url.host
        return f"https://{host}" + (f":{url.port}" if url.port is not None else "")
    return f"https://{url.host}{PUBLIC_SUFFIX}"


def is_loopback(vault: str) -> bool:
    """True for a vault on this machine (a local test server)."""
    host = vault.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_client(vault: str, opts: Options, cred: Any) -> Any:
    """A ``SecretClient`` for ``vault`` with SDK retries off (see the module docstring)."""
    from azure.keyvault.secrets import SecretClient  # noqa: PLC0415 - imported with the driver anyway

    verify_resource = opts.verify_challenge_resource
    if verify_resource is None:
        # A loopback server cannot answer for a real vault domain: the SDK would refuse its
        # challenge. Every other host keeps the SDK's check.
        verify_resource = not is_loopback(vault)
    kwargs: dict[str, Any] = {"retry_total": 0, "verify_challenge_resource": verify_resource}
    if opts.ca_bundle:
        kwargs["connection_verify"] = opts.ca_bundle
    if opts.api_version:
        kwargs["api_version"] = opts.api_version
    return SecretClient(vault_url=vault, credential=cred, **kwargs)
