"""KV v1: one unversioned map per path; a write overwrites, a delete is permanent, no stages.

Version ids are a digest of the stored map, so they change exactly when the value does. KV v1
refuses a map without fields, so ``put({})`` is refused before any request.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import hvac.exceptions as hx

from secretkit.drivers.base import (
    Capabilities,
    Leases,
    NotFoundError,
    NotSupportedError,
    Record,
    SdkClient,
    Stage,
    Value,
    ValueLimits,
    VersionInfo,
)
from secretkit.drivers.vault.codec import digest
from secretkit.drivers.vault.kv import VaultDriverBase, keys_of
from secretkit.drivers.vault.options import DEFAULT_MAX_VALUE_BYTES

KV1_CAPABILITIES = Capabilities(
    versions=False,
    compare_and_set=False,
    create_only=False,
    recoverable_delete=False,
    idempotent_put=True,  # an overwrite repeated with the same value leaves the same state
    max_value_bytes=DEFAULT_MAX_VALUE_BYTES,
)


class KV1Driver(VaultDriverBase):
    """KV v1 (``GET``/``PUT``/``DELETE``/``LIST`` on ``<mount>/<path>``)."""

    protocols = (ValueLimits, SdkClient, Leases)
    capabilities = KV1_CAPABILITIES
    empty_map_ok = False

    def _kv(self) -> Any:
        return self.client.secrets.kv.v1

    def _get(self, path: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = self._run(lambda: self._kv().read_secret(path, mount_point=self.mount))["data"]
        except hx.InvalidPath as exc:
            raise NotFoundError("secret not found") from exc
        return data

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        if version is not None or stage not in (None, Stage.CURRENT):
            raise NotSupportedError("KV v1 keeps no versions or stages")
        data = self._get(self._path(name))
        return Record(self._decode(data), digest(data))

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        if if_version is not None or create_only:
            raise NotSupportedError("KV v1 has no check-and-set")
        path = self._path(name)
        data = self._encode(value)
        self._run(lambda: self._kv().create_or_update_secret(path, secret=data, method="PUT", mount_point=self.mount))
        return VersionInfo(name, digest(data), None, frozenset({Stage.CURRENT}))

    def delete(self, name: str, *, purge: bool) -> None:
        path = self._path(name)
        self._get(path)  # KV v1 deletes silently; the portable API reports a missing secret
        self._run(lambda: self._kv().delete_secret(path, mount_point=self.mount))

    def versions(self, name: str) -> Sequence[VersionInfo]:
        raise NotSupportedError("KV v1 keeps no versions")

    def list(self, prefix: str) -> Iterator[str]:
        return self._walk(prefix, self._list_folder)

    def _list_folder(self, folder: str) -> Sequence[str]:
        try:
            reply = self._run(lambda: self._kv().list_secrets(folder, mount_point=self.mount))
        except hx.InvalidPath:
            return []
        return [str(k) for k in keys_of(reply)]

