"""GcpDriver: each portable call as the Secret Manager RPCs it becomes.

| portable                | Secret Manager                                                      |
|-------------------------|---------------------------------------------------------------------|
| read (current)          | AccessSecretVersion(latest)                                         |
| read(version=N/alias)   | AccessSecretVersion(N), or (ALIAS) the version a version alias names |
| read_previous           | GetSecretVersion(latest) → N, then AccessSecretVersion(N-1)         |
| current_version         | GetSecretVersion(latest)                                            |
| write                   | AddSecretVersion; on NOT_FOUND CreateSecret (annotated) and add     |
| write(create_only=True) | CreateSecret (ALREADY_EXISTS → AlreadyExistsError), AddSecretVersion |
| delete                  | DeleteSecret (every version, at once)                               |
| list                    | ListSecrets with a ``name:`` filter; annotation → the name as written |
| versions                | ListSecretVersions                                                  |

Every call carries ``retry=None`` (the store's RetryPolicy is the only retry layer) and a
timeout: the ``timeout`` option capped at what is left of the store's attempt. Over gRPC that
is a deadline for the whole call; over REST it bounds each socket read, and the store bounds
the whole attempt. ``pending`` lives with the store (a companion secret while a rotation runs);
``previous`` is GCP's own history (``History``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import google_crc32c
from google.api_core import exceptions as gexc
from google.cloud.secretmanager_v1.types import resources

from secretkit.drivers.base import (
    AlreadyExistsError,
    Capabilities,
    ChangeEvents,
    Classified,
    ConfigError,
    ConflictError,
    DataLossError,
    History,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    Record,
    SdkClient,
    Stage,
    StoreURL,
    Value,
    ValueLimits,
    VersionInfo,
    VersionProbe,
    request_timeout,
    upsert,
    validate_options as validate,
)
from secretkit.drivers.gcp import codec
from secretkit.drivers.gcp.client import make_client
from secretkit.drivers.gcp.codec import BACKEND
from secretkit.drivers.gcp.errors import classify, status
from secretkit.drivers.gcp.options import Options

_STATES = {
    resources.SecretVersion.State.ENABLED: "enabled",
    resources.SecretVersion.State.DISABLED: "disabled",
    resources.SecretVersion.State.DESTROYED: "destroyed",
}
_CURRENT = frozenset({Stage.CURRENT})
_PREVIOUS = frozenset({Stage.PREVIOUS})


class GcpDriver:
    """Translates portable calls to Secret Manager RPCs; owns no state beyond the client."""

    backend = BACKEND
    names = codec.NAMES
    # The client library logs requests and responses under google.cloud.secretmanager_v1 at
    # DEBUG (google.auth and google.api_core too); the REST transport goes through urllib3.
    sdk_loggers = ("google", "grpc", "urllib3")
    protocols = (VersionProbe, History, ValueLimits, SdkClient, ChangeEvents)
    #: ``changes=pubsub:projects/P/topics/T`` (or ``…/subscriptions/S``): the Pub/Sub topic the
    #: secrets' event notifications go to (secretkit.changes.pubsub; extra ``gcp-pubsub``)
    change_sources = {"pubsub": "secretkit.changes.pubsub:open_pubsub"}
    #: A payload's ``data`` (base64 in REST bodies, bytes in the gRPC messages api-core logs).
    sdk_value_keys = ("data",)
    capabilities = Capabilities(
        remote=True,
        versions=True,
        compare_and_set=False,
        create_only=True,
        recoverable_delete=False,
        idempotent_put=False,
        max_value_bytes=codec.MAX_PAYLOAD,
    )

    def __init__(
        self,
        client: Any,
        *,
        project: str,
        location: str | None = None,
        replication: str | list[str] = "automatic",
        timeout: float = 30.0,
        owns_client: bool = False,
    ) -> None:
        self.client = client
        self.project = project
        self._parent = f"projects/{project}" + (f"/locations/{location}" if location else "")
        #: the project as responses name it (its number), learnt from reads: events name it so
        self._project_numbers: set[str] = set()
        self._location = location
        self._replication = replication
        self._timeout = timeout
        self._owns_client = owns_client

    def _rpc(self, method: str, **request: Any) -> Any:
        return getattr(self.client, method)(request=request, retry=None, timeout=self._call_timeout())

    def _call_timeout(self) -> float:
        """The ``timeout`` option, capped at what is left of the store's attempt (and refusing to
        start a call once the store has given up on the attempt)."""
        return request_timeout(self._timeout)

    def _secret(self, name: str) -> str:
        """The resource name of an existing secret: a name GCP cannot hold names none, so it is
        NotFound. (The store refuses such names before I/O; this is for its own companion
        names, e.g. ``secretkit-pending/`` + a 250-character id, which are checked here only.)"""
        try:
            return self._resource(name)
        except InvalidArgumentError as exc:
            raise NotFoundError(f"no secret can exist under this name ({exc})") from None

    def _resource(self, name: str) -> str:
        return f"{self._parent}/secrets/{self.names.storage_name(name)}"

    # -- reads ------------------------------------------------------------------------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        if stage not in (None, Stage.CURRENT):
            raise NotSupportedError(f"GCP Secret Manager has no native {stage!r} stage")
        if version is None:
            return self._access(name, "latest", _CURRENT)
        ref = codec.version_ref(version)
        if ref is None:
            raise NotFoundError(f"no version {version!r}: {codec.VERSION_RULE}")
        return self._access(name, ref, frozenset())

    def read_previous(self, name: str) -> Record:
        """The version before ``latest``: ids are sequential per secret, so N-1 is exactly the
        version that was latest before the last write."""
        latest = int(self.current_version(name, enabled_only=False))
        if latest <= 1:
            raise NotFoundError("secret has no previous version")
        return self._access(name, str(latest - 1), _PREVIOUS)

    def current_version(self, name: str, *, enabled_only: bool = True) -> str:
        """The latest version id (metadata only); NotFound if it is not enabled."""
        meta = self._rpc("get_secret_version", name=f"{self._secret(name)}/versions/latest")
        if enabled_only and meta.state != resources.SecretVersion.State.ENABLED:
            raise NotFoundError(f"the latest version ({_last(meta.name)}) is {_STATES.get(meta.state, 'not enabled')}")
        return _last(meta.name)

    def _access(self, name: str, ref: str, stages: frozenset[str]) -> Record:
        path = f"{self._secret(name)}/versions/{ref}"
        try:
            response = self._rpc("access_secret_version", name=path)
        except gexc.BadRequest as exc:
            unreadable = self._unreadable(path, ref) if status(exc) == "FAILED_PRECONDITION" else None
            if unreadable is None:
                raise
            raise unreadable from exc
        self._learn_project(response.name)
        data = bytes(response.payload.data)
        checked = resources.SecretPayload.pb(response.payload).HasField("data_crc32c")
        if checked and google_crc32c.value(data) != response.payload.data_crc32c:
            raise DataLossError(f"CRC32C mismatch reading version {_last(response.name)}; value discarded")
        return Record(codec.decode_value(data), _last(response.name), None, stages)

    def _unreadable(self, path: str, ref: str) -> NotFoundError | None:
        """A clear error for a version that exists but cannot be read (disabled or destroyed)."""
        try:
            meta = self._rpc("get_secret_version", name=path)
        except gexc.GoogleAPICallError:
            return None
        if meta.state == resources.SecretVersion.State.ENABLED:
            return None  # the precondition was something else; report it as it came
        state, number = _STATES.get(meta.state, "unreadable"), _last(meta.name)
        if ref == "latest":
            return NotFoundError(
                f"the latest version ({number}) is {state}; older versions are not read in its place "
                f"(enable it, or read a version explicitly)"
            )
        return NotFoundError(f"version {number} is {state}")

    def versions(self, name: str) -> Sequence[VersionInfo]:
        pager = self.client.list_secret_versions(
            request={"parent": self._secret(name), "page_size": 1000}, retry=None, timeout=self._call_timeout()
        )
        found = sorted(pager, key=lambda v: int(_last(v.name)), reverse=True)
        # Ids are sequential per secret: the newest is GCP's latest, the one before it was latest
        # until the last write.
        marks = [_CURRENT, _PREVIOUS]
        return [
            VersionInfo(name, _last(meta.name), _time(meta.create_time), marks[i] if i < 2 else frozenset(),
                        _STATES.get(meta.state, "unknown"))
            for i, meta in enumerate(found)
        ]

    def list(self, prefix: str) -> Iterator[str]:
        request: dict[str, Any] = {"parent": self._parent, "page_size": 1000}
        wanted = codec.list_filter(prefix)
        if wanted:  # narrows the listing on the server; the exact prefix is checked here
            request["filter"] = wanted
        for secret in self.client.list_secrets(request=request, retry=None, timeout=self._call_timeout()):
            name = codec.listed_name(_last(secret.name), secret.annotations)
            if name.startswith(prefix):
                yield name

    # -- writes -----------------------------------------------------------------------

    def check_value(self, name: str, value: Value) -> None:
        codec.check_value(value)

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        if if_version is not None:
            raise NotSupportedError("compare-and-set is not atomic on GCP Secret Manager")
        data = codec.encode_value(value)
        payload = {"data": data, "data_crc32c": google_crc32c.value(data)}
        parent = self._resource(name)  # InvalidArgumentError for a name GCP cannot hold
        if create_only:
            try:
                self._create(name)
            except gexc.Conflict as exc:
                if status(exc) not in ("ALREADY_EXISTS", None):
                    raise
                raise AlreadyExistsError("secret already exists (create_only)") from exc
            try:
                added = self._rpc("add_secret_version", parent=parent, payload=payload)
            except gexc.NotFound as exc:
                raise ConflictError("secret was deleted while it was being created") from exc
        else:
            def add() -> Any:
                return self._rpc("add_secret_version", parent=parent, payload=payload)

            def create_and_add() -> Any:
                self._create(name)
                return add()

            # Another writer creating the secret between our NOT_FOUND and CreateSecret: our
            # version is added to theirs.
            added = upsert(
                add,
                create_and_add,
                missing=lambda exc: isinstance(exc, gexc.NotFound),
                exists=lambda exc: isinstance(exc, gexc.Conflict) and status(exc) in ("ALREADY_EXISTS", None),
            )
        return VersionInfo(name, _last(added.name), _time(added.create_time), _CURRENT)

    def _create(self, name: str) -> None:
        secret_id = self.names.storage_name(name)
        body: dict[str, Any] = {"annotations": codec.annotations_for(name, secret_id)}
        if self._location is None:
            if self._replication == "automatic":
                body["replication"] = {"automatic": {}}
            else:
                body["replication"] = {"user_managed": {"replicas": [{"location": loc} for loc in self._replication]}}
        self._rpc("create_secret", parent=self._parent, secret_id=secret_id, secret=body)

    def delete(self, name: str, *, purge: bool) -> None:
        # DeleteSecret removes the secret and every version at once; GCP has no soft delete.
        self._rpc("delete_secret", name=self._secret(name))

    # -- change events (ChangeEvents) ----------------------------------------------------

    def event_names(self, secret: str) -> tuple[str, ...]:
        """The names a notification's ``secretId`` reaches in this store: () for another
        project or location. Notifications name the project by number, which this store knows
        once a read's response has named it (anything cached came from such a read); until
        then, a numbered project is taken as this one (the cost of being wrong: one read)."""
        parts = codec.secret_resource(secret)
        if parts is None:
            return ()
        project, location, secret_id = parts
        if location != self._location:
            return ()
        if project != self.project and project not in self._project_numbers:
            numbered = project.isascii() and project.isdigit()
            if not (numbered and not self._project_numbers and not self.project.isdigit()):
                return ()
        return codec.names_of(secret_id)

    def _learn_project(self, resource: str) -> None:
        parts = codec.secret_resource(resource)
        if parts is not None and parts[0] != self.project:
            self._project_numbers.add(parts[0])

    # -- errors, lifecycle ---------------------------------------------------------------

    def classify(self, exc: BaseException) -> Classified | None:
        return classify(exc)

    def close(self) -> None:
        if self._owns_client:
            transport = getattr(self.client, "transport", None)
            if transport is not None:
                transport.close()


def _last(resource: str) -> str:
    return resource.rsplit("/", 1)[-1]


def _time(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) and value.tzinfo is not None else None


#: The driver classes this factory opens, by the title docs/capabilities.md gives them.
DRIVERS: dict[str, type] = {"gcp-sm": GcpDriver}


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> GcpDriver:
    """Build the driver for ``gcp-sm://PROJECT?location=...&replication=...``."""
    opts = validate(Options, options, what="gcp-sm store")
    if url.path not in ("", "/"):
        raise ConfigError("a gcp-sm URL names only the project: gcp-sm://PROJECT (use ?location= for regional secrets)")
    if opts.insecure and not opts.endpoint:
        raise ConfigError("insecure=true is only for a local test server: give its endpoint too")
    if opts.location is not None and opts.replication != "automatic":
        raise ConfigError("regional secrets (location=...) have no replication policy; drop the replication option")
    project = url.host
    owns = client is None
    if client is None:
        client, default_project = make_client(opts)
        project = project or default_project or ""
    if not project:
        if owns:
            client.transport.close()
        raise ConfigError("no project: use gcp-sm://PROJECT (the default credentials name none)")
    return GcpDriver(
        client, project=project, location=opts.location, replication=opts.replication,
        timeout=opts.timeout, owns_client=owns,
    )
