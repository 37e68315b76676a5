"""The seam the portable store offers to what is built on it: rotation, stage emulation,
change watching and the AWS rotation Lambda handler.

They see a store only through ``StoreSeam`` (``SecretStore`` implements it), never its private
methods, so each can live in its own module without importing ``store.py`` back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from secretkit.drivers.base import Capabilities, Driver
from secretkit.names import NameRules
from secretkit.secret import Secret, SecretInput, Value, VersionInfo

T = TypeVar("T")


class StoreSeam(Protocol):
    """What rotation, stages and watch use of a ``SecretStore``."""

    @property
    def backend(self) -> str: ...

    @property
    def driver(self) -> Driver: ...

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def names(self) -> NameRules:
        """The backend's name rules."""
        ...

    @property
    def pending_prefix(self) -> str:
        """Where an emulated pending value lives: the companion of ``NAME`` is ``pending_prefix + NAME``."""
        ...

    def get(
        self, name: str, *, version: str | None = None, stage: str | None = None,
        max_age: float | None = None, refresh: bool = False,
    ) -> Secret: ...

    def versions(self, name: str) -> list[VersionInfo]: ...

    def call_driver(
        self, operation: str, name: str | None, fn: Callable[[], T], *, retry: bool = True, sensitive: bool = False
    ) -> T:
        """Run one driver call the way the store runs its own: audited as ``operation``,
        retried on transient errors (unless ``retry=False``), SDK errors made portable;
        ``sensitive=True`` for a call that carries a value (its error keeps no SDK chain)."""
        ...

    def invalidate(self, name: str) -> None:
        """Forget everything cached about ``name`` (after anything changed it)."""
        ...

    def prepare_value(self, name: str, value: SecretInput | Value) -> Value:
        """``value`` checked the way ``put`` checks it, before any I/O."""
        ...
