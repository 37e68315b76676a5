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

import secrets as _random
import string
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from secretkit.errors import ErrorCode, NotFoundError, NotSupportedError, SecretError
from secretkit.names import check_name
from secretkit.secret import Secret, SecretInput, Stage, Value

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


def _driver_method(store: SecretStore, method: str) -> Callable[..., Any]:
    fn = getattr(store.driver, method, None)
    if fn is None:
        raise NotSupportedError("this backend does not support staged rotation", backend=store.backend)
    return fn  # type: ignore[no-any-return]


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
    write_pending = _driver_method(store, "write_pending")
    promote = _driver_method(store, "promote")
    token = token or uuid.uuid4().hex
    current = store.get(name, stage=Stage.CURRENT)
    new_value = Value.of((generate or (lambda _: generate_password()))(current))
    store._check_value(name, new_value)
    staged = store._call(
        "rotate.create", name, lambda: write_pending(name, new_value, token=token, adopt=resume), retry=True
    )
    if Stage.CURRENT in staged.stages:  # this token's rotation finished in an earlier run
        return RotationResult(name, staged.version, None, token, already_done=True)
    pending = store.get(name, version=staged.version)
    _user_step("apply", apply, pending, store)
    _user_step("verify", verify, pending, store)
    store._call("rotate.promote", name, lambda: promote(name, pending.version, if_current=current.version))
    store._written(name)
    return RotationResult(name, pending.version, current.version, token)


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
    """Abandon an unfinished rotation: drop the pending label. Returns the version dropped, if any."""
    check_name(name)
    discard = _driver_method(store, "discard_pending")
    try:
        pending = store.get(name, stage=Stage.PENDING)
    except NotFoundError:
        return None
    if Stage.CURRENT in pending.stages:
        return None
    store._call("rotate.discard", name, lambda: discard(name, pending.version))
    return pending.version


def rotate_if_older(store: SecretStore, name: str, max_age: timedelta, **steps: Any) -> RotationResult | None:
    """Rotate only when the current version is older than ``max_age`` (for a daily cron job)."""
    current = store.get(name)
    if current.created_at is None:
        raise NotSupportedError("this backend does not report when a version was created", name=name,
                                backend=store.backend)
    if datetime.now(timezone.utc) - current.created_at < max_age:
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
            return self.store.get(self.name).version
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
