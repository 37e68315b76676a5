"""Layered stores: one ``SecretStore`` made of several, tried in order.

``secretkit.open(["env://?prefix=APP_", "file:///home/me/.secrets"])`` on a laptop, or
``["files:///var/run/secrets/app", "vault://…"]`` in a pod. The rules:

* A read tries each layer in turn and falls through ONLY on ``NotFoundError`` (a layer whose
  names cannot hold the name counts as not having it). Any other error stops the read: an
  outage or a denied permission in one layer never silently serves another layer's value.
* A read of a version or stage goes to the layer that answers the current value, so it never
  comes from a secret that an earlier layer shadows.
* Writes (``put``, ``delete``, ``rotate``) go to the first writable layer (a layer is read-only
  when its capabilities say ``read_only``, as ``files://`` and ``env://`` do). A value in an
  earlier layer keeps shadowing what was written below it.
* ``list()`` merges the layers' names, sorted and without duplicates; a failing layer fails it.
* Each layer keeps its own cache and retry policy; the layered store adds neither (no double
  caching, no multiplied retries).
* The audit event of each operation names, as its backend, the layer that answered.

``LayeredStore`` is a ``SecretStore`` (a subclass), so every ``isinstance(x, SecretStore)``
code path and every type annotation keeps working, and the portable API is the same. It
overrides the operations whose meaning the layering changes and keeps the rest of
``SecretStore`` (``exists``, ``refresh``, ``watch``, the seam), which reach the layers through
``LayeredDriver``, a driver over the layers' stores with the same routing rules.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from secretkit import rotation as _rotation
from secretkit.audit import AuditEvent, emit
from secretkit.drivers.base import Capabilities, Classified, Leases, Record, ValueLimits, VersionProbe
from secretkit.entries import CacheStats
from secretkit.errors import (
    ConfigError,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    SecretError,
)
from secretkit.names import NameRules, check_prefix
from secretkit.policies import CachePolicy, RetryPolicy, StoreOptions
from secretkit.secret import BatchResult, Secret, SecretInput, Stage, Value, VersionInfo
from secretkit.store import SecretStore

if TYPE_CHECKING:
    from secretkit.leases import Lease

T = TypeVar("T")

__all__ = ["LayeredDriver", "LayeredStore", "holds", "is_writable"]


def holds(layer: SecretStore, name: str) -> bool:
    """True if ``layer`` can hold ``name`` (by its own name rules; no I/O)."""
    try:
        layer.names.check(name)
    except InvalidArgumentError:
        return False
    return True


def is_writable(layer: SecretStore) -> bool:
    """False for a store whose backend is ``read_only`` (``files://``, ``env://``, a layered
    store without a writable layer)."""
    return not layer.capabilities.read_only


def _record(secret: Secret) -> Record:
    return Record(secret.value, secret.version, secret.created_at, secret.stages)


class LayeredDriver:
    """A driver over the layers' stores: the routing rules of the module docstring.

    Each call goes through a layer's own ``SecretStore``, so that layer's name checks, cache,
    retries and error translation apply exactly once.
    """

    backend = "layered"
    protocols = (VersionProbe, ValueLimits)
    sdk_loggers: tuple[str, ...] = ()
    sdk_value_keys: tuple[str, ...] = ()

    def __init__(self, layers: Sequence[SecretStore], owned: Sequence[SecretStore] = ()) -> None:
        self.layers: tuple[SecretStore, ...] = tuple(layers)
        self._owned = list(owned)
        writable = [layer for layer in self.layers if is_writable(layer)]
        self.writable: SecretStore | None = writable[0] if writable else None
        remote = any(layer.capabilities.remote for layer in self.layers)
        if self.writable is not None:
            self.capabilities = dataclasses.replace(self.writable.capabilities, remote=remote)
        else:
            self.capabilities = Capabilities(
                remote=remote, versions=False, compare_and_set=False, create_only=False, idempotent_put=False,
                read_only=True,
            )
        backends = ", ".join(layer.backend for layer in self.layers)
        self.names = NameRules(
            f"a name at least one layer ({backends}) can hold: "
            + "; ".join(dict.fromkeys(layer.names.rule for layer in self.layers)),
            self._any_layer_holds,
        )

    def _any_layer_holds(self, name: str) -> bool:
        return any(holds(layer, name) for layer in self.layers)

    def _not_found(self) -> NotFoundError:
        return NotFoundError(f"not found in any layer ({', '.join(layer.backend for layer in self.layers)})")

    def writable_layer(self) -> SecretStore:
        """The layer writes go to; ``NotSupportedError`` when every layer is read-only."""
        if self.writable is None:
            raise NotSupportedError(
                f"every layer is read-only ({', '.join(layer.backend for layer in self.layers)})"
            )
        return self.writable

    # -- routing (what LayeredStore calls; each returns the answering layer too) -------------

    def route_get(
        self, name: str, *, version: str | None = None, stage: str | None = None,
        max_age: float | None = None, refresh: bool = False,
    ) -> tuple[Secret, SecretStore]:
        """The secret from the first layer that has it, and that layer."""
        if version is None and stage in (None, Stage.CURRENT):
            for layer in self.layers:
                if not holds(layer, name):
                    continue
                try:
                    return layer.get(name, stage=stage, max_age=max_age, refresh=refresh), layer
                except NotFoundError:
                    continue
            raise self._not_found()
        layer = self.route_get(name, max_age=max_age, refresh=refresh)[1]
        return layer.get(name, version=version, stage=stage, max_age=max_age, refresh=refresh), layer

    def route_many(self, names: Sequence[str]) -> dict[str, tuple[Secret, SecretStore] | SecretError]:
        """Per name: the secret and its layer, or the error that stopped it. One ``get_many``
        per layer for the names still missing."""
        results: dict[str, tuple[Secret, SecretStore] | SecretError] = {}
        missing = list(dict.fromkeys(names))
        for layer in self.layers:
            ask = [name for name in missing if holds(layer, name)]
            if not ask:
                continue
            batch = layer.get_many(ask)
            for name in ask:
                if name in batch.secrets:
                    results[name] = (batch.secrets[name], layer)
                else:
                    error = batch.errors.get(name) or NotFoundError("secret not found")
                    if not isinstance(error, NotFoundError):
                        results[name] = error
            missing = [name for name in missing if name not in results]
        for name in missing:
            results[name] = self._not_found()
        return results

    def route_versions(self, name: str) -> tuple[list[VersionInfo], SecretStore]:
        layer = self.route_get(name)[1]
        return layer.versions(name), layer

    def merged_list(self, prefix: str) -> list[str]:
        names: set[str] = set()
        for layer in self.layers:
            names.update(layer.list(prefix))
        return sorted(names)

    # -- the Driver contract (for code that holds the driver, e.g. a counting wrapper) ------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        return _record(self.route_get(name, version=version, stage=stage)[0])

    def current_version(self, name: str) -> str:
        """``"<layer index>:<that layer's version>"``: a change of the answering layer is a change too."""
        for index, layer in enumerate(self.layers):
            if not holds(layer, name):
                continue
            try:
                return f"{index}:{_layer_version(layer, name)}"
            except NotFoundError:
                continue
        raise self._not_found()

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        # put() checks a Value as it checks what users pass (SecretStore.prepare_value takes both)
        return self.writable_layer().put(name, cast(Any, value), if_version=if_version, create_only=create_only)

    def delete(self, name: str, *, purge: bool) -> None:
        self.writable_layer().delete(name, purge=purge)

    def list(self, prefix: str) -> list[str]:
        return self.merged_list(prefix)

    def versions(self, name: str) -> Sequence[VersionInfo]:
        return self.route_versions(name)[0]

    def check_value(self, name: str, value: Value) -> None:
        """The writable layer's checks of a value (before any I/O)."""
        self.writable_layer().prepare_value(name, value)

    def classify(self, exc: BaseException) -> Classified | None:
        return None  # the layers' stores raise portable errors only

    def close(self) -> None:
        """Close the layers this store opened (never the open stores it was given)."""
        owned, self._owned = self._owned, []
        for layer in owned:
            layer.close()


def _layer_version(layer: SecretStore, name: str) -> str:
    """The layer's current version of ``name``: its driver's cheap probe where it has one."""
    driver = layer.driver
    if isinstance(driver, VersionProbe):
        return str(layer.call_driver("version_check", name, lambda: driver.current_version(name)))
    return layer.get(name, refresh=True).version


class LayeredStore(SecretStore):
    """A store made of several stores, tried in order (see the module docstring).

    Usually made by ``secretkit.open([...])``; ``LayeredStore(layers, owned=...)`` takes open
    stores, and closes those in ``owned`` when it is closed.
    """

    def __init__(self, layers: Sequence[SecretStore], *, owned: Sequence[SecretStore] = ()) -> None:
        if not layers:
            raise ConfigError("a layered store needs at least one layer")
        for layer in layers:
            if not isinstance(layer, SecretStore):
                raise ConfigError(f"a layer is a SecretStore, not {type(layer).__name__}")
        self._layered = LayeredDriver(layers, owned)
        # The layers cache and retry; this store must do neither, or reads would be cached twice
        # and every retry of a layer multiplied by retries here.
        super().__init__(self._layered, options=StoreOptions(cache=CachePolicy.off(), retry=RetryPolicy.none()))
        self.url = "layered:[" + ", ".join(layer.url for layer in layers) + "]"

    # -- introspection ---------------------------------------------------------------

    @property
    def layers(self) -> tuple[SecretStore, ...]:
        """The layers, in the order reads try them."""
        return self._layered.layers

    @property
    def writable_layer(self) -> SecretStore | None:
        """The layer writes go to (None when every layer is read-only)."""
        return self._layered.writable

    @property
    def stages(self) -> str | None:
        """The writable layer's stage support (rotation runs there)."""
        writable = self._layered.writable
        return writable.stages if writable is not None else None

    @property
    def pending_prefix(self) -> str:
        writable = self._layered.writable
        return writable.pending_prefix if writable is not None else self.options.pending_prefix

    def cache_stats(self) -> CacheStats:
        """The layers' cache counters added up (this store has no cache of its own)."""
        stats = [layer.cache_stats() for layer in self.layers]
        return CacheStats(*(sum(getattr(s, f.name) for s in stats) for f in dataclasses.fields(CacheStats)))

    def origin(self, name: str) -> SecretStore:
        """The layer that answers a read of ``name`` now (``NotFoundError`` if none has it)."""
        return self._route(name, None, None, None, False)[1]

    def __repr__(self) -> str:
        return f"LayeredStore(layers={list(self.layers)!r})"

    # -- reads -----------------------------------------------------------------------

    def get(
        self,
        name: str,
        *,
        version: str | None = None,
        stage: str | None = None,
        max_age: float | None = None,
        refresh: bool = False,
    ) -> Secret:
        """The value from the first layer that has ``name`` (a version or stage from that same
        layer). Only ``NotFoundError`` moves on to the next layer."""
        def route() -> tuple[Secret, SecretStore]:
            return self._route(name, version, stage, max_age, refresh)

        return self._audited("get", name, route)

    def _route(
        self, name: str, version: str | None, stage: str | None, max_age: float | None, refresh: bool
    ) -> tuple[Secret, SecretStore]:
        self._check(name)
        return self._layered.route_get(name, version=version, stage=stage, max_age=max_age, refresh=refresh)

    def get_many(self, names: Iterable[str]) -> BatchResult:
        """Each name from the first layer that has it; one batch read per layer for the names
        still missing. One name's failure does not fail the rest."""
        found: dict[str, Secret] = {}
        errors: dict[str, SecretError] = {}
        valid: list[str] = []
        for name in dict.fromkeys(names):
            try:
                self._check(name)
                valid.append(name)
            except SecretError as exc:
                errors[name] = exc
        start = time.perf_counter()
        try:
            outcomes = self._layered.route_many(valid)
        except SecretError as exc:
            self._emit("get_many", None, exc.backend or self.backend, exc.code.value, start)
            raise
        answered: dict[str, int] = {}
        for name, outcome in outcomes.items():
            if isinstance(outcome, SecretError):
                errors[name] = self._calls.fill(outcome, name)
            else:
                found[name] = outcome[0]
                answered[outcome[1].backend] = answered.get(outcome[1].backend, 0) + 1
        for backend in answered:
            self._emit("get_many", None, backend, "ok", start)
        return BatchResult(found, errors)

    def versions(self, name: str) -> list[VersionInfo]:
        """The versions of ``name`` in the layer that answers its reads."""
        def route() -> tuple[list[VersionInfo], SecretStore]:
            self._check(name)
            return self._layered.route_versions(name)

        return self._audited("versions", name, route)

    def list(self, prefix: str = "") -> Iterator[str]:
        """Every layer's names under ``prefix``, merged, sorted, without duplicates."""
        def merged() -> tuple[list[str], None]:
            try:
                check_prefix(prefix)
            except SecretError as exc:
                raise self._calls.fill(exc, None) from None
            return self._layered.merged_list(prefix), None

        return iter(self._audited("list", prefix or None, merged))

    # -- writes ----------------------------------------------------------------------

    def put(
        self,
        name: str,
        value: SecretInput,
        *,
        if_version: str | None = None,
        create_only: bool = False,
    ) -> VersionInfo:
        """Write to the first writable layer (``NotSupportedError`` if there is none)."""
        def write() -> tuple[VersionInfo, SecretStore]:
            layer = self._layered.writable_layer()
            return layer.put(name, value, if_version=if_version, create_only=create_only), layer

        return self._audited("put", name, write)

    def delete(self, name: str, *, purge: bool = False, missing_ok: bool = False) -> None:
        """Delete from the first writable layer; a later layer may still answer ``name`` after it."""
        def remove() -> tuple[None, SecretStore]:
            layer = self._layered.writable_layer()
            layer.delete(name, purge=purge, missing_ok=missing_ok)
            return None, layer

        self._audited("delete", name, remove)

    def rotate(
        self,
        name: str,
        *,
        generate: Callable[[Secret], Any] | None = None,
        apply: Callable[[Secret], Any] | None = None,
        verify: Callable[[Secret], Any] | None = None,
        token: str | None = None,
        resume: bool = False,
        if_older_than: timedelta | None = None,
        field: str | None = None,
        allow_native_rotation: bool = False,
    ) -> _rotation.RotationResult | None:
        """Rotate ``name`` in the writable layer (see ``SecretStore.rotate``)."""
        return self._layered.writable_layer().rotate(
            name, generate=generate, apply=apply, verify=verify, token=token, resume=resume,
            if_older_than=if_older_than, field=field, allow_native_rotation=allow_native_rotation,
        )

    def discard_pending(self, name: str) -> str | None:
        return self._layered.writable_layer().discard_pending(name)

    def lease(self, path: str, *, params: Mapping[str, Any] | None = None) -> Lease:
        """Issue from the first layer whose backend issues leases (docs/leases.md); with none,
        the first layer's ``NotSupportedError``, before any I/O."""
        layer = next((each for each in self.layers if isinstance(each.driver, Leases)), self.layers[0])
        return layer.lease(path, params=params)

    def invalidate(self, name: str) -> None:
        """Forget ``name`` in every layer's cache."""
        for layer in self.layers:
            layer.invalidate(name)

    def prepare_value(self, name: str, value: SecretInput | Value) -> Value:
        """``value`` checked by the writable layer, as its ``put`` would."""
        return self._layered.writable_layer().prepare_value(name, value)

    # -- helpers ---------------------------------------------------------------------

    def _check(self, name: str) -> None:
        try:
            self.names.check(name)
        except SecretError as exc:
            raise self._calls.fill(exc, None) from None

    def _audited(self, operation: str, name: str | None, fn: Callable[[], tuple[T, SecretStore | None]]) -> T:
        """Run ``fn``; one audit event naming the layer that answered (or the one that failed)."""
        start = time.perf_counter()
        try:
            result, layer = fn()
        except SecretError as exc:
            self._calls.fill(exc, name)
            self._emit(operation, name, exc.backend or self.backend, exc.code.value, start)
            raise
        version = getattr(result, "version", None)
        backend = layer.backend if layer is not None else self.backend
        self._emit(operation, name, backend, "ok", start, version if isinstance(version, str) else None)
        return result

    def _emit(
        self, operation: str, name: str | None, backend: str, outcome: str, start: float, version: str | None = None
    ) -> None:
        emit(AuditEvent(operation, name, backend, outcome, time.perf_counter() - start, None, version), self._hooks)
