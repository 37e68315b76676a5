"""Vault/OpenBao dynamic credentials (the ``Leases`` Protocol), for KV v1 and v2 stores alike.

The path is the engine's own, outside the store's KV mount (reference §7):

| call | request | reply read |
|---|---|---|
| ``issue(path, None)`` | ``GET /v1/PATH`` (``database/creds/ROLE``, ``.../static-creds/ROLE``) | the envelope |
| ``issue(path, params)`` | ``POST /v1/PATH`` with ``params`` (``pki/issue/ROLE``) | the envelope |
| ``renew(id, s)`` | ``PUT /v1/sys/leases/renew {"lease_id", "increment": s}`` | ``lease_duration``: granted from now |
| ``revoke(id)`` | ``PUT /v1/sys/leases/revoke {"lease_id"}`` | 204, also for a lease already gone |

The envelope: ``lease_id``, ``lease_duration``, ``renewable``, ``data``; PKI without
``generate_lease`` answers ``lease_id ""`` and ``data.expiration`` (the certificate's notAfter).
A static role's reply has ``lease_id ""`` and ``data.ttl`` (seconds until Vault rotates it):
``rotated``, so the store reads it again then. Unknown roles are a 400 ``unknown role`` on
every engine: ``NotFoundError``. Renewing an expired lease is a 400 ``lease not found``, a
PKI lease a 400 ``lease is not renewable`` (both non-transient: the store issues anew).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from secretkit.drivers.base import Issued, NotFoundError
from secretkit.drivers.vault.errors import unknown_role

T = TypeVar("T")

#: What a static role's reply carries besides the credential and changes on every read.
_STATIC_VOLATILE = frozenset({"ttl"})


class VaultLeases:
    """``issue``, ``renew`` and ``revoke`` over the driver's client and token keeper."""

    client: Any

    def _run(self, call: Callable[[], T]) -> T:  # provided by VaultDriverBase
        raise NotImplementedError

    def issue(self, path: str, params: Mapping[str, Any] | None) -> Issued:
        url = "/v1/" + quote(path, safe="/")
        adapter = self.client.adapter
        try:
            if params is None:
                reply = self._run(lambda: adapter.get(url))
            else:
                body = dict(params)
                reply = self._run(lambda: adapter.post(url, json=body))
        except Exception as exc:
            if unknown_role(exc):
                raise NotFoundError(f"vault: unknown role ({path})") from exc
            raise
        if not isinstance(reply, dict):  # 204: the path issues nothing (a write-only config path)
            raise NotFoundError(f"vault: {path} returned no credential")
        return issued_of(reply)

    def renew(self, lease_id: str, increment: float) -> float:
        seconds = max(1, math.ceil(increment))
        reply = self._run(lambda: self.client.sys.renew_lease(lease_id=lease_id, increment=seconds))
        return float(reply.get("lease_duration") or 0)

    def revoke(self, lease_id: str) -> None:
        self._run(lambda: self.client.sys.revoke_lease(lease_id=lease_id))


def issued_of(reply: Mapping[str, Any]) -> Issued:
    """The ``Issued`` of a Vault reply envelope."""
    data = reply.get("data") or {}
    lease_id = reply.get("lease_id") or None
    if lease_id:
        duration = float(reply.get("lease_duration") or 0)
        return Issued(data, lease_id=lease_id, ttl=duration or None, renewable=bool(reply.get("renewable")))
    if isinstance(data.get("expiration"), (int, float)) and not isinstance(data.get("expiration"), bool):
        return Issued(data, ttl=float(data["expiration"]) - time.time())  # PKI: the certificate's notAfter
    if isinstance(data.get("ttl"), (int, float)) and "last_vault_rotation" in data:
        return Issued(data, ttl=float(data["ttl"]), rotated=True, volatile=_STATIC_VOLATILE)  # a static role
    return Issued(data)
