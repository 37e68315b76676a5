"""Leases: dynamic credentials the store keeps valid (Vault's database and PKI engines).

``store.lease(path)`` issues a credential through the driver's ``Leases`` Protocol and hands
back a ``Lease``; the store's one lease worker (``secretkit.lease_keeper``) renews it when a
third of its TTL is left, issues a new one before it runs out, calls the ``on_change`` callbacks
and revokes the old one after a grace period. This module is the object applications hold and
the checks made before any I/O; the schedule is the keeper's.

A lease's values never enter the store's cache, audit events, logs or exception messages; its
``repr`` shows the path and timing only. A lease id lets its holder revoke the credential, so it
is logged at DEBUG only.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Awaitable, Callable, Generator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from secretkit.drivers.base import Issued
from secretkit.errors import InvalidArgumentError, LeaseExpiredError
from secretkit.lease_keeper import Callback, Held, LeaseHost, LeaseKeeper, check_lease_request
from secretkit.secret import Kind, Secret, Value

__all__ = ["AsyncLeasing", "Lease", "close_leases", "issue", "keeper_of"]

_KEEPERS: weakref.WeakKeyDictionary[Any, LeaseKeeper] = weakref.WeakKeyDictionary()


def keeper_of(host: LeaseHost) -> LeaseKeeper:
    """The store's lease keeper, made on its first lease (one per store)."""
    keeper = _KEEPERS.get(host)
    if keeper is None:
        keeper = _KEEPERS.setdefault(host, LeaseKeeper(host))
    return keeper


def issue(host: LeaseHost, path: str, params: Mapping[str, Any] | None) -> Lease:
    """Issue a credential now (in the caller's thread, with the store's retries) and have the
    store's lease worker keep it valid."""
    driver = check_lease_request(host, path, params)
    keeper = keeper_of(host)
    held = keeper.obtain(driver, path, params)
    lease = Lease(keeper, path, params, held)
    keeper.hold(lease, held)
    return lease


def close_leases(host: LeaseHost) -> None:
    """Revoke every lease the store still holds and stop its lease worker (``store.close``)."""
    keeper = _KEEPERS.pop(host, None)
    if keeper is not None:
        keeper.close()


class Lease:
    """A credential the store keeps valid: ``lease["password"]``, ``lease.fields``, ``lease.secret``.

    Made by ``store.lease(path)``. Reading it never does I/O and never returns a credential that
    ran out: after its expiry, with renewal and re-issue failing, it raises ``LeaseExpiredError``.
    ``close()`` (or leaving a ``with`` block) revokes it; ``store.close()`` revokes those left.
    """

    def __init__(self, keeper: LeaseKeeper, path: str, params: Mapping[str, Any] | None, held: Held) -> None:
        self.path = path
        """The engine path the credential comes from."""
        self.backend: str = keeper.backend
        self.params = dict(params) if params is not None else None
        """The request body the credential is issued with (None: a read)."""
        self._keeper = keeper
        self._held = held
        self._callbacks: list[Callback] = []
        self._closed = False

    # -- the credential (no I/O) -------------------------------------------------------

    def _current(self) -> Issued:
        held = self._held
        if self._closed:
            raise LeaseExpiredError("the lease was closed (its credential is revoked)", name=self.path,
                                    backend=self.backend)
        limit = self._keeper.hard_expiry(held)
        if limit is not None and self._keeper.clock() >= limit:
            self._keeper.wake()
            why = f" (last error: {held.last_error})" if held.last_error else ""
            raise LeaseExpiredError(f"the lease's credential expired and could not be renewed or re-issued{why}",
                                    name=self.path, backend=self.backend)
        if held.inherited:
            self._keeper.wake()  # a forked child: issue its own credential in the background
        return held.issued

    @property
    def fields(self) -> dict[str, Any]:
        """The credential's data as the engine returned it (a copy)."""
        return dict(self._current().data)

    def __getitem__(self, key: str) -> Any:
        data = self._current().data
        if key not in data:
            raise KeyError(f"the credential of {self.path!r} has no field {key!r} (it has {sorted(data)})")
        return data[key]

    @property
    def secret(self) -> Secret:
        """The credential as a ``Secret`` (name: the path; version: a counter of credentials)."""
        data = self._current().data
        fields = {k: v if isinstance(v, (str, bytes)) else _json(v) for k, v in data.items()}
        return Secret(self.path, str(self._keeper.generation(self)), Value(Kind.FIELDS, fields))

    @property
    def lease_id(self) -> str | None:
        """The backend's lease id (None where the engine gives none: static roles, PKI without
        ``generate_lease``). It lets its holder revoke the credential: keep it out of logs."""
        return self._held.issued.lease_id

    @property
    def renewable(self) -> bool:
        return self._held.issued.renewable

    @property
    def expires_at(self) -> datetime | None:
        """When the current credential stops working (aware UTC), or None; for a static role,
        when the backend rotates it."""
        expires = self._held.expires
        if expires is None:
            return None
        return datetime.now(timezone.utc) + timedelta(seconds=expires - self._keeper.clock())

    @property
    def closed(self) -> bool:
        return self._closed

    # -- changes -----------------------------------------------------------------------

    def on_change(self, callback: Callable[[Lease], Any]) -> Callable[[Lease], Any]:
        """Call ``callback(lease)`` after the credential changed (a re-issue, a static role's
        rotation), from the store's lease worker; a coroutine function is run on the event loop
        it was registered from. A failing callback is logged and never stops the worker.
        Returns ``callback`` (usable as a decorator)."""
        if not callable(callback):
            raise InvalidArgumentError("on_change takes a callable", name=self.path, backend=self.backend)
        loop = None
        if inspect.iscoroutinefunction(callback):
            import asyncio  # only for async callbacks: ``import secretkit`` loads no asyncio

            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise InvalidArgumentError("an async on_change callback must be registered from a running event loop",
                                           name=self.path, backend=self.backend) from None
        self._keeper.add_callback(self, (callback, loop))
        return callback

    # -- ending ------------------------------------------------------------------------

    def close(self) -> None:
        """Revoke the credential (and any replaced one still in its grace period); idempotent."""
        self._keeper.release(self)

    async def aclose(self) -> None:
        """``close`` from asyncio code (the revocation runs in a thread)."""
        import asyncio

        await asyncio.to_thread(self.close)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        expires = self.expires_at
        when = expires.isoformat(timespec="seconds") if expires is not None else None
        return (f"Lease(path={self.path!r}, backend={self.backend!r}, {state}, renewable={self.renewable}, "
                f"expires_at={when})")

    __str__ = __repr__


def _json(item: Any) -> str:
    from secretkit.fields import json_text

    return json_text(item)


class AsyncLeasing:
    """What ``astore.lease(path)`` returns: ``await`` it for the ``Lease``, or ``async with`` it
    (the lease is revoked on leaving the block)."""

    def __init__(self, issue: Callable[[], Awaitable[Lease]]) -> None:
        self._issue = issue
        self._lease: Lease | None = None

    def __await__(self) -> Generator[Any, None, Lease]:
        return self._issue().__await__()

    async def __aenter__(self) -> Lease:
        self._lease = await self._issue()
        return self._lease

    async def __aexit__(self, *exc: object) -> None:
        if self._lease is not None:
            await self._lease.aclose()
