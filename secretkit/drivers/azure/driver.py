"""AzureKeyVaultDriver: each portable call as the Key Vault REST calls it becomes.

| portable             | Key Vault (``SecretClient``)                                             |
|----------------------|--------------------------------------------------------------------------|
| read (current)       | GET /secrets/{name}/ (``latest``: the newest version by creation time)   |
| read(version=V)      | GET /secrets/{name}/{V}                                                  |
| read_previous        | GET /secrets/{name}/versions, then GET the newest enabled one before it  |
| write                | GET /secrets/{name}/ (tags, content type, exp/nbf to keep), then PUT     |
| delete               | DELETE /secrets/{name} (soft delete: recoverable for the retention period) |
| delete(purge=True)   | DELETE, wait for GET /deletedsecrets/{name}, DELETE /deletedsecrets/{name} |
| list                 | GET /secrets (paged by nextLink); the ``secretkit-name`` tag → name as written |
| versions             | GET /secrets/{name}/versions (paged), ordered by ``history``             |
| claim (``ClaimLog``) | PUT a version of the companion, wait ~1 s, GET its versions: oldest wins |
| release              | PATCH every enabled version of the companion to ``enabled: false``       |

Key Vault has no conditional write (no ETag, no If-Match on the data plane), so neither
compare-and-set nor create-only can be atomic: both are ``NotSupportedError`` (refused by the
store before any I/O). Staged rotation keeps its pending value in a companion that is a
first-writer-wins log instead (``claims``), so concurrent rotators still have one winner. A ``put`` on a
soft-deleted name is Key Vault's 409 ``ObjectIsDeletedButRecoverable``: a ``ConflictError``
saying to recover or purge; the driver never purges unless asked. Every request carries the
``timeout`` option capped at what is left of the store's attempt; SDK retries are off (client).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from secretkit.drivers.azure import claims, codec, history
from secretkit.drivers.azure.client import make_client, vault_url
from secretkit.drivers.azure.credentials import credential
from secretkit.drivers.azure.codec import BACKEND
from secretkit.drivers.azure.errors import classify
from secretkit.drivers.azure.options import Options
from secretkit.drivers.base import (
    host_of,
    Capabilities,
    ClaimLog,
    Classified,
    History,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    Record,
    SdkClient,
    Stage,
    StoreURL,
    Value,
    ValueLimits,
    VersionInfo,
    request_timeout,
    UnavailableError,
    time_left,
    validate_options as validate,
)

_CURRENT = frozenset({Stage.CURRENT})
_PREVIOUS = frozenset({Stage.PREVIOUS})


class AzureKeyVaultDriver:
    """Translates portable calls to Key Vault requests; owns no state beyond the client."""

    backend = BACKEND
    names = codec.NAMES
    # azure-core's NetworkTraceLoggingPolicy (logging_enable=True) prints whole request and
    # response bodies and headers at DEBUG; azure-identity logs token requests.
    sdk_loggers = ("azure", "msal", "urllib3")
    protocols = (History, ClaimLog, ValueLimits, SdkClient)
    #: The secret's ``value`` in request and response bodies; the credentials of token requests.
    sdk_value_keys = ("value", "client_secret", "client_assertion", "access_token", "refresh_token")
    capabilities = Capabilities(
        remote=True,
        versions=True,
        compare_and_set=False,
        create_only=False,
        recoverable_delete=True,
        idempotent_put=False,
        max_value_bytes=codec.MAX_PORTABLE_VALUE,
    )

    def __init__(self, client: Any, *, timeout: float = 30.0, credential: Any = None, owns_client: bool = False) -> None:
        self.client = client
        self._timeout = timeout
        self._credential = credential
        self._owns_client = owns_client

    def _kw(self) -> dict[str, Any]:
        """Per-request timeouts: the option, capped at what is left of the store's attempt."""
        limit = request_timeout(self._timeout)
        return {"connection_timeout": limit, "read_timeout": limit}

    def _stored(self, name: str) -> str:
        """The Key Vault name of an existing secret; a name Key Vault cannot hold names none."""
        try:
            return self.names.storage_name(name)
        except InvalidArgumentError as exc:
            raise NotFoundError(f"no secret can exist under this name ({exc})") from None

    # -- reads ------------------------------------------------------------------------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        if stage not in (None, Stage.CURRENT):
            raise NotSupportedError(f"Azure Key Vault has no native {stage!r} stage")
        if version is not None and not codec.valid_version(version):
            raise NotFoundError(f"no version {version!r}: Key Vault versions are ids of letters and digits")
        secret = self.client.get_secret(self._stored(name), version, **self._kw())
        return codec.record_of(secret, _CURRENT if version is None else frozenset())

    def read_previous(self, name: str) -> Record:
        previous = history.previous_of(self._ordered(name))
        if previous is None:
            raise NotFoundError("secret has no enabled version before the current one")
        return codec.record_of(self.client.get_secret(self._stored(name), previous.version, **self._kw()), _PREVIOUS)

    def _ordered(self, name: str) -> list[Any]:
        found = history.newest_first(self.client.list_properties_of_secret_versions(self._stored(name), **self._kw()))
        if not found:
            raise NotFoundError("secret has no versions")
        return found

    def versions(self, name: str) -> Sequence[VersionInfo]:
        return history.infos(name, self._ordered(name))

    def list(self, prefix: str) -> Iterator[str]:
        # Key Vault lists every secret (no server-side filter); the prefix is checked here.
        for props in self.client.list_properties_of_secrets(**self._kw()):
            name = codec.listed_name(props.name or "", props.tags)
            if name.startswith(prefix):
                yield name

    # -- writes -----------------------------------------------------------------------

    def check_value(self, name: str, value: Value) -> None:
        codec.check_value(value)

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        if if_version is not None or create_only:
            raise NotSupportedError("Azure Key Vault has no conditional write (compare-and-set, create-only)")
        stored = self.names.storage_name(name)
        current = self._current_properties(stored)
        text, content_type, tags = codec.next_properties(
            value, name, stored, getattr(current, "content_type", None), getattr(current, "tags", None)
        )
        written = self.client.set_secret(
            stored, text, content_type=content_type, tags=tags,
            not_before=getattr(current, "not_before", None), expires_on=getattr(current, "expires_on", None),
            **self._kw(),
        )
        props = written.properties
        return VersionInfo(name, props.version or "", props.created_on, _CURRENT)

    def _current_properties(self, stored: str) -> Any:
        """The current version's properties, whose tags, content type and exp/nbf the next
        version keeps; None for a new secret."""
        try:
            return self.client.get_secret(stored, **self._kw()).properties
        except ResourceNotFoundError:
            return None

    def delete(self, name: str, *, purge: bool) -> None:
        stored = self._stored(name)
        try:
            self.client.begin_delete_secret(stored, **self._kw())  # the request only; no poller thread
        except ResourceNotFoundError:
            if not purge:
                raise
            # Already soft-deleted: purge it (the caller asked to destroy what is recoverable).
            self.client.purge_deleted_secret(stored, **self._kw())
            return
        if purge:
            self._wait_deleted(stored)
            self.client.purge_deleted_secret(stored, **self._kw())

    def _wait_deleted(self, stored: str) -> None:
        """Until the soft delete has finished (Key Vault deletes in the background), within the
        store's attempt (or ``timeout`` outside one): purging before then is refused."""
        pause, end = 0.05, time.monotonic() + self._timeout
        while time.monotonic() < end:
            try:
                self.client.get_deleted_secret(stored, **self._kw())
                return
            except ResourceNotFoundError:
                left = time_left()
                time.sleep(min(pause, max(0.0, left)) if left is not None else pause)
                pause = min(pause * 2, 2.0)
        raise UnavailableError(f"the soft delete did not finish within {self._timeout:g} s; purge again later")

    # -- the rotation companion: a first-writer-wins log (claims) -------------------------

    def claim(self, name: str, value: Value, *, token: str) -> Record:
        return claims.claim(self.client, self.names.storage_name(name), name, value, self._kw)

    def read_claim(self, name: str) -> Record:
        return claims.read_claim(self.client, self._stored(name), self._kw)

    def release(self, name: str) -> None:
        try:
            stored = self._stored(name)
        except NotFoundError:
            return
        claims.release(self.client, stored, self._kw)

    @property
    def server_address(self) -> str | None:
        """The host the SDK client talks to (telemetry's ``server.address``)."""
        return host_of(self.client.vault_url)

    # -- errors, lifecycle ---------------------------------------------------------------

    def classify(self, exc: BaseException) -> Classified | None:
        return classify(exc)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
            if self._credential is not None:
                self._credential.close()


#: The driver classes this factory opens, by the title docs/capabilities.md gives them.
DRIVERS: dict[str, type] = {"azure-kv": AzureKeyVaultDriver}


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> AzureKeyVaultDriver:
    """Build the driver for ``azure-kv://VAULT_NAME`` (or ``azure-kv://HOST:PORT``, or ``vault_url``)."""
    opts = validate(Options, options, what="azure-kv store")
    if client is not None:
        return AzureKeyVaultDriver(client, timeout=opts.timeout)
    vault = vault_url(url, opts)
    if opts.credential is not None:  # the user's: used, never closed
        return AzureKeyVaultDriver(make_client(vault, opts, opts.credential), timeout=opts.timeout, owns_client=True)
    cred = credential(opts)
    return AzureKeyVaultDriver(make_client(vault, opts, cred), timeout=opts.timeout, credential=cred, owns_client=True)
