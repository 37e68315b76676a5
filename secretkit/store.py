"""SecretStore: the one portable type applications hold, whatever backend sits below.

Everything that must behave the same on every backend lives here: validation before any
I/O, error translation, retries, auditing and (see ``cache.py``) caching. Drivers only
translate calls.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from secretkit import names as _names
from secretkit import retry as _retry
from secretkit.audit import AuditEvent, AuditHook, emit
from secretkit.audit import logger as _audit_logger
from secretkit.cache import Cache, CachedNotFoundError, CachePolicy, CacheStats, Clock, Entry, Key, default_policy
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
_DEBUG = logging.DEBUG
_STAGES = (Stage.CURRENT, Stage.PREVIOUS, Stage.PENDING)


class SecretStore:
    """Read, write, list and version secrets on one backend.

    Obtain one with ``secretkit.open(url)``; it is thread-safe and meant to be shared.
    """

    def __init__(
        self, driver: Driver, *, options: StoreOptions | None = None, url: str | None = None, clock: Clock | None = None
    ) -> None:
        """``clock`` (seconds, monotonic) drives cache expiry; tests pass a fake one instead of sleeping."""
        self._driver = driver
        self.options = options or StoreOptions()
        self.url = redact_url(url) if url else f"{driver.backend}://"
        self._hooks: list[AuditHook] = []
        policy = self.options.cache or default_policy(driver.backend)
        self._cache: Cache | None = Cache(policy, clock=clock) if policy.enabled else None
        # the hit path reads these directly (an empty dict when not caching: every read misses)
        self._entries: Mapping[Key, Entry] = self._cache.entries if self._cache is not None else {}
        self._clock = self._cache.clock if self._cache is not None else time.monotonic

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

    @property
    def cache_policy(self) -> CachePolicy | None:
        """The cache policy in effect (the backend's default unless options set one); None when off."""
        return self._cache.policy if self._cache is not None else None

    def cache_stats(self) -> CacheStats:
        """Hits, misses, stale answers, refreshes and evictions of this store's cache so far."""
        return self._cache.stats() if self._cache is not None else CacheStats()

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
        if self._cache is not None:
            self._cache.close()
        self._driver.close()

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
        """Read the current value, or ``version=`` a specific version, or ``stage=`` a stage.

        Raises ``NotFoundError`` when the secret (or that version/stage) does not exist.
        Where the store caches (see ``docs/caching.md``): ``max_age`` treats cached entries
        older than that many seconds as missing; ``refresh=True`` reads the backend and
        updates the cache.
        """
        # The hit path: no lock, no validation (only validated keys are ever cached), as few
        # attribute lookups and calls as possible; everything else is in _get.
        key = (name, version, stage)
        try:
            entry = self._entries[key]
        except (KeyError, TypeError):  # a miss (or an unhashable name, which validation explains)
            return self._get(name, version, stage, max_age, refresh)
        secret = entry[0]
        now = self._clock()
        if now < entry[2] and not refresh and secret.__class__ is Secret and (
            max_age is None or now - entry[1] <= max_age
        ):
            cache: Cache = self._cache  # type: ignore[assignment]  # entries exist only with a cache
            if cache.track_recency:
                try:
                    cache.entries.move_to_end(key)
                except KeyError:  # evicted a moment ago; the entry read is still valid
                    pass
            cache.hits += 1
            if self._hooks or _audit_logger.isEnabledFor(_DEBUG):
                self._audit("get", name, "ok", time.perf_counter(), cache="hit", version=secret.version)
            return secret
        return self._get(name, version, stage, max_age, refresh)

    def refresh(self, name: str) -> Secret:
        """Read the current value from the backend, bypassing the cache, and cache it."""
        return self.get(name, refresh=True)

    def _get(self, name: str, version: str | None, stage: str | None, max_age: float | None, refresh: bool) -> Secret:
        self._check_read(name, version, stage)
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or max_age < 0):
            raise InvalidArgumentError("max_age is a number of seconds >= 0", name=name, backend=self.backend)
        cache = self._cache
        key: Key = (name, version, stage)
        if cache is None:
            return self._load(key)
        if refresh:
            return cache.reload(key, self._load)
        start = time.perf_counter()
        try:
            secret, how = cache.fetch(key, self._load, self._probe(), max_age=max_age)
        except CachedNotFoundError as exc:
            self._audit("get", name, exc.code.value, start, cache="hit")
            raise
        if how != "miss" and (self._hooks or _audit_logger.isEnabledFor(_DEBUG)):
            self._audit("get", name, "ok", start, cache=how, version=secret.version)
        return secret

    def _load(self, key: Key, *, operation: str = "get") -> Secret:
        """Read one key from the backend (audited, retried, translated)."""
        name, version, stage = key
        if stage is not None and self._emulates(stage):
            from secretkit.rotation import CompanionStages

            record = CompanionStages(self).read(name, stage)
        else:
            cached = "miss" if self._cache is not None else None
            record = self._call(
                operation, name, lambda: self._driver.read(name, version=version, stage=stage), cache=cached
            )
        return _secret(name, record)

    def _probe(self) -> Callable[[str], str] | None:
        """The driver's cheap current-version read, wrapped like any driver call; None if it has none."""
        probe = getattr(self._driver, "current_version", None)
        if probe is None:
            return None

        def version_of(name: str) -> str:
            return str(self._call("version_check", name, lambda: probe(name), cache="miss"))

        return version_of

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
        cache = self._cache
        read_many = getattr(self._driver, "read_many", None)
        if read_many is None:
            for name in valid:
                try:
                    found[name] = self.get(name)
                except SecretError as exc:
                    errors[name] = exc
            return BatchResult(found, errors)
        missing = valid
        if cache is not None:  # answer hits from the cache, batch only the misses
            missing = []
            probe = self._probe()
            for name in valid:
                key: Key = (name, None, None)
                entry = cache.lookup(key)
                if entry is None:
                    missing.append(name)
                    continue
                try:
                    found[name] = cache.hit(key, entry, self._load, probe)
                except NotFoundError as exc:
                    errors[name] = exc
        if not missing:
            return BatchResult(found, errors)
        whole_failure: SecretError | None = None
        generations = {name: cache.generation(name) for name in missing} if cache is not None else {}
        started = cache.clock() if cache is not None else 0.0
        if cache is not None:
            cache.misses += len(missing)
        try:
            results: dict[str, Record | SecretError] = self._call(
                "get_many", None, lambda: read_many(missing), cache="miss" if cache is not None else None
            )
        except SecretError as exc:
            if cache is None or not exc.transient:
                raise
            whole_failure = exc
            results = {name: exc for name in missing}  # served stale below where the cache allows
        for name in missing:
            outcome = results.get(name)
            answer: Secret | SecretError
            if isinstance(outcome, Record):
                answer = _secret(name, outcome)
            else:
                answer = self._fill(outcome or NotFoundError("secret not found", name=name), name)
            if cache is not None:
                answer = cache.settle((name, None, None), answer, generations[name], started)
            if isinstance(answer, Secret):
                found[name] = answer
            else:
                errors[name] = answer
        if whole_failure is not None and not any(name in found for name in missing):
            raise whole_failure  # the batch call failed and nothing could be served stale
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
        try:
            return self._call(
                "put",
                name,
                lambda: self._driver.write(name, wrapped, if_version=if_version, create_only=create_only, token=token),
                retry=self.capabilities.idempotent_put,
            )
        finally:  # even a failed put may have landed (a timeout): never trust the old entry
            self._written(name)

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
        finally:
            self._written(name)
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
        """Run after anything changed ``name`` (put, delete, rotation, a watcher seeing a change):
        drop every cached entry of it, so this process reads its own writes."""
        if self._cache is not None:
            self._cache.invalidate(name)

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

    def _call(
        self, operation: str, name: str | None, fn: Callable[[], T], *, retry: bool = True, cache: str | None = None
    ) -> T:
        """One audited, retried, translated driver call."""
        start = time.perf_counter()
        attempts = 1
        try:
            result, attempts = _retry.call(self.options.retry, lambda: self._translate(name, fn), retry=retry)
        except SecretError as exc:
            attempts = getattr(exc, "attempts", attempts)
            self._audit(operation, name, exc.code.value, start, cache=cache, attempts=attempts)
            raise
        version = getattr(result, "version", None)
        self._audit(
            operation, name, "ok", start, cache=cache, version=version if isinstance(version, str) else None,
            attempts=attempts,
        )
        return result

    def _audit(
        self, operation: str, name: str | None, outcome: str, start: float, *,
        cache: str | None = None, version: str | None = None, attempts: int = 1,
    ) -> None:
        event = AuditEvent(operation, name, self.backend, outcome, time.perf_counter() - start, cache, version, attempts)
        emit(event, self._hooks)


def _secret(name: str, record: Record) -> Secret:
    return Secret(name=name, version=record.version, value=record.value, created_at=record.created_at, stages=record.stages)
