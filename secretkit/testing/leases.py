"""Test an application's lease handling without Vault: memory://'s fake leases on a clock the test moves.

``control = LeaseControl(store)`` (a ``memory://`` store, before its first lease) gives the
store's lease keeper and the fake engine one manual clock and runs the keeper only when the test
moves that clock, so every renewal, re-issue and expiry happens at a known point::

    control.role("database/creds/app", ttl=30, max_ttl=60)
    lease = store.lease("database/creds/app")
    control.advance(20)      # a third of the TTL left: renewed
    control.advance(25)      # the renewal was capped by the max TTL: re-issued, on_change called
    control.outage()         # the engine fails every call from now on
    control.advance(60)      # past the expiry: reading the lease raises LeaseExpiredError

See docs/testing.md.
"""

from __future__ import annotations

from typing import Any, Literal

from secretkit.drivers.memory import FakeLeases, FakeRole, MemoryDriver
from secretkit.errors import NotSupportedError
from secretkit.leases import Lease, keeper_of

__all__ = ["LeaseControl", "ManualClock"]


class ManualClock:
    """A monotonic clock in seconds that moves only when told."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class LeaseControl:
    """Drives the leases of one ``memory://`` store (see the module docstring)."""

    def __init__(self, store: Any) -> None:
        driver = store.driver
        if not isinstance(driver, MemoryDriver):
            raise NotSupportedError("LeaseControl drives memory:// stores only", backend=store.backend)
        keeper = keeper_of(store)
        if keeper.has_worker:
            raise RuntimeError("make the LeaseControl before the store's first lease")
        self.clock = ManualClock()
        self.engine: FakeLeases = driver.leases
        self.engine.clock = self.clock
        keeper.clock = self.clock
        keeper.manual = True
        self._keeper = keeper
        self._driver = driver

    def role(self, path: str, *, ttl: float = 60.0, max_ttl: float = 180.0, renewable: bool = True,
             kind: Literal["dynamic", "static", "expiring"] = "dynamic") -> None:
        """How ``path`` issues: a leased credential (``dynamic``, renewable up to ``max_ttl``), a
        static role's password rotated every ``ttl`` (``static``), or a credential with an expiry
        and no lease (``expiring``, like a PKI certificate)."""
        self.engine.role(path, FakeRole(ttl=ttl, max_ttl=max_ttl, renewable=renewable, kind=kind))

    def advance(self, seconds: float) -> None:
        """Move the clock by ``seconds``, doing at each due time on the way what the store's lease
        worker would do then (renew, re-issue and call ``on_change``, revoke after the grace)."""
        end = self.clock.now + seconds
        for _ in range(100_000):  # bounded: a schedule that never moves forward is a bug, not a hang
            due = self._keeper.next_due()
            if due is None or due > end:
                break
            self.clock.now = max(self.clock.now, due)
            self._keeper.run_due()
        self.clock.now = end
        self._keeper.run_due()

    def outage(self, on: bool = True) -> None:
        """Make every call of the fake engine fail with ``UnavailableError`` (a transient error)
        until ``outage(False)``."""
        self.engine.outage = on

    def rotate(self, path: str) -> None:
        """Rotate a ``static`` role's password now (the store notices at the credential's ``ttl``)."""
        self.engine.rotate(path)

    def revoke(self, lease: Lease) -> None:
        """Revoke the lease behind the store's back (an operator's ``vault lease revoke``): its next renewal fails
        and the store issues a new credential."""
        if lease.lease_id:
            self._driver.revoke(lease.lease_id)

    @property
    def live(self) -> list[str]:
        """Lease ids the engine issued that are neither revoked nor expired."""
        return self.engine.live()

    @property
    def issued(self) -> int:
        """How many credentials the engine issued."""
        return self.engine.issued
