"""The whole driver contract: what a backend must provide, and what it may provide.

A driver translates calls to one backend; it never caches, retries, logs values or decides a
rule that must hold on every backend (the ``SecretStore`` does all of that, identically for
every driver). This module is all a new backend's author needs to read:

* ``Driver`` — the required calls. Each docstring says which portable error it raises for
  which case; anything else the SDK raises is left to ``classify``.
* Optional capabilities, each its own small Protocol, detected with ``isinstance`` (they are
  runtime-checkable) and given a fallback by the store when absent, so adding one never
  forces every driver to change: ``BatchReader``, ``VersionProbe``, ``NativeStages``,
  ``History``, ``ClaimLog``, ``RotationSettings``, ``ChangeStream``, ``ChangeEvents``,
  ``ValueLimits``, ``SdkClient``, ``Leases``. A driver lists the ones it implements in
  ``protocols`` (``OPTIONAL_PROTOCOLS``), and the conformance
  suite holds it to that list, so a misspelt method fails a test instead of falling back.
* ``Capabilities`` — the flags the store and the conformance suite read.
* ``NameRules`` — how the backend holds names (what it accepts unchanged, how a portable
  name it cannot hold is mapped); the store checks every name against them before any I/O.
* ``DriverFactory`` — how ``secretkit.open`` builds a driver from a URL and options.

Drivers turn their SDK's own retries off (or pin them to one attempt): the store's
``RetryPolicy`` is the only retry layer, so attempts never multiply. The store ends every remote
call at its attempt's end and deadline; a driver passes ``request_timeout(option)`` (below)
as each SDK request's timeout, so the requests of an abandoned attempt end too (and none starts
once the attempt's time is spent).

A driver that keeps a lock or a thread of its own registers ``at_fork(self, Class._reset)``: only
the forking thread exists in a forked child, so the reset gives the child fresh locks (the
owner is held weakly; see ``secretkit.forking`` and docs/fork.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

# The contract rests on leaf modules only (no I/O at import, none of the store's machinery),
# and re-exports what drivers need of them: a driver imports from secretkit only this module.
from secretkit.deadline import request_timeout, time_left
from secretkit.drivers.shared import (
    GRPC_CODES,
    HTTP_STATUS,
    Classified,
    ErrorTable,
    On,
    bounded_call,
    check_utf8_fields,
    host_of,
    listed_name,
    retry_after_seconds,
    upsert,
    utf8_field_problem,
)
from secretkit.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    DataLossError,
    DeadlineExceededError,
    ErrorCode,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    PermissionDeniedError,
    SecretError,
    ThrottledError,
    UnavailableError,
    already_exists,
    error_for,
    version_conflict,
)
from secretkit.fields import FieldValue, fields_to_json, text_form
from secretkit.forking import at_fork, reset_in_child
from secretkit.names import NameRules, hashed, pattern_rule, portable_rules
from secretkit.policies import RetryPolicy
from secretkit.policies import validate as validate_options
from secretkit.secret import Kind, Stage, Value, VersionInfo
from secretkit.url import StoreURL, redact_url

__all__ = [
    # the contract
    "BatchReader",
    "Capabilities",
    "ChangeStream",
    "ChangeEvents",
    "Classified",
    "Driver",
    "DriverFactory",
    "ErrorTable",
    "History",
    "Issued",
    "Leases",
    "OPTIONAL_PROTOCOLS",
    "NativeStages",
    "On",
    "Record",
    "RotationSetting",
    "RotationSettings",
    "SdkClient",
    "ValueLimits",
    "VersionProbe",
    "ClaimLog",
    "retry_after_seconds",
    "bounded_call",
    "check_utf8_fields",
    "listed_name",
    "upsert",
    "utf8_field_problem",
    "GRPC_CODES",
    "HTTP_STATUS",
    "host_of",
    "name_rules",
    # re-exported from the leaf modules: names (secretkit.names)
    "NameRules",
    "hashed",
    "pattern_rule",
    "portable_rules",
    # values and fields (secretkit.secret, secretkit.fields)
    "FieldValue",
    "Kind",
    "Stage",
    "Value",
    "VersionInfo",
    "fields_to_json",
    "text_form",
    # errors (secretkit.errors)
    "AlreadyExistsError",
    "AuthenticationError",
    "ConfigError",
    "ConflictError",
    "DataLossError",
    "DeadlineExceededError",
    "ErrorCode",
    "InvalidArgumentError",
    "NotFoundError",
    "NotSupportedError",
    "PermissionDeniedError",
    "SecretError",
    "ThrottledError",
    "UnavailableError",
    "already_exists",
    "error_for",
    "version_conflict",
    # URLs, options, time limits, fork safety (secretkit.url, policies, deadline, forking)
    "RetryPolicy",
    "StoreURL",
    "redact_url",
    "request_timeout",
    "time_left",
    "validate_options",
    "at_fork",
    "reset_in_child",
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
    # Optional, read with getattr: ``server_address`` (str or None), the host the driver talks to,
    # which telemetry reports as ``server.address`` (``host_of(endpoint)`` makes it from a URL).

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


@runtime_checkable
class ClaimLog(Protocol):
    """Backends with no atomic create-only write that can still tell, the same way for every
    observer, which of several concurrent writers of one secret wrote first (Azure Key Vault:
    versions ordered by their server-stamped creation time). The store keeps an emulated
    pending value (``secretkit.stages``) in such a log instead of a create-only companion: each
    rotator *claims* the companion by adding an entry, the oldest live entry wins, and the log
    is never deleted, only ended (a deleted name may block re-creation). Never used for a
    secret readers read. A driver with it and ``History`` can rotate without compare-and-set:
    the log serialises rotators, so only the winner promotes."""

    def claim(self, name: str, value: Value, *, token: str) -> Record:
        """Add ``value`` as an entry of log ``name`` and return the winning entry, which is
        this writer's only once no entry written before it can still appear. A losing writer
        ends its own entry. ``NotFoundError`` if even this writer's entry was ended meanwhile."""
        ...

    def read_claim(self, name: str) -> Record:
        """The winning (oldest live) entry; ``NotFoundError`` when the log has none."""
        ...

    def release(self, name: str) -> None:
        """End every live entry, so the log reads as absent; a missing log is no error."""
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
class ChangeEvents(Protocol):
    """Where this backend announces changes (``changes=PREFIX:TARGET``) and what an announced
    secret is called here (``secretkit.changes.source`` is the contract of a source)."""

    change_sources: Mapping[str, str]
    """Prefix of the ``changes`` option -> ``"module:function"`` of its source factory, imported
    only when a store uses it, e.g. ``{"sqs": "secretkit.changes.aws:open_sqs"}``."""

    def event_names(self, secret: str) -> tuple[str, ...]:
        """The names of this store an event's secret identity (a name, a full or partial ARN, a
        full resource name) may refer to; () when it names another store's secret (another
        region, project). More than one where the identity is ambiguous: each is dropped."""
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


@dataclass(frozen=True, repr=False)
class Issued:
    """A credential a ``Leases`` driver obtained: its data and how long it stays valid.

    ``repr`` shows no data and no lease id (the id lets its holder revoke the credential).
    """

    data: Mapping[str, Any]
    """The credential as the engine returned it (``username``/``password``, a certificate...)."""
    lease_id: str | None = None
    """The lease to renew and revoke; None where the engine gives none (static roles, PKI
    without ``generate_lease``)."""
    ttl: float | None = None
    """Seconds from now until the credential stops working (a lease's duration, a certificate's
    expiry) or, where ``rotated``, until the backend replaces it; None: it does not expire."""
    renewable: bool = False
    """``renew`` can extend the lease."""
    rotated: bool = False
    """The backend itself replaces the credential every ``ttl`` (a database static role): the
    store reads it again once ``ttl`` ran out, and reports a change only if ``data`` differs."""
    volatile: frozenset[str] = frozenset()
    """Keys of ``data`` that differ on every read (a static role's ``ttl``): not a new credential."""

    def __repr__(self) -> str:
        return (f"Issued(lease={'yes' if self.lease_id else 'no'}, ttl={self.ttl!r}, renewable={self.renewable!r}, "
                f"rotated={self.rotated!r}, data=***)")


@runtime_checkable
class Leases(Protocol):
    """Dynamic credentials (Vault's database and PKI engines): issue, renew, revoke. The store
    keeps each lease alive in the background (``secretkit.leases``); without this Protocol
    ``store.lease`` is ``NotSupportedError`` before any I/O. ``path`` is the engine's own path
    (``database/creds/app``), whatever mount or folder the store's secrets live in."""

    def issue(self, path: str, params: Mapping[str, Any] | None) -> Issued:
        """A new credential: read ``path`` when ``params`` is None, else write ``params`` to it
        (engines that issue on write, such as PKI). ``NotFoundError``/``InvalidArgumentError``
        for an unknown role, as the backend reports it."""
        ...

    def renew(self, lease_id: str, increment: float) -> float:
        """Extend the lease by ``increment`` seconds from now; returns the seconds granted (less
        than asked once the lease nears its maximum TTL). A lease that expired, was revoked or is
        not renewable raises a non-transient error (the store then issues a new credential)."""
        ...

    def revoke(self, lease_id: str) -> None:
        """End the lease now (the backend drops the credential); a lease already gone is no error."""
        ...


#: Every optional capability. A driver declares the ones it implements as a class attribute,
#: ``protocols = (VersionProbe, NativeStages)``: the store still detects each by its methods,
#: and ``secretkit.testing``'s conformance suite fails when the declaration and the methods
#: disagree (a misspelt ``read_many`` would otherwise turn the batch read into a silent loop).
OPTIONAL_PROTOCOLS: tuple[type, ...] = (BatchReader, VersionProbe, NativeStages, History, ClaimLog, RotationSettings,
                                        ChangeStream, ChangeEvents, ValueLimits, SdkClient, Leases)


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
