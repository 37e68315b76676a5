"""SecretStore: the one portable type applications hold, whatever backend sits below.

Everything that must behave the same on every backend lives here: validation before any
I/O, error translation, retries, auditing and (see ``cache.py``) caching. Drivers only
translate calls.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from secretkit import names as _names
from secretkit import retry as _retry
from secretkit.audit import AuditEvent, AuditHook, emit
from secretkit.config import StoreOptions, redact_url
from secretkit.drivers.base import Capabilities, Driver, Record, sdk_client
from secretkit.errors import (
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    SecretError,
    error_for,
)
from secretkit.secret import BatchResult, Kind, Secret, SecretInput, Stage, Value, VersionInfo

if TYPE_CHECKING:
    from secretkit.rotation import RotationResult, Watcher

T = TypeVar("T")
_STAGES = (Stage.CURRENT, Stage.PREVIOUS, Stage.PENDING)


class SecretStore:
    """Read, write, list and version secrets on one backend.

    Obtain one with ``secretkit.open(url)``; it is thread-safe and meant to be shared.
    """

    def __init__(self, driver: Driver, *, options: StoreOptions | None = None, url: str | None = None) -> None:
        self._driver = driver
        self.options = options or StoreOptions()
        self.url = redact_url(url) if url else f"{driver.backend}://"
        self._hooks: list[AuditHook] = []

    # -- introspection ---------------------------------------------------------------

    @property
    def backend(self) -> str:
        """The backend id (``"memory"``, ``"file"``, ``"vault"``, ``"aws-sm"``, ...)."""
        return self._driver.backend

    @property
    def capabilities(self) -> Capabilities:
        return self._driver.capabilities

    @property
    def driver(self) -> Driver:
        """The driver below this store (for tests and advanced use)."""
        return self._driver

    @property
    def client(self) -> Any:
        """The backend SDK's client object, or None (an escape hatch; prefer the portable API)."""
        return sdk_client(self._driver)

    def add_audit_hook(self, hook: AuditHook) -> None:
        """Call ``hook(AuditEvent)`` after every operation (events never carry values)."""
        self._hooks.append(hook)

    def remove_audit_hook(self, hook: AuditHook) -> None:
        self._hooks.remove(hook)

    def __repr__(self) -> str:
        return f"SecretStore(backend={self.backend!r}, url={self.url!r})"

    def __enter__(self) -> SecretStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._driver.close()

    # -- reads -----------------------------------------------------------------------

    def get(self, name: str, *, version: str | None = None, stage: str | None = None) -> Secret:
        """Read the current value, or ``version=`` a specific version, or ``stage=`` a stage.

        Raises ``NotFoundError`` when the secret (or that version/stage) does not exist.
        """
        self._check_read(name, version, stage)
        if stage is not None and self._emulates(stage):
            from secretkit.rotation import CompanionStages

            record = CompanionStages(self).read(name, stage)
        else:
            record = self._call("get", name, lambda: self._driver.read(name, version=version, stage=stage))
        return _secret(name, record)

    def get_many(self, names: Iterable[str]) -> BatchResult:
        """Read the current value of several secrets; one name's failure does not fail the rest.

        Uses the backend's batch call where it has one, else one read per name.
        """
        wanted = list(dict.fromkeys(names))
        found: dict[str, Secret] = {}
        errors: dict[str, SecretError] = {}
        valid = []
        for name in wanted:
            try:
                self._check_read(name, None, None)
                valid.append(name)
            except SecretError as exc:
                errors[name] = exc
        read_many = getattr(self._driver, "read_many", None)
        if read_many is None:
            for name in valid:
                try:
                    found[name] = self.get(name)
                except SecretError as exc:
                    errors[name] = exc
            return BatchResult(found, errors)
        if valid:
            results: dict[str, Record | SecretError] = self._call("get_many", None, lambda: read_many(valid))
            for name in valid:
                outcome = results.get(name)
                if isinstance(outcome, Record):
                    found[name] = _secret(name, outcome)
                else:
                    failure = outcome or NotFoundError("secret not found", name=name)
                    errors[name] = self._fill(failure, name)
        return BatchResult(found, errors)

    def exists(self, name: str) -> bool:
        """True if the secret currently has a readable value."""
        try:
            self.get(name)
        except NotFoundError:
            return False
        return True

    def versions(self, name: str) -> list[VersionInfo]:
        """The secret's versions, newest first (``NotSupportedError`` on stores without history)."""
        _names.check_name(name)
        if not self.capabilities.versions:
            raise NotSupportedError("this backend keeps no version history", name=name, backend=self.backend)
        return list(self._call("versions", name, lambda: self._driver.versions(name)))

    def list(self, prefix: str = "") -> Iterator[str]:
        """Names of existing secrets that start with ``prefix``, sorted, as the user wrote them."""
        _names.check_prefix(prefix)
        found = self._call("list", prefix or None, lambda: sorted(set(self._driver.list(prefix))))
        # portable names only: hides rotation companions and names other tools wrote
        return iter([n for n in found if n.startswith(prefix) and _names.is_portable(n)])

    # -- writes ----------------------------------------------------------------------

    def put(
        self,
        name: str,
        value: SecretInput,
        *,
        if_version: str | None = None,
        create_only: bool = False,
    ) -> VersionInfo:
        """Store ``value`` (str, bytes or a mapping of str to str) as the new current version.

        ``if_version``: compare-and-set; ``ConflictError`` unless the current version is
        exactly that one. ``create_only``: ``AlreadyExistsError`` if the secret exists.
        Both are atomic on the backend, never read-then-write.
        """
        _names.check_name(name)
        try:
            wrapped = Value.of(value)
        except SecretError as exc:
            raise self._fill(exc, name) from None
        self._check_value(name, wrapped)
        if if_version is not None and create_only:
            raise InvalidArgumentError("pass if_version or create_only, not both", name=name, backend=self.backend)
        if if_version is not None and not self.capabilities.compare_and_set:
            raise NotSupportedError("compare-and-set is not atomic on this backend", name=name, backend=self.backend)
        if create_only and not self.capabilities.create_only:
            raise NotSupportedError("create-only writes are not atomic on this backend", name=name, backend=self.backend)
        token = str(uuid.uuid4())
        return self._call(
            "put",
            name,
            lambda: self._driver.write(name, wrapped, if_version=if_version, create_only=create_only, token=token),
            retry=self.capabilities.idempotent_put,
        )

    def delete(self, name: str, *, purge: bool = False, missing_ok: bool = False) -> None:
        """Delete the secret; afterwards ``get`` raises ``NotFoundError``.

        Without ``purge`` the backend keeps the data recoverable where it can (AWS recovery
        window, Vault soft delete); ``purge=True`` destroys it at once.
        """
        _names.check_name(name)
        try:
            self._call("delete", name, lambda: self._driver.delete(name, purge=purge))
        except NotFoundError:
            if not missing_ok:
                raise
            return
        if self._emulates(Stage.PENDING):  # a later secret of this name must not inherit them
            from secretkit.rotation import CompanionStages

            CompanionStages(self).forget(name)

    # -- rotation (secretkit/rotation.py has the protocol) ------------------------------

    def rotate(
        self,
        name: str,
        *,
        generate: Callable[[Secret], SecretInput] | None = None,
        apply: Callable[[Secret], Any] | None = None,
        verify: Callable[[Secret], Any] | None = None,
        token: str | None = None,
        resume: bool = False,
        if_older_than: timedelta | None = None,
    ) -> RotationResult | None:
        """Rotate ``name``: create pending, ``apply`` it, ``verify`` it, promote it to current.

        Readers see the old current value until promotion; the old value stays readable as
        ``stage="previous"``. Safe to re-run after a crash (``resume=True``); a concurrent
        rotator gets ``ConflictError``. With ``if_older_than``, returns None without rotating
        while the current version is younger than that.
        """
        from secretkit import rotation

        steps: dict[str, Any] = {"generate": generate, "apply": apply, "verify": verify, "token": token, "resume": resume}
        if if_older_than is not None:
            return rotation.rotate_if_older(self, name, if_older_than, **steps)
        return rotation.rotate(self, name, **steps)

    def discard_pending(self, name: str) -> str | None:
        """Abandon an unfinished rotation; returns the pending version dropped, if any."""
        from secretkit import rotation

        return rotation.discard_pending(self, name)

    def watch(self, name: str, callback: Callable[[Secret], Any], *, interval: float = 30.0) -> Watcher:
        """Call ``callback(secret)`` from a background thread whenever ``name`` gets a new current value."""
        from secretkit.rotation import Watcher

        return Watcher(self, name, callback, interval)

    # -- internals -------------------------------------------------------------------

    def _written(self, name: str) -> None:
        """Hook run after anything outside ``put``/``delete`` changed ``name`` (rotation, watch)."""

    def _check_read(self, name: str, version: str | None, stage: str | None) -> None:
        _names.check_name(name)
        if version is not None and stage is not None:
            raise InvalidArgumentError("pass version or stage, not both", name=name, backend=self.backend)
        if version is not None:
            if not isinstance(version, str) or not version:
                raise InvalidArgumentError("a version is a non-empty str", name=name, backend=self.backend)
            if not self.capabilities.versions:
                raise NotSupportedError("this backend keeps no versions", name=name, backend=self.backend)
        if stage is not None and stage != Stage.CURRENT:
            if stage not in _STAGES:
                raise InvalidArgumentError(f"unknown stage {stage!r}; use one of {_STAGES}", name=name, backend=self.backend)
            if not self.capabilities.stages and not self._emulates(stage):
                raise NotSupportedError(f"this backend has no {stage!r} stage", name=name, backend=self.backend)

    def _emulates(self, stage: str | None) -> bool:
        """True if ``stage`` is kept in rotation companions because the driver has no native stages."""
        if stage not in (Stage.PENDING, Stage.PREVIOUS) or not self.capabilities.create_only:
            return False
        if all(hasattr(self._driver, m) for m in ("write_pending", "promote", "discard_pending")):
            return False
        return not (stage == Stage.PREVIOUS and self.capabilities.stages)

    def _check_value(self, name: str, value: Value) -> None:
        if value.kind is Kind.FIELDS:
            for key in value.fields:
                _names.check_field_name(key, name=name)
        limit = self.capabilities.max_value_bytes
        if limit is not None and value.size > limit:
            raise InvalidArgumentError(
                f"value is {value.size} bytes; this backend stores at most {limit}", name=name, backend=self.backend
            )
        for hook in ("check_name", "check_value"):
            check = getattr(self._driver, hook, None)
            if check is not None:
                try:
                    check(name) if hook == "check_name" else check(name, value)
                except SecretError as exc:
                    raise self._fill(exc, name) from None

    def _fill(self, exc: SecretError, name: str | None) -> SecretError:
        if exc.name is None:
            exc.name = name
        if exc.backend is None:
            exc.backend = self.backend
        return exc

    def _translate(self, name: str | None, fn: Callable[[], T]) -> T:
        """Run a driver call; turn the SDK's exceptions into portable errors (cause kept)."""
        try:
            return fn()
        except SecretError as exc:
            raise self._fill(exc, name)
        except Exception as exc:
            classified = self._driver.classify(exc)
            if classified is None:
                raise
            raise error_for(classified.code, classified.detail, name=name, backend=self.backend) from exc

    def _call(self, operation: str, name: str | None, fn: Callable[[], T], *, retry: bool = True) -> T:
        """One audited, retried, translated driver call."""
        start = time.perf_counter()
        attempts = 1
        try:
            result, attempts = _retry.call(self.options.retry, lambda: self._translate(name, fn), retry=retry)
        except SecretError as exc:
            attempts = getattr(exc, "attempts", attempts)
            self._audit(operation, name, exc.code.value, start, attempts=attempts)
            raise
        version = getattr(result, "version", None)
        self._audit(operation, name, "ok", start, version=version if isinstance(version, str) else None, attempts=attempts)
        return result

    def _audit(
        self, operation: str, name: str | None, outcome: str, start: float, *,
        cache: str | None = None, version: str | None = None, attempts: int = 1,
    ) -> None:
        event = AuditEvent(operation, name, self.backend, outcome, time.perf_counter() - start, cache, version, attempts)
        emit(event, self._hooks)


def _secret(name: str, record: Record) -> Secret:
    return Secret(name=name, version=record.version, value=record.value, created_at=record.created_at, stages=record.stages)
