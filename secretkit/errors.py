"""The portable error hierarchy: one class per portable code, whatever the backend.

Retry and cache policies read ``.code``, never the SDK exception type. Messages name the
secret and the backend and never contain a secret value; the SDK exception, when there is
one, is kept as ``__cause__``.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    """Portable error codes (after gocloud's ``gcerrors``)."""

    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    CONFLICT = "conflict"
    PERMISSION_DENIED = "permission_denied"
    UNAUTHENTICATED = "unauthenticated"
    INVALID_ARGUMENT = "invalid_argument"
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    NOT_SUPPORTED = "not_supported"
    CONFIG = "config"
    DATA_LOSS = "data_loss"
    UNKNOWN = "unknown"


#: Codes worth retrying: the same call may succeed a moment later.
TRANSIENT_CODES = frozenset({ErrorCode.THROTTLED, ErrorCode.UNAVAILABLE, ErrorCode.DEADLINE_EXCEEDED})


class SecretError(Exception):
    """Base class of every error secretkit raises.

    ``name`` and ``backend`` say which secret and which store were involved; the message
    never contains a secret value.
    """

    code: ErrorCode = ErrorCode.UNKNOWN
    #: Seconds the backend asked to wait before a retry (HTTP ``Retry-After``), where it said;
    #: the store's retry waits at least that, or gives up when the deadline leaves no room.
    retry_after: float | None = None

    def __init__(self, message: str, *, name: str | None = None, backend: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.backend = backend

    @property
    def transient(self) -> bool:
        """True when retrying the same call may succeed."""
        return self.code in TRANSIENT_CODES

    def __str__(self) -> str:
        where = []
        if self.name is not None:
            where.append(f"secret {self.name!r}")
        if self.backend is not None:
            where.append(f"backend {self.backend}")
        return f"{self.message} ({', '.join(where)})" if where else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class NotFoundError(SecretError, LookupError):
    """The secret, or the requested version or stage of it, does not exist."""

    code = ErrorCode.NOT_FOUND


class AlreadyExistsError(SecretError):
    """A create-only write found the secret already there.

    ``current_version``: the version found, where the backend told (else None).
    """

    code = ErrorCode.ALREADY_EXISTS

    def __init__(
        self, message: str, *, name: str | None = None, backend: str | None = None, current_version: str | None = None
    ) -> None:
        super().__init__(message, name=name, backend=backend)
        self.current_version = current_version


class ConflictError(SecretError):
    """The secret's state forbids the write: a compare-and-set precondition failed (someone
    else changed it), or the secret is deleted but still recoverable (AWS's recovery window).

    After ``put(if_version=...)``: ``expected_version`` is that version, and ``current_version``
    the current one where the backend told (else None). Both are None for other conflicts (a
    rotation already in progress, a secret in its recovery window, a secret changed while a
    write was being retried).
    """

    code = ErrorCode.CONFLICT

    def __init__(
        self, message: str, *, name: str | None = None, backend: str | None = None,
        expected_version: str | None = None, current_version: str | None = None,
    ) -> None:
        super().__init__(message, name=name, backend=backend)
        self.expected_version = expected_version
        self.current_version = current_version


# The one wording of each write conflict, so it reads the same on every backend: drivers raise
# these with what they know, and the store forms every put conflict again with them (a driver
# that raised its own words, or an SDK error it classified, still reads the same).


def version_conflict(
    expected: str, current: str | None = None, *, name: str | None = None, backend: str | None = None
) -> ConflictError:
    """``put(if_version=expected)`` lost: ``current`` is the current version where known."""
    found = f"the current version is {current!r}" if current is not None else "it is not the current one"
    return ConflictError(f"compare-and-set refused: expected version {expected!r}, {found}", name=name, backend=backend,
                         expected_version=expected, current_version=current)


def already_exists(
    current: str | None = None, *, name: str | None = None, backend: str | None = None
) -> AlreadyExistsError:
    """``put(create_only=True)`` found the secret: ``current`` is its current version where known."""
    found = f" (current version {current!r})" if current is not None else ""
    return AlreadyExistsError(f"create-only write refused: the secret already exists{found}", name=name,
                              backend=backend, current_version=current)


class PermissionDeniedError(SecretError, PermissionError):
    """The caller is authenticated but not allowed to do this."""

    code = ErrorCode.PERMISSION_DENIED


class AuthenticationError(SecretError):
    """Credentials are missing, invalid or expired (or a file store's key is wrong)."""

    code = ErrorCode.UNAUTHENTICATED


class InvalidArgumentError(SecretError, ValueError):
    """The name, value or option is not acceptable; raised before any network call."""

    code = ErrorCode.INVALID_ARGUMENT


class ThrottledError(SecretError):
    """The backend asked us to slow down."""

    code = ErrorCode.THROTTLED


class UnavailableError(SecretError):
    """The backend could not be reached or answered with a transient server error.

    ``attempts`` is how many calls were made before giving up (1 without retries).
    """

    code = ErrorCode.UNAVAILABLE

    def __init__(
        self, message: str, *, name: str | None = None, backend: str | None = None, attempts: int = 1
    ) -> None:
        super().__init__(message, name=name, backend=backend)
        self.attempts = attempts


class LeaseExpiredError(UnavailableError):
    """A lease's credential ran out while the store could neither renew it nor issue a new one
    (``secretkit.leases``): it is never served dead. Names the path and the backend, never a value."""


class DeadlineExceededError(SecretError, TimeoutError):
    """The call timed out; it may or may not have taken effect."""

    code = ErrorCode.DEADLINE_EXCEEDED


class NotSupportedError(SecretError, NotImplementedError):
    """The backend cannot do this (see the store's ``capabilities``)."""

    code = ErrorCode.NOT_SUPPORTED


class ConfigError(SecretError, ValueError):
    """The URL, options or environment do not describe a usable store."""

    code = ErrorCode.CONFIG


class DataLossError(SecretError):
    """Data failed an integrity check (e.g. a checksum mismatch); it is never returned."""

    code = ErrorCode.DATA_LOSS


class RotationError(SecretError):
    """A user step of a rotation (``apply`` or ``verify``) failed; current is untouched and the
    pending value kept. Re-run with ``resume=True`` to try the same pending value again, or
    call ``discard_pending``. ``step`` names the step."""

    def __init__(self, message: str, *, step: str, name: str | None = None, backend: str | None = None) -> None:
        super().__init__(message, name=name, backend=backend)
        self.step = step


_BY_CODE: dict[ErrorCode, type[SecretError]] = {
    cls.code: cls
    for cls in (
        NotFoundError,
        AlreadyExistsError,
        ConflictError,
        PermissionDeniedError,
        AuthenticationError,
        InvalidArgumentError,
        ThrottledError,
        UnavailableError,
        DeadlineExceededError,
        NotSupportedError,
        ConfigError,
        DataLossError,
    )
}


def error_for(code: ErrorCode, message: str, *, name: str | None = None, backend: str | None = None) -> SecretError:
    """Build the exception class that belongs to ``code``."""
    return _BY_CODE.get(code, SecretError)(message, name=name, backend=backend)
