"""memory:// — an in-process store with full semantics, the users' unit-test fake.

It keeps versions, stages, compare-and-set and idempotent put tokens like the real
backends, and passes the same conformance suite. ``memory://`` is a fresh empty store each
time; ``memory://NAME`` is shared by every ``open`` of that name in the process.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from secretkit.drivers import versioned
from secretkit.drivers.base import (
    Capabilities,
    Classified,
    NameRules,
    NativeStages,
    Record,
    StoreURL,
    Value,
    VersionInfo,
    VersionProbe,
    at_fork,
    portable_rules,
    reset_in_child,
    validate_options as validate,
)


class MemoryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_value_bytes: int = Field(65536, gt=0, description="largest value accepted (AWS's and GCP's limit by default)")


class _Namespace:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: versioned.Entries = {}
        at_fork(self, _Namespace._after_fork)

    def _after_fork(self) -> None:
        self.lock = threading.Lock()  # a thread of the parent may have held it at the fork


_SHARED: dict[str, _Namespace] = {}
_SHARED_LOCK = threading.Lock()


@reset_in_child
def _new_shared_lock() -> None:
    global _SHARED_LOCK
    _SHARED_LOCK = threading.Lock()


def capabilities(max_value_bytes: int) -> Capabilities:
    """What memory:// and file:// both offer."""
    return Capabilities(
        remote=False,
        versions=True,
        compare_and_set=True,
        create_only=True,
        recoverable_delete=False,
        idempotent_put=True,
        max_value_bytes=max_value_bytes,
    )


class MemoryDriver:
    """Dictionary-backed driver; every call holds the namespace lock, so each is atomic."""

    backend = "memory"
    protocols = (VersionProbe, NativeStages)
    sdk_loggers: tuple[str, ...] = ()
    sdk_value_keys: tuple[str, ...] = ()
    capabilities = capabilities(65536)

    def __init__(self, namespace: _Namespace | None = None, *, max_value_bytes: int = 65536) -> None:
        self._ns = namespace or _Namespace()
        self.capabilities = capabilities(max_value_bytes)
        self.names: NameRules = portable_rules()

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        with self._ns.lock:
            return versioned.read(self._ns.entries, name, version, stage)

    def current_version(self, name: str) -> str:
        with self._ns.lock:
            return versioned.current_version(self._ns.entries, name)

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        with self._ns.lock:
            return versioned.write(
                self._ns.entries, name, value, if_version=if_version, create_only=create_only, token=token
            )

    def delete(self, name: str, *, purge: bool) -> None:
        with self._ns.lock:
            versioned.delete(self._ns.entries, name)

    def list(self, prefix: str) -> list[str]:
        with self._ns.lock:
            return versioned.names(self._ns.entries, prefix)

    def versions(self, name: str) -> Sequence[VersionInfo]:
        with self._ns.lock:
            return versioned.versions(self._ns.entries, name)

    def write_pending(self, name: str, value: Value, *, token: str, adopt: bool) -> VersionInfo:
        with self._ns.lock:
            return versioned.write_pending(self._ns.entries, name, value, token=token, adopt=adopt)

    def promote(self, name: str, version: str, *, if_current: str) -> VersionInfo:
        with self._ns.lock:
            return versioned.promote(self._ns.entries, name, version, if_current=if_current)

    def discard_pending(self, name: str, version: str) -> None:
        with self._ns.lock:
            versioned.discard_pending(self._ns.entries, name, version)

    def classify(self, exc: BaseException) -> Classified | None:
        return None  # it raises portable errors itself

    def close(self) -> None:
        pass


#: The driver classes this factory opens, by the title docs/capabilities.md gives them.
DRIVERS: dict[str, type] = {"memory": MemoryDriver}


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> MemoryDriver:
    opts = validate(MemoryOptions, options, what="memory store")
    shared = (url.host + url.path).strip("/")
    if not shared:
        return MemoryDriver(max_value_bytes=opts.max_value_bytes)
    with _SHARED_LOCK:
        namespace = _SHARED.setdefault(shared, _Namespace())
    return MemoryDriver(namespace, max_value_bytes=opts.max_value_bytes)
