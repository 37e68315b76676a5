"""What a store tells telemetry: ``Observer``, which records nothing unless telemetry is on.

The store, its call pipeline and what runs beside it (rotation, lease renewal, change events)
report to their store's ``observer``, never to OpenTelemetry: so nothing imports OpenTelemetry,
and nothing is recorded, unless asked for. A store opened with ``telemetry=True``, or while
``secretkit.telemetry.instrument()`` is in effect, gets ``secretkit.telemetry``'s recording
observer (``secretkit.observing.observer_for`` chooses); every other store keeps ``NO_OBSERVER``,
whose methods do nothing.

Code that runs beside a store (leases, change consumers) calls, e.g.,
``store.observer.lease_renewed()`` or ``store.observer.change_event("matched")``; the
instrument each call feeds is listed in docs/observability.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from secretkit.cache import Cache
    from secretkit.drivers.base import Driver
    from secretkit.entries import Key
    from secretkit.policies import StoreOptions
    from secretkit.secret import Secret

__all__ = ["NO_OBSERVER", "Observer", "default_factory"]

T = TypeVar("T")
Hit = Callable[["Key", "float | None"], "Secret | None"]


class Observer:
    """The calls a store makes to telemetry; each does nothing here (see the module docstring).

    ``secretkit.telemetry.StoreTelemetry`` overrides every method. Names passed in are for span
    attributes only, and only where the user opted in (``telemetry_names``).
    """

    #: False for the no-op observer: the store skips its hooks altogether.
    on = False

    def attempt(self, operation: str, name: str | None, run: Callable[[], T]) -> T:
        """Run one attempt of a backend call (``run``), timed and traced."""
        return run()

    def retried(self, operation: str, retries: int) -> None:
        """A backend call needed ``retries`` attempts beyond its first."""

    def watch_cache(self, cache: Cache, hit: Hit) -> Hit:
        """The store's hit path with ``cache``'s hits observed (here: ``hit`` unchanged)."""
        return hit

    def served(self, key: Key, secret: Secret, how: str) -> None:
        """A read not answered on the hit path was served: ``how`` is ``miss``, ``stale`` or ``hit``."""

    def rotation(self, result: str, step: str | None = None) -> None:
        """A rotation ended: ``result`` ``ok``, ``skipped`` (not due yet), ``already_done`` or
        ``failed`` (``step``: the step or error code it failed on)."""

    def lease_renewed(self) -> None:
        """A lease was renewed (``secretkit.lease.renewals``)."""

    def lease_reissued(self) -> None:
        """A lease was issued anew before it expired (``secretkit.lease.reissues``)."""

    def lease_failed(self) -> None:
        """A renewal or re-issue failed (``secretkit.lease.failures``)."""

    def change_event(self, result: str) -> None:
        """A change event arrived: ``result`` ``received`` (each one), then ``matched`` (it named
        a secret this store holds) or ``dropped`` (``secretkit.changes.events``)."""

    def close(self) -> None:
        """The store closed: stop reporting it."""


NO_OBSERVER = Observer()

#: Set by ``secretkit.telemetry.instrument()``: makes the observer of every store opened while set.
default_factory: Callable[[Driver, StoreOptions], Observer] | None = None
