"""memory:// — an in-process store with full semantics, the users' unit-test fake.

It keeps versions, stages, compare-and-set and idempotent put tokens like the real
backends, and passes the same conformance suite. ``memory://`` is a fresh empty store each
time; ``memory://NAME`` is shared by every ``open`` of that name in the process.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from secretkit.drivers import versioned
from secretkit.drivers.base import (
    Capabilities,
    Classified,
    InvalidArgumentError,
    Issued,
    Leases,
    NameRules,
    NativeStages,
    Record,
    StoreURL,
    UnavailableError,
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


@dataclass
class FakeRole:
    """How memory://'s fake engine issues the credentials of one path (``FakeLeases.role``)."""

    ttl: float = 60.0
    max_ttl: float = 180.0
    renewable: bool = True
    #: "dynamic": a leased username/password (Vault's database creds); "static": a password the
    #: engine rotates every ``ttl`` (a static role, no lease); "expiring": no lease but an expiry
    #: (a PKI certificate without ``generate_lease``)
    kind: Literal["dynamic", "static", "expiring"] = "dynamic"


@dataclass
class _FakeLease:
    path: str
    max_at: float
    expires: float
    renewable: bool


class FakeLeases:
    """memory://'s lease engine, for application tests without Vault: any path issues a fake
    credential (``FakeRole()`` unless ``role`` set one). Driven by ``secretkit.testing.leases``,
    which gives it and the store one controllable clock; every call runs under the namespace lock."""

    def __init__(self) -> None:
        self.clock: Callable[[], float] = time.monotonic
        self.roles: dict[str, FakeRole] = {}
        self.leases: dict[str, _FakeLease] = {}
        self.revoked: list[str] = []
        self.issued = 0
        self.outage = False
        self._static: dict[str, tuple[float, str]] = {}  # path -> (period start, password)

    def role(self, path: str, role: FakeRole) -> None:
        self.roles[path] = role

    def live(self) -> list[str]:
        """Lease ids issued and neither revoked nor expired."""
        now = self.clock()
        return [lease_id for lease_id, lease in self.leases.items() if lease.expires > now]

    def rotate(self, path: str) -> None:
        """A static role's rotation, now."""
        self._static[path] = (self.clock(), secrets.token_urlsafe(15))

    def _up(self) -> None:
        if self.outage:
            raise UnavailableError("memory lease engine: simulated outage")

    def issue(self, path: str, params: Mapping[str, Any] | None) -> Issued:
        self._up()
        role = self.roles.get(path, FakeRole())
        now = self.clock()
        self.issued += 1
        user = f"v-{path.rsplit('/', 1)[-1]}-{self.issued}"
        if role.kind == "static":
            start, password = self._static.get(path) or (now, secrets.token_urlsafe(15))
            if now >= start + role.ttl:  # the engine's own schedule
                start, password = now, secrets.token_urlsafe(15)
            self._static[path] = (start, password)
            left = start + role.ttl - now
            return Issued({"username": path.rsplit("/", 1)[-1], "password": password, "ttl": int(left)}, ttl=left,
                          rotated=True, volatile=frozenset({"ttl"}))
        if role.kind == "expiring":
            data = {**{k: str(v) for k, v in (params or {}).items()}, "certificate": f"fake-certificate-{self.issued}",
                    "serial_number": f"{self.issued:02x}", "expiration": int(time.time() + role.ttl)}
            return Issued(data, ttl=role.ttl)
        lease_id = f"{path}/{secrets.token_hex(8)}"
        self.leases[lease_id] = _FakeLease(path, now + role.max_ttl, now + min(role.ttl, role.max_ttl), role.renewable)
        return Issued({"username": user, "password": secrets.token_urlsafe(15)}, lease_id=lease_id,
                      ttl=min(role.ttl, role.max_ttl), renewable=role.renewable)

    def renew(self, lease_id: str, increment: float) -> float:
        self._up()
        now = self.clock()
        lease = self.leases.get(lease_id)
        if lease is None or lease.expires <= now:
            raise InvalidArgumentError("lease not found")
        if not lease.renewable:
            raise InvalidArgumentError("lease is not renewable")
        granted = max(0.0, min(increment, lease.max_at - now))
        lease.expires = now + granted
        return granted

    def revoke(self, lease_id: str) -> None:
        self._up()
        if self.leases.pop(lease_id, None) is not None:
            self.revoked.append(lease_id)


class _Namespace:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: versioned.Entries = {}
        self.leases = FakeLeases()
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
    protocols = (VersionProbe, NativeStages, Leases)
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

    @property
    def leases(self) -> FakeLeases:
        """The fake lease engine (shared by every store of a ``memory://NAME``)."""
        return self._ns.leases

    def issue(self, path: str, params: Mapping[str, Any] | None) -> Issued:
        with self._ns.lock:
            return self._ns.leases.issue(path, params)

    def renew(self, lease_id: str, increment: float) -> float:
        with self._ns.lock:
            return self._ns.leases.renew(lease_id, increment)

    def revoke(self, lease_id: str) -> None:
        with self._ns.lock:
            self._ns.leases.revoke(lease_id)

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
