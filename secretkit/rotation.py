"""Rotation that never loses a working credential: pending → current → previous.

The protocol generalises AWS's four rotation steps to every backend:

1. **create** — write the new value as a *pending* version; ``current`` is untouched, so
   readers keep getting the working credential.
2. **apply** — make the target system accept the pending value (``ALTER USER …``).
3. **verify** — check the pending value works; a failure stops here, current untouched.
4. **promote** — atomically: pending → current, old current → previous. ``previous`` stays
   readable (``get(name, stage="previous")``) so clients holding it keep working until the
   next rotation.

Every step is idempotent and keyed by a rotation *token*, so re-running after a crash at any
point converges to the same end state (``resume=True``, or the same ``token``). Two rotators
cannot both proceed: creating the pending version is exclusive, and promotion is a
compare-and-set on the current version, so the loser gets ``ConflictError`` and changes
nothing. A driver supports rotation with three optional methods (see ``ROTATION_METHODS``);
stores without them raise ``NotSupportedError``.
"""

from __future__ import annotations

import base64
import json
import secrets as _random
import string
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from secretkit.drivers.base import Record
from secretkit.errors import AlreadyExistsError, ConflictError, ErrorCode, NotFoundError, NotSupportedError, SecretError
from secretkit.names import check_name
from secretkit.secret import Kind, Secret, SecretInput, Stage, Value, fields_to_json

if TYPE_CHECKING:
    from secretkit.store import SecretStore

ROTATION_METHODS = {
    "write_pending": "write_pending(name, value, *, token, adopt) -> VersionInfo: add a pending version "
    "(the version already written with token is returned; another rotation's pending is returned "
    "when adopt, else ConflictError) — atomic",
    "promote": "promote(name, version, *, if_current) -> VersionInfo: pending → current, current → "
    "previous, only if current is still if_current (ConflictError), a no-op if already done — atomic",
    "discard_pending": "discard_pending(name, version) -> None: drop the pending label",
}

Generate = Callable[[Secret], SecretInput]
Apply = Callable[[Secret], Any]
Verify = Callable[[Secret], Any]


class RotationError(SecretError):
    """A user step (``apply`` or ``verify``) failed; current is untouched, the pending version kept.

    Re-run with ``resume=True`` to try the same pending value again, or call ``discard_pending``.
    """

    code = ErrorCode.UNKNOWN

    def __init__(self, message: str, *, step: str, name: str | None = None, backend: str | None = None) -> None:
        super().__init__(message, name=name, backend=backend)
        self.step = step


@dataclass(frozen=True)
class RotationResult:
    """What a rotation did: the new current version, the one now previous, and the token."""

    name: str
    version: str
    previous: str | None
    token: str
    already_done: bool = False


_SYMBOLS = "-_.,:;!@#%^*+="


def generate_password(length: int = 32) -> str:
    """A random password with lower, upper, digits and shell-safe symbols (at least one of each)."""
    if length < 8:
        raise ValueError("a generated password has at least 8 characters")
    alphabet = string.ascii_letters + string.digits + _SYMBOLS
    while True:
        candidate = "".join(_random.choice(alphabet) for _ in range(length))
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and any(c.isdigit() for c in candidate)
            and any(c in _SYMBOLS for c in candidate)
        ):
            return candidate


def generate_token(nbytes: int = 32) -> str:
    """A random URL-safe token of ``nbytes`` of entropy."""
    return _random.token_urlsafe(nbytes)


class NativeStages:
    """Rotation through the driver's own stage primitives (memory, file, AWS)."""

    def __init__(self, store: SecretStore) -> None:
        self.store, self.driver = store, store.driver

    def create(self, name: str, value: Value, *, token: str, adopt: bool) -> Secret | None:
        """Write the pending version; None when this token's rotation already finished."""
        d = self.driver
        info = self.store._call("rotate.create", name, lambda: d.write_pending(name, value, token=token, adopt=adopt))  # type: ignore[attr-defined]
        if Stage.CURRENT in info.stages:
            return None
        return self.store.get(name, version=info.version)

    def promote(self, name: str, pending: Secret, *, current: Secret, token: str) -> str:
        d = self.driver
        info = self.store._call(
            "rotate.promote", name, lambda: d.promote(name, pending.version, if_current=current.version)  # type: ignore[attr-defined]
        )
        return str(info.version)

    def discard(self, name: str) -> str | None:
        try:
            pending = self.store.get(name, stage=Stage.PENDING, refresh=True)
        except NotFoundError:
            return None
        if Stage.CURRENT in pending.stages:
            return None
        d = self.driver
        self.store._call("rotate.discard", name, lambda: d.discard_pending(name, pending.version))  # type: ignore[attr-defined]
        return pending.version

    def read(self, name: str, stage: str) -> Record:
        return self.driver.read(name, stage=stage)


#: Companion names of emulated stages. A segment starting with "." is not a portable name, so
#: no user secret can collide with them and ``list()`` never shows them.
PENDING_SUFFIX = "/.pending"
PREVIOUS_SUFFIX = "/.previous"


class CompanionStages:
    """Emulated stages for backends without native ones (Vault, GCP, Kubernetes).

    The pending value lives in a companion secret ``NAME/.pending`` created with the
    backend's atomic create-only write, so exactly one rotator can hold it. Promotion writes
    the old current value to ``NAME/.previous`` (readable for the grace period even where the
    backend keeps no history) and then the pending value to NAME itself — with
    compare-and-set on the current version where the backend has it — and finally removes
    the companion. Readers of NAME only ever see the promoted value. Each companion records
    the rotation token, so a re-run recognises its own pending value and a finished rotation.
    """

    def __init__(self, store: SecretStore) -> None:
        self.store, self.driver = store, store.driver
        if not store.capabilities.create_only:
            raise NotSupportedError(
                "staged rotation needs an atomic create-only write, which this backend lacks", backend=store.backend
            )

    def _read(self, name: str, suffix: str) -> tuple[Value, str, Record] | None:
        try:
            record = self.store._call("rotate.read", name, lambda: self.driver.read(name + suffix))
        except NotFoundError:
            return None
        return _unpack(record.value), record.value.fields.get("token", ""), record

    def create(self, name: str, value: Value, *, token: str, adopt: bool) -> Secret | None:
        companion = name + PENDING_SUFFIX
        found = self._read(name, PENDING_SUFFIX)
        if found is None:
            # .previous is written before NAME during promotion, so its token means "done" only
            # once the pending companion is gone too
            previous = self._read(name, PREVIOUS_SUFFIX)
            if previous is not None and previous[1] == token:
                return None
            try:
                self.store._call(
                    "rotate.create", name,
                    lambda: self.driver.write(companion, _pack(value, token), if_version=None, create_only=True,
                                              token=token),
                )
            except AlreadyExistsError:
                pass  # a concurrent rotator won; the holder check below says so
            found = self._read(name, PENDING_SUFFIX)
        if found is None:
            raise ConflictError("the pending version vanished: another rotator discarded it", name=name,
                                backend=self.store.backend)
        pending, holder, record = found
        if holder != token and not adopt:
            raise ConflictError(
                "another rotation is in progress; resume it or discard_pending() first",
                name=name, backend=self.store.backend,
            )
        return Secret(name, f"pending-{record.version}", pending, record.created_at, frozenset({Stage.PENDING}))

    def promote(self, name: str, pending: Secret, *, current: Secret, token: str) -> str:
        d = self.driver
        now = self.store._call("rotate.promote", name, lambda: d.read(name))
        if now.value != pending.value:  # else a crashed run already wrote it: just clean up
            if now.version != current.version:
                raise ConflictError(f"current version is {now.version!r}, not {current.version!r}", name=name,
                                    backend=self.store.backend)
            self.store._call("rotate.promote", name, lambda: d.write(
                name + PREVIOUS_SUFFIX, _pack(now.value, token), if_version=None, create_only=False, token=token))
            cas = now.version if self.store.capabilities.compare_and_set else None
            now_info = self.store._call("rotate.promote", name, lambda: d.write(
                name, pending.value, if_version=cas, create_only=False, token=token))
            version = now_info.version
        else:
            version = now.version
        self._drop(name, PENDING_SUFFIX)
        return version

    def discard(self, name: str) -> str | None:
        found = self._read(name, PENDING_SUFFIX)
        if found is None:
            return None
        self._drop(name, PENDING_SUFFIX)
        return f"pending-{found[2].version}"

    def read(self, name: str, stage: str) -> Record:
        found = self._read(name, PENDING_SUFFIX if stage == Stage.PENDING else PREVIOUS_SUFFIX)
        if found is None:
            raise NotFoundError(f"secret has no {stage} version")
        value, _, record = found
        return Record(value, f"{stage}-{record.version}", record.created_at, frozenset({stage}))

    def forget(self, name: str) -> None:
        """Remove both companions (when NAME itself is deleted)."""
        for suffix in (PENDING_SUFFIX, PREVIOUS_SUFFIX):
            self._drop(name, suffix)

    def _drop(self, name: str, suffix: str) -> None:
        try:
            self.store._call("rotate.cleanup", name, lambda: self.driver.delete(name + suffix, purge=True))
        except NotFoundError:
            pass


def _pack(value: Value, token: str) -> Value:
    """A companion's content: the value (kind kept exactly) and the rotation token."""
    if value.kind is Kind.BYTES:
        data = base64.b64encode(value.bytes).decode()
    else:
        data = value.text if value.kind is Kind.TEXT else fields_to_json(value.fields)
    return Value.of({"token": token, "kind": value.kind.value, "data": data})


def _unpack(stored: Value) -> Value:
    fields = stored.fields
    kind = Kind(fields["kind"])
    if kind is Kind.BYTES:
        return Value(Kind.BYTES, base64.b64decode(fields["data"]))
    return Value.of(fields["data"] if kind is Kind.TEXT else json.loads(fields["data"]))


def stages_for(store: SecretStore) -> NativeStages | CompanionStages:
    """The driver's own stage primitives if it has them, else companion emulation."""
    if all(hasattr(store.driver, m) for m in ROTATION_METHODS):
        return NativeStages(store)
    return CompanionStages(store)


def rotate(
    store: SecretStore,
    name: str,
    *,
    generate: Generate | None = None,
    apply: Apply | None = None,
    verify: Verify | None = None,
    token: str | None = None,
    resume: bool = False,
) -> RotationResult:
    """Run the four rotation steps for ``name`` (which must exist).

    ``generate(current)`` returns the new value (default: ``generate_password()``);
    ``apply(pending)`` installs it in the target system and must tolerate being repeated;
    ``verify(pending)`` raises or returns ``False`` if the pending value does not work.
    ``token`` identifies this rotation (default: a new one); ``resume=True`` continues a
    rotation left pending by a crashed run instead of refusing with ``ConflictError``.
    """
    check_name(name)
    stages = stages_for(store)
    token = token or uuid.uuid4().hex
    # bypass the cache: a stale current would only fail later at promotion's if_current check
    current = store.get(name, stage=Stage.CURRENT, refresh=True)
    new_value = Value.of((generate or (lambda _: generate_password()))(current))
    store._check_value(name, new_value)
    try:
        pending = stages.create(name, new_value, token=token, adopt=resume)
    finally:
        store._written(name)  # the pending stage changed
    if pending is None:
        return RotationResult(name, current.version, None, token, already_done=True)
    _user_step("apply", apply, pending, store)
    _user_step("verify", verify, pending, store)
    try:
        version = stages.promote(name, pending, current=current, token=token)
    finally:
        store._written(name)
    return RotationResult(name, version, current.version, token)


def _user_step(step: str, fn: Callable[[Secret], Any] | None, pending: Secret, store: SecretStore) -> None:
    if fn is None:
        return
    try:
        ok = fn(pending)
    except Exception as exc:
        raise RotationError(
            f"rotation step {step} failed ({type(exc).__name__}); current value untouched, "
            f"pending version {pending.version} kept",
            step=step, name=pending.name, backend=store.backend,
        ) from exc
    if ok is False:
        raise RotationError(
            f"rotation step {step} returned False; current value untouched, pending version {pending.version} kept",
            step=step, name=pending.name, backend=store.backend,
        )


def discard_pending(store: SecretStore, name: str) -> str | None:
    """Abandon an unfinished rotation: drop the pending value. Returns the version dropped, if any."""
    check_name(name)
    try:
        return stages_for(store).discard(name)
    finally:
        store._written(name)


def rotate_if_older(store: SecretStore, name: str, max_age: timedelta, **steps: Any) -> RotationResult | None:
    """Rotate only when the current version is older than ``max_age`` (for a daily cron job)."""
    current = store.get(name, refresh=True)
    created = current.created_at
    if created is None and store.capabilities.versions:  # some reads carry no timestamp (GCP access)
        created = next((v.created_at for v in store.versions(name) if v.version == current.version), None)
    if created is None:
        raise NotSupportedError("this backend does not report when a version was created", name=name,
                                backend=store.backend)
    if datetime.now(timezone.utc) - created < max_age:
        return None
    return rotate(store, name, **steps)


class Watcher:
    """Polls a secret and calls ``callback(secret)`` whenever its current version changes.

    Uses the driver's cheap ``current_version`` when it has one (no value transferred), else a
    read. Runs in a daemon thread until ``stop()`` (or the ``with`` block ends).
    """

    def __init__(self, store: SecretStore, name: str, callback: Callable[[Secret], Any], interval: float = 30.0):
        check_name(name)
        self.store, self.name, self.callback, self.interval = store, name, callback, interval
        self._stop = threading.Event()
        self._seen: str | None = self._version()
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name=f"secretkit-watch-{name}", daemon=True)
        self._thread.start()

    def _version(self) -> str | None:
        probe = getattr(self.store.driver, "current_version", None)
        try:
            if probe is not None:
                return self.store._call("watch", self.name, lambda: probe(self.name))  # type: ignore[no-any-return]
            return self.store.get(self.name, refresh=True).version
        except NotFoundError:
            return None

    def poll(self) -> bool:
        """Check once; True if a change was reported."""
        try:
            version = self._version()
        except SecretError:
            self.errors += 1  # a transient outage must not kill the watch
            return False
        if version is None or version == self._seen:
            return False
        self._seen = version
        self.store._written(self.name)
        self.callback(self.store.get(self.name))
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
