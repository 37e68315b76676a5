"""The driver contract: what a backend must provide, and what it may provide.

A driver translates calls; it never caches, retries, logs values or validates portable
names (the ``SecretStore`` does all of that, identically for every backend). Required
methods are in ``Driver``; optional capabilities are plain methods the store looks for
with ``getattr`` and falls back without (see ``OPTIONAL_METHODS``), so adding one never
forces every driver to change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from secretkit.errors import ErrorCode, SecretError
from secretkit.secret import Value, VersionInfo


@dataclass(frozen=True)
class Capabilities:
    """What a store can do; the conformance suite skips (visibly) what it cannot.

    ``max_value_bytes`` is measured in portable octets (``Value.size``): every value up to
    it round-trips, and one byte more is rejected with ``InvalidArgumentError`` before I/O.
    """

    versions: bool = True
    """``get(version=...)`` reads old versions and ``versions()`` lists history."""
    compare_and_set: bool = True
    """``put(if_version=...)`` is atomic on the server."""
    create_only: bool = True
    """``put(create_only=True)`` is atomic on the server."""
    stages: bool = False
    """``get(stage=...)`` reads ``current``/``previous``/``pending``."""
    batch_read: bool = False
    """``get_many`` uses a native batch call (otherwise it loops)."""
    recoverable_delete: bool = False
    """``delete()`` without ``purge`` leaves the data recoverable on the backend."""
    idempotent_put: bool = False
    """A retried ``put`` with the same token never creates two versions (so puts may be retried)."""
    max_value_bytes: int | None = None
    max_name_length: int = 200


@dataclass(frozen=True)
class Record:
    """What a driver read: the value and its version metadata."""

    value: Value
    version: str
    created_at: datetime | None = None
    stages: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"Record(version={self.version!r}, kind={self.value.kind.value}, value=***)"


@dataclass(frozen=True)
class Classified:
    """A driver's reading of an SDK exception: the portable code and a safe detail (no values)."""

    code: ErrorCode
    detail: str


@runtime_checkable
class Driver(Protocol):
    """The calls every backend implements. Names passed in are already valid portable names."""

    backend: str
    """Short backend id used in errors and audit events, e.g. ``"vault"`` or ``"aws-sm"``."""
    capabilities: Capabilities

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        """Read the current value, or a given version or stage. Missing → ``NotFoundError``."""
        ...

    def write(
        self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str
    ) -> VersionInfo:
        """Store a new version. ``token`` is unique per logical put and repeats on retries."""
        ...

    def delete(self, name: str, *, purge: bool) -> None:
        """Delete the secret (recoverably where supported unless ``purge``). Missing → ``NotFoundError``."""
        ...

    def list(self, prefix: str) -> Iterable[str]:
        """Portable names starting with ``prefix`` (deleted secrets excluded), in any order."""
        ...

    def versions(self, name: str) -> Sequence[VersionInfo]:
        """Version infos, newest first. Missing → ``NotFoundError``."""
        ...

    def classify(self, exc: BaseException) -> Classified | None:
        """Map an SDK exception to a portable code, or None if it is not the SDK's."""
        ...

    def close(self) -> None:
        """Release connections and threads the driver owns (not a client the user passed in)."""
        ...


#: Optional methods the store detects; each has a fallback in the store.
OPTIONAL_METHODS = {
    "read_many": "read_many(names) -> dict[str, Record | SecretError]  (batch read)",
    "check_name": "check_name(name) -> None  (backend limits beyond the portable grammar; before I/O)",
    "check_value": "check_value(name, value) -> None  (backend encoding limits; before I/O)",
    "current_version": "current_version(name) -> str  (cheap metadata read of the current version id, no value;"
    " lets the cache check for a change before fetching the value again)",
    "client": "client  (the SDK client, for users who must reach it)",
}

# Drivers also turn their SDK's own retries off (or pin them to one attempt): the store's
# RetryPolicy is the only retry layer, so attempts never multiply.


class BatchReader(Protocol):
    def read_many(self, names: Sequence[str]) -> dict[str, Record | SecretError]: ...


def sdk_client(driver: Any) -> Any:
    """The driver's SDK client, or None (gocloud's ``As`` escape hatch)."""
    return getattr(driver, "client", None)
