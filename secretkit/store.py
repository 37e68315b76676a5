"""SecretStore: the one portable type applications hold, whatever backend sits below.

Every rule that must hold on every backend lives here, each in its own module the store holds:
checks before any I/O (``checks.py``), the call pipeline of retries, attempts, error translation
and audit (``calls.py``), the cache (``cache.py``), SDK log masking and which stages a backend
keeps (``stages.py``). Drivers only translate calls.
"""

from __future__ import annotations

import logging
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from secretkit import leases as _leases
from secretkit import references as _references
from secretkit import rotation as _rotation
from secretkit import stages as _stages
from secretkit.audit import AuditHook
from secretkit.audit import logger as _audit_logger
from secretkit.cache import Cache, Clock
from secretkit.calls import Calls
from secretkit.checks import Checks
from secretkit.drivers.base import Capabilities, Driver, name_rules, sdk_client
from secretkit.entries import CachedNotFoundError, CacheStats, Key, key_of, name_of, no_hit as _no_hit
from secretkit.errors import AlreadyExistsError, ConflictError, InvalidArgumentError, NotFoundError, NotSupportedError
from secretkit.errors import SecretError, already_exists, version_conflict
from secretkit.flight import Flight
from secretkit.names import NameRules, check_prefix
from secretkit.policies import CachePolicy, StoreOptions, default_policy
from secretkit.redact import install_redaction
from secretkit.secret import BatchResult, Secret, SecretInput, Value, VersionInfo
from secretkit.url import redact_url
from secretkit.watch import Watcher

T = TypeVar("T")
_DEBUG = logging.DEBUG
# logging's own per-level answers for the audit logger (emptied whenever a level changes): on the
# hit path one C dict lookup settles "DEBUG is off", which isEnabledFor's Python frame would cost
# a sixth of a hit to say. Anything else (not known yet, or on) goes to _audit_hit, which asks.
_DEBUG_CACHE: dict[int, bool] = getattr(_audit_logger, "_cache", {})


class SecretStore:
    """Read, write, list, version and rotate secrets on one backend.

    Obtain one with ``secretkit.open(url)``; it is thread-safe and meant to be shared.
    """

    def __init__(
        self, driver: Driver, *, options: StoreOptions | None = None, url: str | None = None, clock: Clock | None = None,
        not_found_hint: str | None = None,
    ) -> None:
        """``clock`` (seconds, monotonic) drives cache expiry; tests pass a fake one instead of sleeping.

        ``not_found_hint`` is added to every ``NotFoundError`` the store raises: ``open()``
        uses it to say that a store nobody named is the default one (and why).
        """
        self._driver = driver
        options = options or StoreOptions()
        self.url = redact_url(url) if url else f"{driver.backend}://"
        self._hooks: list[AuditHook] = []
        self._names: NameRules = name_rules(driver)
        self._stage_support = _stages.support(driver, driver.capabilities.create_only)
        # SDKs below may print values at DEBUG; mask their loggers before the first call.
        install_redaction(getattr(driver, "sdk_loggers", ()), handlers=(),
                          value_keys=getattr(driver, "sdk_value_keys", ()))
        policy = options.cache or default_policy(driver.capabilities.remote)
        #: every driver call runs through it: retry, attempts, translation, audit (calls.py)
        self._calls = Calls(
            driver, options.retry, hooks=self._hooks, not_found_hint=not_found_hint, stages=self._stage_support,
            read_pending=lambda name: _stages.Companion(self).read(name), cache="miss" if policy.enabled else None,
        )
        self._options = options
        self._checks = Checks(driver, self._names, self._stage_support, self._calls.fill)
        self._cache: Cache | None = None
        self._hit: Callable[[Key, float | None], Secret | None] = _no_hit
        if policy.enabled:
            self._cache = Cache(policy, self._calls.read, self._calls.probe(), clock=clock)
            self._hit = self._cache.hit
        #: the watchers started through this store (``close`` stops them)
        self._watchers: weakref.WeakSet[Watcher] = weakref.WeakSet()

    # -- introspection ---------------------------------------------------------------

    @property
    def options(self) -> StoreOptions:
        """The store's options (retry and cache policy, pending prefix)."""
        return self._options

    @options.setter
    def options(self, options: StoreOptions) -> None:
        # later calls follow the new retry policy; the cache keeps the policy it was made with
        self._options = options
        self._calls.policy = options.retry

    @property
    def not_found_hint(self) -> str | None:
        """Added to every ``NotFoundError`` the store raises (see ``__init__``)."""
        return self._calls.not_found_hint

    @not_found_hint.setter
    def not_found_hint(self, hint: str | None) -> None:
        self._calls.not_found_hint = hint

    @property
    def backend(self) -> str:
        """The backend id (``"memory"``, ``"file"``, ``"vault"``, ``"aws-sm"``, ...)."""
        return self._driver.backend

    @property
    def capabilities(self) -> Capabilities:
        return self._driver.capabilities

    @property
    def stages(self) -> str | None:
        """How the backend keeps rotation stages: ``"native"``, ``"emulated"`` (pending in a
        companion while a rotation runs, previous from the backend's history) or None."""
        return self._stage_support

    @property
    def names(self) -> NameRules:
        """The backend's name rules (what it holds unchanged, how other names are mapped)."""
        return self._names

    @property
    def pending_prefix(self) -> str:
        """Where an emulated pending value lives while a rotation runs (``StoreOptions.pending_prefix``)."""
        return self.options.pending_prefix

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
        """Stop everything the store started (its watchers, the cache's refresh worker, the
        attempt workers) and release the driver's connections; revoke the leases it still holds."""
        _leases.close_leases(self)
        for watcher in list(self._watchers):
            watcher.stop()
        if self._cache is not None:
            self._cache.close()
        self._calls.close()
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
        # The hit path: no lock, no validation (only validated keys are ever cached).
        if not refresh:
            try:
                secret = self._hit(name if version is None and stage is None else (name, version, stage), max_age)
            except TypeError:  # an unhashable name or a bad max_age: the slow path explains
                secret = None
            if secret is not None:
                if self._hooks or _DEBUG_CACHE.get(_DEBUG) is not False:
                    self._audit_hit(name, secret)
                return secret
        return self._get(name, version, stage, max_age, refresh)

    def _audit_hit(self, name: str, secret: Secret) -> None:
        if self._hooks or _audit_logger.isEnabledFor(_DEBUG):
            self._calls.audit("get", name, "ok", time.perf_counter(), cache="hit", version=secret.version)

    def refresh(self, name: str) -> Secret:
        """Read the current value from the backend, bypassing the cache, and cache it."""
        return self.get(name, refresh=True)

    def _get(self, name: str, version: str | None, stage: str | None, max_age: float | None, refresh: bool) -> Secret:
        self._checks.read(name, version, stage, max_age)
        key: Key = name if version is None and stage is None else (name, version, stage)
        if self._cache is None:
            return self._calls.read(key)
        start = time.perf_counter()
        try:
            secret, how = self._cache.fetch(key, max_age=max_age, refresh=refresh)
        except CachedNotFoundError as exc:
            self._calls.audit("get", name, exc.code.value, start, cache="hit")
            raise
        if how != "miss" and (self._hooks or _audit_logger.isEnabledFor(_DEBUG)):
            self._calls.audit("get", name, "ok", start, cache=how, version=secret.version)
        return secret

    def get_many(self, names: Iterable[str]) -> BatchResult:
        """Read the current value of several secrets; one name's failure does not fail the rest.

        Uses the backend's batch call where it has one, else one read per name; with the
        cache on, hits are answered from it and each missing name is loaded once, however
        many threads ask for it at the same time.
        """
        found: dict[str, Secret] = {}
        errors: dict[str, SecretError] = {}
        keys: list[Key] = []
        for name in dict.fromkeys(names):
            try:
                self._checks.name(name)
                keys.append(name)
            except SecretError as exc:
                errors[name] = exc
        if self._cache is not None:
            outcomes = self._cache.fetch_many(keys, self._calls.read_many)
        else:
            outcomes = self._calls.read_many(keys)
        for key, outcome in outcomes.items():
            name = name_of(key)
            if isinstance(outcome, Secret):
                found[name] = outcome
            else:
                errors[name] = outcome
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
        self._checks.name(name)
        if not self.capabilities.versions:
            raise NotSupportedError("this backend keeps no version history", name=name, backend=self.backend)
        return list(self._calls.call("versions", name, lambda: self._driver.versions(name)))

    def list(self, prefix: str = "") -> Iterator[str]:
        """Names of existing secrets that start with ``prefix``, sorted: as written through
        secretkit where the backend had to map them, else the backend's own names."""
        try:
            check_prefix(prefix)
        except SecretError as exc:
            raise self._calls.fill(exc, None) from None
        found = self._calls.call("list", prefix or None, lambda: sorted(set(self._driver.list(prefix))))
        # only where rotation keeps pending values in companions: elsewhere such names are the user's
        hidden = self.pending_prefix if self._stage_support == "emulated" else ""
        return iter([n for n in found if n.startswith(prefix) and not (hidden and n.startswith(hidden))])

    # -- writes ----------------------------------------------------------------------

    def put(
        self,
        name: str,
        value: SecretInput,
        *,
        if_version: str | None = None,
        create_only: bool = False,
    ) -> VersionInfo:
        """Store ``value`` as the new current version: text (str), octets (bytes) or fields (a
        mapping of str to str), stored the way the backend's own tools store it.

        ``if_version``: compare-and-set; ``ConflictError`` unless the current version is
        exactly that one. ``create_only``: ``AlreadyExistsError`` if the secret exists.
        Both are atomic on the backend, never read-then-write.
        """
        wrapped = self.prepare_value(name, value)
        del value  # from here on only the masked wrapper is in this frame's locals (crash reporters read them)
        self._checks.writable(name)
        if if_version is not None:
            self._checks.version(name, if_version, "if_version")
        if if_version is not None and create_only:
            raise InvalidArgumentError("pass if_version or create_only, not both", name=name, backend=self.backend)
        if if_version is not None and not self.capabilities.compare_and_set:
            raise NotSupportedError("compare-and-set is not atomic on this backend", name=name, backend=self.backend)
        if create_only and not self.capabilities.create_only:
            raise NotSupportedError("create-only writes are not atomic on this backend", name=name, backend=self.backend)
        token = str(uuid.uuid4())
        try:
            return self._calls.call(
                "put",
                name,
                lambda: self._driver.write(name, wrapped, if_version=if_version, create_only=create_only, token=token),
                retry=self.capabilities.idempotent_put,
                sensitive=True,
            )
        except ConflictError as exc:
            if if_version is None:  # not a lost compare-and-set: the driver's own words say what happened
                raise
            raise version_conflict(if_version, exc.current_version, name=name, backend=exc.backend) from None
        except AlreadyExistsError as exc:
            if not create_only:
                raise
            raise already_exists(exc.current_version, name=name, backend=exc.backend) from None
        finally:  # even a failed put may have landed (a timeout): never trust the old entry
            self.invalidate(name)

    def delete(self, name: str, *, purge: bool = False, missing_ok: bool = False) -> None:
        """Delete the secret; afterwards ``get`` raises ``NotFoundError``.

        Without ``purge`` the backend keeps the data recoverable where it can (AWS recovery
        window, Vault soft delete); ``purge=True`` destroys it at once.
        """
        self._checks.name(name)
        self._checks.writable(name)
        try:
            self._calls.call("delete", name, lambda: self._driver.delete(name, purge=purge))
        except NotFoundError:
            if not missing_ok:
                raise
            return
        finally:
            self.invalidate(name)
        if self._stage_support == "emulated":  # a later secret of this name must not inherit a pending value
            try:
                _stages.Companion(self).forget(name)
            except SecretError:
                # The secret is gone already; a token allowed to delete it may not be allowed on the
                # rotation's pending place. What is left there is reported to the next rotation
                # (ConflictError, resolved by discard_pending), so the delete still succeeds.
                pass

    # -- rotation and watching ---------------------------------------------------------

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
        """Rotate ``name``: create pending, ``apply`` it, ``verify`` it, promote it to current.

        Readers see the old current value until promotion; the old value stays readable as
        ``stage="previous"``. Safe to re-run after a crash (``resume=True``); a concurrent
        rotator gets ``ConflictError``. With ``if_older_than``, returns None without rotating
        while the current version is younger than that. ``field`` rotates one field of a
        field secret and keeps the others; ``generate(current)`` then returns that field's new
        value (else the whole new value; default: a strong password). Refused before anything is
        written where the backend would prune the previous value (Vault ``max_versions=1``), and,
        unless ``allow_native_rotation``, where the backend rotates the secret itself (an AWS
        rotation Lambda). See ``secretkit.rotation``.
        """
        self._checks.name(name)
        self._checks.writable(name)
        steps: dict[str, Any] = {
            "generate": generate, "apply": apply, "verify": verify, "token": token, "resume": resume, "field": field,
            "allow_native_rotation": allow_native_rotation,
        }
        if if_older_than is not None:
            return _rotation.rotate_if_older(self, name, if_older_than, **steps)
        return _rotation.rotate(self, name, **steps)

    def discard_pending(self, name: str) -> str | None:
        """Abandon an unfinished rotation; returns the pending version dropped, if any."""
        self._checks.name(name)
        return _rotation.discard_pending(self, name)

    def watch(self, name: str, callback: Callable[[Secret], Any], *, interval: float = 30.0) -> Watcher:
        """Call ``callback(secret)`` from a background thread whenever ``name`` gets a new current value."""
        self._checks.name(name)
        watcher = Watcher(self, name, callback, interval)
        self._watchers.add(watcher)
        return watcher

    def lease(self, path: str, *, params: Mapping[str, Any] | None = None) -> _leases.Lease:
        """A credential the store keeps valid: ``path`` read, or ``params`` written to it (docs/leases.md)."""
        return _leases.issue(self, path, params)

    # -- secret references (secretkit.references) ----------------------------------------

    def resolve(self, reference: str, *, refresh: bool = False) -> str:
        """The text a reference names: ``"NAME"`` (exactly the secret's ``.text``, the same on
        every backend) or ``"NAME#FIELD"``. ``InvalidArgumentError`` for a malformed reference (before any I/O)
        or ``#FIELD`` on a secret without fields; ``NotFoundError`` for a missing secret or field."""
        return _references.resolve(self, reference, refresh=refresh)

    def refreshing(
        self, reference: str, fn: Callable[[str], T], *, on: type[BaseException] | tuple[type[BaseException], ...]
    ) -> T:
        """``fn(value of reference)``; if it raises one of ``on`` (say, the database rejects a
        rotated password), re-read the secret bypassing the cache and retry once with the new value."""
        return _references.refreshing(self, reference, fn, on=on)

    # -- non-blocking reads, for facades that must not wait in their thread (secretkit.aio) --

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
        return secret

    # -- the seam for rotation, stages, watch and extensions (secretkit.seam) -------------

    def call_driver(
        self, operation: str, name: str | None, fn: Callable[[], T], *, retry: bool = True, sensitive: bool = False
    ) -> T:
        """Run one driver call as the store runs its own: audited as ``operation``, retried on
        transient errors (unless ``retry=False``), SDK exceptions made portable errors
        (``sensitive=True`` for a call that carries a value: its error keeps no SDK chain)."""
        return self._calls.call(operation, name, fn, retry=retry, sensitive=sensitive)

    def invalidate(self, name: str) -> None:
        """Forget everything cached about ``name`` (every version and stage). The store does it
        after its own writes; call it when something else changed the secret."""
        if self._cache is not None:
            self._cache.invalidate(name)

    def prepare_value(self, name: str, value: SecretInput | Value) -> Value:
        """Check ``name`` and ``value`` the way ``put`` does, before any I/O; returns the
        value to write (``InvalidArgumentError`` stating the rule, never the value)."""
        return self._checks.value(name, value)
