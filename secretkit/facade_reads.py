"""Non-blocking reads, for facades that must not wait in their thread (``secretkit.aio``).

Part of ``SecretStore`` (which inherits them), kept apart so ``store.py`` holds the blocking API:
``cached`` answers from the cache or says it cannot, ``join`` joins (or registers) the load
that answers a read, and ``settled`` reads a finished load's answer, each audited and observed
as ``SecretStore.get`` would be.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from secretkit.audit import AuditHook
from secretkit.audit import logger as _audit_logger
from secretkit.entries import CachedNotFoundError, Key, key_of
from secretkit.flight import Flight
from secretkit.observer import Observer
from secretkit.secret import Secret

if TYPE_CHECKING:
    from secretkit.cache import Cache
    from secretkit.calls import Calls
    from secretkit.checks import Checks

_DEBUG = logging.DEBUG
# logging's own per-level answers for the audit logger (emptied whenever a level changes): on the
# hit path one C dict lookup settles "DEBUG is off", which isEnabledFor's Python frame would cost
# a sixth of a hit to say. Anything else (not known yet, or on) goes to _audit_hit, which asks.
DEBUG_ANSWERS: dict[int, bool] = getattr(_audit_logger, "_cache", {})
_DEBUG_CACHE = DEBUG_ANSWERS


class FacadeReads:
    """``SecretStore``'s non-blocking reads (see the module docstring); the attributes below are the store's."""

    _hit: Callable[[Key, float | None], Secret | None]
    _hooks: list[AuditHook]
    _cache: Cache | None
    _checks: Checks
    _calls: Calls
    observer: Observer

    def _audit_hit(self, name: str, secret: Secret) -> None:
        if self._hooks or _audit_logger.isEnabledFor(_DEBUG):
            self._calls.audit("get", name, "ok", time.perf_counter(), cache="hit", version=secret.version)

    def cached(
        self, name: str, *, version: str | None = None, stage: str | None = None, max_age: float | None = None
    ) -> Secret | None:
        """The cached answer of this read if it may be served now, else None: no I/O, no lock,
        never blocks (audited as a hit, as ``get`` audits one)."""
        try:
            secret = self._hit(key_of(name, version, stage), max_age)
        except TypeError:  # an unhashable name or a bad max_age: not a hit
            return None
        if secret is not None and (self._hooks or _DEBUG_CACHE.get(_DEBUG) is not False):
            self._audit_hit(name, secret)
        return secret

    def join(
        self, name: str, *, version: str | None = None, stage: str | None = None, max_age: float | None = None
    ) -> tuple[Flight, Callable[[], None] | None] | None:
        """Join the load that answers this read, or register one, without waiting: returns the
        flight and, when this caller registered it, the load to run in some thread (it settles
        the flight for every reader, threads and tasks alike). None when the store does not
        cache (the caller then simply runs ``get`` in a thread). A bad read raises
        ``InvalidArgumentError`` and a negative cache entry its ``NotFoundError``, before any I/O.
        Read the answer with ``settled`` once the flight is done."""
        cache = self._cache
        if cache is None:
            return None
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or max_age < 0):
            self._checks.read(name, version, stage, max_age)
        key = key_of(name, version, stage)
        start = time.perf_counter()
        try:
            # a load already in flight was started for a checked key: joining it needs no check
            joined = cache.join(key, max_age=max_age, start=False)
            if joined is None:
                self._checks.read(name, version, stage)
                joined = cache.join(key, max_age=max_age)
        except CachedNotFoundError as exc:
            self._calls.audit("get", name, exc.code.value, start, cache="hit")
            raise
        assert joined is not None
        return joined

    def settled(self, name: str, flight: Flight, start: float) -> Secret:
        """The answer of a done flight from ``join`` (or its error), audited as ``get`` audits
        a read served by the cache; ``start`` is the caller's ``time.perf_counter()``."""
        secret, how = flight.outcome()
        if how != "miss" and (self._hooks or _audit_logger.isEnabledFor(_DEBUG)):
            self._calls.audit("get", name, "ok", start, cache=how, version=secret.version)
        if self.observer.on:
            self.observer.served(name, secret, how)  # the current value's key: close enough for its age
        return secret
