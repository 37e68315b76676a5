"""The whole driver contract: what a backend must provide, and what it may provide.

A driver translates calls to one backend; it never caches, retries, logs values or decides a
rule that must hold on every backend (the ``SecretStore`` does all of that, identically for
every driver). This module is all a new backend's author needs to read:

* ``Driver`` — the required calls. Each docstring says which portable error it raises for
  which case; anything else the SDK raises is left to ``classify``.
* Optional capabilities, each its own small Protocol, detected with ``isinstance`` (they are
  runtime-checkable) and given a fallback by the store when absent, so adding one never
  forces every driver to change: ``BatchReader``, ``VersionProbe``, ``NativeStages``,
  ``History``, ``RotationSettings``, ``ChangeStream``, ``ValueLimits``, ``SdkClient``. A driver
  lists the ones it implements in ``protocols`` (``OPTIONAL_PROTOCOLS``), and the conformance
  suite holds it to that list, so a misspelt method fails a test instead of falling back.
* ``Capabilities`` — the flags the store and the conformance suite read.
* ``NameRules`` — how the backend holds names (what it accepts unchanged, how a portable
  name it cannot hold is mapped); the store checks every name against them before any I/O.
* ``DriverFactory`` — how ``secretkit.open`` builds a driver from a URL and options.

Drivers turn their SDK's own retries off (or pin them to one attempt): the store's
``RetryPolicy`` is the only retry layer, so attempts never multiply. The store ends every remote
call at its attempt's end and deadline; a driver passes ``secretkit.retry.request_timeout(option)``
as each SDK request's timeout, so the requests of an abandoned attempt end too (and none starts
once the attempt's time is spent).

A driver that keeps a lock or a thread of its own registers ``at_fork(self, Class._reset)``: only
the forking thread exists in a forked child, so the reset gives the child fresh locks (the
owner is held weakly; see ``secretkit.forking`` and docs/fork.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

from secretkit.config import StoreURL
from secretkit.config import validate as validate_options
from secretkit.errors import (
    AlreadyExistsError,
    ConflictError,
    ErrorCode,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    SecretError,
)
from secretkit.forking import at_fork, reset_in_child
from secretkit.names import NameRules, portable_rules
from secretkit.secret import Kind, Value, VersionInfo

__all__ = [
    # what a driver reads, writes and raises (re-exported so a driver imports from here alone)
    "AlreadyExistsError",
    "ConflictError",
    "ErrorCode",
    "InvalidArgumentError",
    "Kind",
    "NotFoundError",
    "NotSupportedError",
    "SecretError",
    "Value",
    "VersionInfo",
    # the contract
    "GRPC_CODES",
    "HTTP_STATUS",
    "BatchReader",
    "Capabilities",
    "ChangeStream",
    "Classified",
    "Driver",
    "DriverFactory",
    "ErrorTable",
    "History",
    "NameRules",
    "OPTIONAL_PROTOCOLS",
    "NativeStages",
    "On",
    "Record",
    "RotationSetting",
    "RotationSettings",
    "SdkClient",
    "StoreURL",
    "ValueLimits",
    "VersionProbe",
    "at_fork",
    "bounded_call",
    "check_utf8_fields",
    "listed_name",
    "name_rules",
    "reset_in_child",
    "upsert",
    "utf8_field_problem",
    "validate_options",
]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do. The store refuses (``NotSupportedError``, before any I/O) what a
    driver does not declare, and the conformance suite skips it, visibly."""

    remote: bool = True
    """A network backend: the store caches reads by default (local stores do not)."""
    versions: bool = True
    """``get(version=...)`` reads old versions and ``versions()`` lists history."""
    compare_and_set: bool = True
    """``put(if_version=...)`` is atomic on the server."""
    create_only: bool = True
    """``put(create_only=True)`` is atomic on the server."""
    recoverable_delete: bool = False
    """``delete()`` without ``purge`` leaves the data recoverable on the backend."""
    idempotent_put: bool = False
    """A retried ``put`` with the same token never creates two versions (so puts may be retried)."""
    max_value_bytes: int | None = None
    """Every value whose ``Value.size`` (for fields: their canonical JSON, exactly) is at most
    this round-trips; one byte more is ``InvalidArgumentError`` before I/O. None: no limit the
    store knows of. A backend whose encoding is larger still checks it in ``ValueLimits``."""
    read_only: bool = False
    """Nothing can be written (``files://``, ``env://``): ``put``, ``delete`` and ``rotate`` are
    ``NotSupportedError`` before any I/O, and a layered store never picks it for writes."""


@dataclass(frozen=True)
class Record:
    """What a driver read: the value as the backend holds it, and its version metadata."""

    value: Value
    version: str
    created_at: datetime | None = None
    stages: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"Record(version={self.version!r}, kind={self.value.kind.value}, value=***)"


@dataclass(frozen=True)
class Classified:
    """A driver's reading of an SDK exception: the portable code and a safe detail (no values).

    ``cause_safe=False`` says the SDK exception's own text may quote a value (e.g. AWS
    validation messages): the store then raises the portable error without it as ``__cause__``,
    so no traceback or ``logging.exception`` prints it.
    """

    code: ErrorCode
    detail: str
    cause_safe: bool = True


@runtime_checkable
class Driver(Protocol):
    """The calls every backend implements.

    Names passed in have passed the store's checks (``NameRules``); versions are non-empty
    strings. Portable errors a driver raises itself (``NotFoundError`` and the like) need no
    name or backend: the store fills both in.
    """

    backend: str
    """Short backend id used in errors and audit events, e.g. ``"vault"`` or ``"aws-sm"``."""
    capabilities: Capabilities
    names: NameRules
    """How this backend holds names; ``secretkit.names.portable_rules()`` if it adds nothing."""
    sdk_loggers: tuple[str, ...]
    """Loggers of the SDK below (e.g. ``("botocore",)``) that may print values at DEBUG: the
    store masks them whenever a store of this backend is opened."""
    sdk_value_keys: tuple[str, ...]
    """The JSON keys (and keyword names) under which the SDK's requests, responses and headers
    carry values or credentials (AWS ``SecretString``, Vault ``data`` and ``X-Vault-Token``):
    when a store of this backend is opened, ``secretkit.redact`` masks what follows each of them
    in every log line its filter sees (a quoted string, a flat ``{...}`` map or a bare word).
    ``secretkit.redact`` itself names no backend; a driver that declares none adds nothing."""

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        """The current value, or ``version``, or the native ``stage`` (only with ``NativeStages``
        or ``History``). ``NotFoundError``: no such secret, version or stage, or it is deleted."""
        ...

    def write(
        self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str
    ) -> VersionInfo:
        """Store ``value`` as the new current version, the way the backend's own tools do.

        ``if_version``: ``ConflictError`` unless it is the current version (also when the
        secret is missing). ``create_only``: ``AlreadyExistsError`` if it exists. Both atomic
        on the server. Raise them with ``secretkit.errors.version_conflict(if_version, current)``
        and ``already_exists(current)``, ``current`` being the current version where the
        backend told it (else None); the store words every such conflict the same way.
        ``token`` is unique per logical put and repeats on retries.
        ``InvalidArgumentError`` for a value the backend cannot hold (see ``ValueLimits``).
        """
        ...

    def delete(self, name: str, *, purge: bool) -> None:
        """Delete the secret (recoverably where ``recoverable_delete`` unless ``purge``).
        ``NotFoundError`` if it does not exist."""
        ...

    def list(self, prefix: str) -> Iterable[str]:
        """Names starting with ``prefix`` (deleted secrets excluded), in any order: the name as
        secretkit wrote it where the backend records it, else the native name unchanged."""
        ...

    def versions(self, name: str) -> Sequence[VersionInfo]:
        """Version infos, newest first. ``NotFoundError`` if the secret does not exist;
        ``NotSupportedError`` where ``capabilities.versions`` is false."""
        ...

    def classify(self, exc: BaseException) -> Classified | None:
        """Map an SDK exception to a portable code and a detail without values; None if it
        is not the SDK's (the store then lets it propagate)."""
        ...

    def close(self) -> None:
        """Release connections and threads the driver owns (not a client the user passed in)."""
        ...


# -- optional capabilities ---------------------------------------------------------------


@runtime_checkable
class BatchReader(Protocol):
    """A native batch read; without it ``get_many`` is one ``read`` per name."""

    def read_many(self, names: Sequence[str]) -> dict[str, Record | SecretError]:
        """The current value of each name; a missing one maps to ``NotFoundError``. A failure
        of the whole call raises; per-name failures are returned in place of a Record."""
        ...


@runtime_checkable
class VersionProbe(Protocol):
    """A cheap read of the current version id, with no value: lets the cache check for a
    change before fetching the value again, and lets ``watch`` poll cheaply."""

    def current_version(self, name: str) -> str:
        """The current version id. ``NotFoundError`` if missing or deleted."""
        ...


@runtime_checkable
class NativeStages(Protocol):
    """Atomic rotation stages kept by the driver (AWS staging labels, memory/file labels,
    Kubernetes companion Secrets). Without it, the store emulates ``pending`` over ``History``
    (see ``secretkit.stages``).

    ``read(name, stage=...)`` must then answer ``"current"``, ``"previous"`` and ``"pending"``.
    """

    def write_pending(self, name: str, value: Value, *, token: str, adopt: bool) -> VersionInfo:
        """Add a pending version, current untouched. The version written earlier with ``token``
        is returned as it is (a re-run); another rotation's pending is returned when ``adopt``,
        else ``ConflictError``. Atomic against a concurrent rotator. ``NotFoundError`` if the
        secret does not exist."""
        ...

    def promote(self, name: str, version: str, *, if_current: str) -> VersionInfo:
        """Pending ``version`` → current, current → previous, only if current is still
        ``if_current`` (else ``ConflictError``); a no-op when already done. Atomic."""
        ...

    def discard_pending(self, name: str, version: str) -> None:
        """Drop the pending stage of ``version`` (a no-op if it has none)."""
        ...


@runtime_checkable
class History(Protocol):
    """Backends whose own history answers ``previous`` (Vault KV v2 and GCP versions): the
    value the current one replaced. Combined with an emulated pending, this gives rotation
    without anything stored beside the secret once it is done."""

    def read_previous(self, name: str) -> Record:
        """The version before the current one. ``NotFoundError`` if there is none (or it is
        deleted or destroyed)."""
        ...


@dataclass(frozen=True)
class RotationSetting:
    """What a backend's own settings do to the rotation of one secret (``RotationSettings``)."""

    #: How many versions the backend keeps of the secret, where a setting limits it (else None).
    kept_versions: int | None = None
    #: That setting, as the backend's users know it (``max_versions=1 on the secret's metadata``).
    kept_by: str = ""
    #: Another authority that rotates the secret (``the rotation Lambda arn:aws:lambda:…``), or None.
    rotated_by: str | None = None


@runtime_checkable
class RotationSettings(Protocol):
    """Backend settings a rotation must respect; the store reads them before it writes anything
    and refuses what would lose the previous value or race another rotator (``secretkit.rotation``)."""

    def rotation_settings(self, name: str) -> RotationSetting:
        """The settings of existing secret ``name``. One a policy hides is reported as unknown
        (None), not as an error: the rotation then proceeds as before."""
        ...


@runtime_checkable
class ChangeStream(Protocol):
    """A server-side change feed (Kubernetes watch); without it ``watch`` polls."""

    def watch_versions(self, name: str, stop: threading.Event) -> Iterator[str | None]:
        """Yield the current version id now and after every change (None while the secret does
        not exist) until ``stop`` is set; raise when the stream breaks (the watcher then
        polls once and resumes)."""
        ...


@runtime_checkable
class ValueLimits(Protocol):
    """Limits of the backend's encoding beyond ``max_value_bytes``, checked before any I/O."""

    def check_value(self, name: str, value: Value) -> None:
        """``InvalidArgumentError`` stating the backend's rule if ``value`` cannot be stored."""
        ...


@runtime_checkable
class SdkClient(Protocol):
    """The escape hatch (gocloud's ``As``): the SDK client, for users who must reach it."""

    client: Any


#: Every optional capability. A driver declares the ones it implements as a class attribute,
#: ``protocols = (VersionProbe, NativeStages)``: the store still detects each by its methods,
#: and ``secretkit.testing``'s conformance suite fails when the declaration and the methods
#: disagree (a misspelt ``read_many`` would otherwise turn the batch read into a silent loop).
OPTIONAL_PROTOCOLS: tuple[type, ...] = (
    BatchReader, VersionProbe, NativeStages, History, RotationSettings, ChangeStream, ValueLimits, SdkClient,
)


def name_rules(driver: Any) -> NameRules:
    """The driver's ``NameRules`` (a third-party driver that declares none gets the portable ones)."""
    rules = getattr(driver, "names", None)
    return rules if isinstance(rules, NameRules) else portable_rules()


def sdk_client(driver: Any) -> Any:
    """The driver's SDK client, or None."""
    return driver.client if isinstance(driver, SdkClient) else None


#: ``factory(url: StoreURL, options: dict[str, Any], client: Any = None) -> Driver``, registered
#: as ``"module:function"``. ``options`` are the driver's own (the store's retry and cache options
#: are already taken out); the factory validates them against its pydantic model with
#: ``validate_options``, which raises ``ConfigError`` naming each bad option. ``client`` is a
#: ready SDK client the user passed (the driver must not close it).
DriverFactory = Callable[..., Driver]


# -- helpers drivers share ------------------------------------------------------------------
#
# Rules that are the same wherever a backend meets them, so each driver states only its table
# (which wire error is which portable code) and its special cases.

T = TypeVar("T")

#: HTTP status → portable code, the table every HTTP driver starts from (RFC 9110's meanings).
#: A driver overrides an entry where its server uses a status otherwise (``ErrorTable.statuses``);
#: any other 5xx is ``ErrorTable.server_error``.
HTTP_STATUS: Mapping[int, ErrorCode] = MappingProxyType({
    400: ErrorCode.INVALID_ARGUMENT,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.PERMISSION_DENIED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.NOT_SUPPORTED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.INVALID_ARGUMENT,
    415: ErrorCode.INVALID_ARGUMENT,
    422: ErrorCode.INVALID_ARGUMENT,
    429: ErrorCode.THROTTLED,
    504: ErrorCode.DEADLINE_EXCEEDED,
})

#: gRPC status (by name, as ``grpc.StatusCode.X.name`` and Google's REST error bodies spell it)
#: → portable code, after gocloud's ``gcerr.GRPCCode``. ``FAILED_PRECONDITION`` is a conflict:
#: Google APIs answer it to a stale etag or a state a write did not expect. ``UNKNOWN``,
#: ``INTERNAL`` and ``CANCELLED`` are transient, as gRPC's own retry guidance treats them.
GRPC_CODES: Mapping[str, ErrorCode] = MappingProxyType({
    "NOT_FOUND": ErrorCode.NOT_FOUND,
    "ALREADY_EXISTS": ErrorCode.ALREADY_EXISTS,
    "ABORTED": ErrorCode.CONFLICT,
    "FAILED_PRECONDITION": ErrorCode.CONFLICT,
    "INVALID_ARGUMENT": ErrorCode.INVALID_ARGUMENT,
    "OUT_OF_RANGE": ErrorCode.INVALID_ARGUMENT,
    "PERMISSION_DENIED": ErrorCode.PERMISSION_DENIED,
    "UNAUTHENTICATED": ErrorCode.UNAUTHENTICATED,
    "RESOURCE_EXHAUSTED": ErrorCode.THROTTLED,
    "UNAVAILABLE": ErrorCode.UNAVAILABLE,
    "INTERNAL": ErrorCode.UNAVAILABLE,
    "UNKNOWN": ErrorCode.UNAVAILABLE,
    "CANCELLED": ErrorCode.UNAVAILABLE,
    "DEADLINE_EXCEEDED": ErrorCode.DEADLINE_EXCEEDED,
    "DATA_LOSS": ErrorCode.DATA_LOSS,
    "UNIMPLEMENTED": ErrorCode.NOT_SUPPORTED,
})


class On(NamedTuple):
    """One row of an ``ErrorTable``: SDK exceptions of ``catches`` are ``code``.

    ``code`` is a portable code, with ``detail`` formatted with ``kind`` (the exception's class
    name) and ``exc`` (the exception: use ``{exc}`` only where the SDK's text cannot quote a
    value); or a function that reads the exception itself (a status, a body) and returns the
    ``Classified``, or None to let later rows try.
    """

    catches: type[BaseException] | tuple[type[BaseException], ...]
    code: ErrorCode | Callable[[Any], Classified | None]
    detail: str = "{kind}"


@dataclass(frozen=True)
class ErrorTable:
    """A driver's errors as a table, read by one mapper (httpx's ``map_exceptions``, gocloud's
    ``gcerr``): exception rows first, then the backend's own error codes, then the HTTP status.

    ``statuses`` and ``grpc`` override ``HTTP_STATUS`` and ``GRPC_CODES`` entry by entry (None
    removes an entry, so the status no longer decides); a driver documents each override.
    """

    exceptions: Sequence[On] = ()
    codes: Mapping[str, ErrorCode] = field(default_factory=dict)
    """The backend's own error codes (AWS ``ResourceNotFoundException``), read before the status."""
    statuses: Mapping[int, ErrorCode | None] = field(default_factory=dict)
    grpc: Mapping[str, ErrorCode | None] = field(default_factory=dict)
    server_error: ErrorCode | None = ErrorCode.UNAVAILABLE
    """Any 5xx the status table does not name: a server that failed now may answer later."""

    def __post_init__(self) -> None:
        # merged once: the tables are read on every error
        object.__setattr__(self, "_statuses", _merged(HTTP_STATUS, self.statuses))
        object.__setattr__(self, "_grpc", _merged(GRPC_CODES, self.grpc))

    def classify(self, exc: BaseException) -> Classified | None:
        """The first exception row that catches ``exc`` and gives an answer; None if none does."""
        for row in self.exceptions:
            if not isinstance(exc, row.catches):
                continue
            if isinstance(row.code, ErrorCode):
                return Classified(row.code, row.detail.format(kind=type(exc).__name__, exc=exc))
            found = row.code(exc)
            if found is not None:
                return found
        return None

    def for_status(self, status: int | None) -> ErrorCode | None:
        """The portable code of an HTTP status; None when the table leaves it open."""
        if status is None:
            return None
        found: Mapping[int, ErrorCode] = getattr(self, "_statuses")
        if status in found:
            return found[status]
        return self.server_error if 500 <= status <= 599 else None

    def for_grpc(self, name: str | None) -> ErrorCode | None:
        """The portable code of a gRPC status name; None for an unknown or missing one."""
        found: Mapping[str, ErrorCode] = getattr(self, "_grpc")
        return found.get(name) if name else None

    def code(self, backend_code: str | None = None, status: int | None = None) -> ErrorCode:
        """The backend's own error code if the table knows it, else the HTTP status, else UNKNOWN."""
        return (self.codes.get(backend_code or "") or self.for_status(status)) or ErrorCode.UNKNOWN


def _merged(base: Mapping[Any, ErrorCode], overrides: Mapping[Any, ErrorCode | None]) -> Mapping[Any, ErrorCode]:
    merged = {**base, **overrides}
    return MappingProxyType({k: v for k, v in merged.items() if v is not None})


def listed_name(rules: NameRules, native: str, recorded: str | None) -> str:
    """What ``list()`` shows for an object called ``native`` whose metadata recorded the name as
    written ``recorded``: that name only when it really maps to this object (a copied, renamed or
    hand-edited object keeps a stale record), else the native name unchanged."""
    if recorded and recorded != native:
        try:
            if rules.storage_name(recorded) == native:
                return recorded
        except InvalidArgumentError:  # not a name any store of this backend could hold
            pass
    return native


def utf8_field_problem(value: Value, rule: str) -> str | None:
    """Why a backend whose fields are JSON text cannot hold ``value`` (fields given as octets that
    are not UTF-8), followed by the backend's ``rule``; None if it can. Names fields, never values."""
    raw = value.raw
    if not isinstance(raw, Mapping):
        return None
    binary = [key for key, item in raw.items() if isinstance(item, bytes) and not _is_utf8(item)]
    if not binary:
        return None
    which = f"field {binary[0]!r} holds" if len(binary) == 1 else f"fields {', '.join(map(repr, binary))} hold"
    return f"{which} octets that are not UTF-8: {rule}"


def check_utf8_fields(value: Value, rule: str) -> None:
    """``InvalidArgumentError`` (before any I/O) with ``utf8_field_problem``'s reason, if any."""
    problem = utf8_field_problem(value, rule)
    if problem is not None:
        raise InvalidArgumentError(problem)


def _is_utf8(octets: bytes) -> bool:
    try:
        octets.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def upsert(
    update: Callable[[], T],
    create: Callable[[], T],
    *,
    missing: Callable[[BaseException], bool],
    exists: Callable[[BaseException], bool],
    vanished: str | None = None,
) -> T:
    """Write to a secret that may not exist yet, on a backend with no native upsert.

    ``update()``; if that finds the secret ``missing``, ``create()``; if another writer created it
    in between (``exists``), ``update()`` once more, so two first writers both succeed, the later
    one winning. ``vanished``: the ``ConflictError`` message when that last update finds the
    secret gone again (created and deleted meanwhile); None lets that error through as it is.
    """
    try:
        return update()
    except Exception as exc:
        if not missing(exc):
            raise
    try:
        return create()
    except Exception as exc:
        if not exists(exc):
            raise
    try:
        return update()
    except Exception as exc:
        if vanished is None or not missing(exc):
            raise
        raise ConflictError(vanished) from exc


def bounded_call(fn: Callable[[], T], seconds: float) -> T:
    """Run ``fn`` (a driver's own request outside any store call, e.g. a probe at open) as one
    attempt of at most ``seconds``, as the store bounds its calls: SDK timeouts that read
    ``request_timeout`` fit inside it, and the caller stops waiting at its end
    (``DeadlineExceededError``) even if the server answers a byte at a time."""
    # Imported when called: the attempt machinery sits above this contract, which must not
    # import it (drivers call this only while opening).
    from secretkit import retry

    limit = retry.RetryPolicy(max_attempts=1, deadline=seconds)
    return retry.call(limit, lambda: retry.AttemptRunner().run(fn))[0]
