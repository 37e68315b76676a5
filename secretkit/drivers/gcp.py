"""gcp-sm:// — Google Cloud Secret Manager (v1), over gRPC (default) or REST.

``gcp-sm://PROJECT`` (project id or number; empty = google-auth's default project).
A portable secret is one Secret Manager secret; each ``put`` is one ``AddSecretVersion``,
and "current" is what Secret Manager itself calls ``latest``. See docs/backends/gcp.md for
the name mapping, the value encoding, and why compare-and-set is not offered.

Every client call carries ``retry=None`` and an explicit timeout: the store's RetryPolicy is
the only retry layer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Literal

import google_crc32c
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.cloud import secretmanager_v1 as sm
from google.cloud.secretmanager_v1.types import resources
from pydantic import BaseModel, ConfigDict, Field, field_validator

from secretkit import names as _names
from secretkit.names import portable_rules
from secretkit.config import StoreURL, validate
from secretkit.drivers.base import Capabilities, Classified, Record
from secretkit.errors import (
    AlreadyExistsError,
    ConfigError,
    ConflictError,
    DataLossError,
    ErrorCode,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
)
from secretkit.secret import Kind, Stage, Value, VersionInfo, fields_to_json

BACKEND = "gcp-sm"
MAX_SECRET_ID = 255
MAX_PAYLOAD = 65536
ESCAPE_MARKER = "_"

# Framed payloads start with 0xFF, which never occurs in UTF-8: no text payload (and so no
# secret written as text by gcloud or another SDK) can be mistaken for a framed one.
MAGIC = b"\xffsk"
_KIND_BYTE = {Kind.TEXT: b"t", Kind.BYTES: b"b", Kind.FIELDS: b"f"}
_BYTE_KIND = {v[0]: k for k, v in _KIND_BYTE.items()}
HEADER_LEN = len(MAGIC) + 1

_STATES = {
    resources.SecretVersion.State.ENABLED: "enabled",
    resources.SecretVersion.State.DISABLED: "disabled",
    resources.SecretVersion.State.DESTROYED: "destroyed",
}


class GcpOptions(BaseModel):
    """Options of the gcp-sm:// store (URL query, config file or keyword arguments)."""

    model_config = ConfigDict(extra="forbid")

    location: str | None = Field(None, description="regional secrets in this location (regional endpoint)")
    replication: str | list[str] = Field(
        "automatic", description="'automatic', or user-managed replica locations (list or comma-separated)"
    )
    endpoint: str | None = Field(None, description="API endpoint host[:port] (default: Google's, regional if location)")
    insecure: bool = Field(False, description="plaintext and anonymous credentials; only for local test servers")
    transport: Literal["grpc", "rest"] = "grpc"
    timeout: float = Field(30.0, gt=0, description="seconds per API call")

    @field_validator("replication")
    @classmethod
    def _replication(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            if value.strip() == "automatic":
                return "automatic"
            value = value.split(",")
        locations = [v.strip() for v in value if v.strip()]
        if not locations:
            raise ValueError("give 'automatic' or at least one replica location")
        return locations


# -- encoding -----------------------------------------------------------------------------


def encode_value(value: Value) -> bytes:
    """The payload for a portable value.

    Text is stored as plain UTF-8 and bytes that are not UTF-8 as themselves, so other GCP
    tools read them naturally. Fields, empty text (GCP rejects empty payloads) and bytes that
    would otherwise read back as text get a 4-byte frame: 0xFF 's' 'k' + kind letter.
    """
    if value.kind is Kind.TEXT:
        return value.text.encode("utf-8") if value.text else MAGIC + b"t"
    if value.kind is Kind.BYTES:
        raw = value.bytes
        if raw and not raw.startswith(MAGIC) and not _is_utf8(raw):
            return raw
        return MAGIC + b"b" + raw
    return MAGIC + b"f" + fields_to_json(value.map).encode("utf-8")


def decode_value(data: bytes) -> Value:
    """Invert ``encode_value``; an unframed payload is text if it is UTF-8, else bytes."""
    if data.startswith(MAGIC) and len(data) >= HEADER_LEN and data[len(MAGIC)] in _BYTE_KIND:
        kind = _BYTE_KIND[data[len(MAGIC)]]
        body = data[HEADER_LEN:]
        try:
            if kind is Kind.TEXT:
                return Value(Kind.TEXT, body.decode("utf-8"))
            if kind is Kind.BYTES:
                return Value(Kind.BYTES, body)
            return Value.of(_fields(json.loads(body.decode("utf-8"))))
        except (UnicodeDecodeError, ValueError) as exc:
            raise DataLossError(f"payload has a secretkit frame but a malformed {kind.value} body") from exc
    try:
        return Value(Kind.TEXT, data.decode("utf-8"))
    except UnicodeDecodeError:
        return Value(Kind.BYTES, data)


def _fields(obj: Any) -> dict[str, str]:
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in obj.items()):
        raise ValueError("not a mapping of str to str")
    return obj


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- names --------------------------------------------------------------------------------


def _keep(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "-")


def secret_id(name: str) -> str:
    """Portable name → secret id: ``/``, ``.`` and ``_`` become ``_2f``, ``_2e``, ``_5f``."""
    return _names.escape(name, _keep, ESCAPE_MARKER)


def portable_name(sid: str) -> str | None:
    """Secret id → portable name, or None for ids no portable name maps to (e.g. ``my_secret``)."""
    try:
        name = _names.unescape(sid, ESCAPE_MARKER)
    except ValueError:
        return None
    if secret_id(name) != sid:
        return None
    try:
        _names.check_name(name)
    except InvalidArgumentError:
        return None
    return name


# -- driver -------------------------------------------------------------------------------


class GcpDriver:
    """Translates portable calls to Secret Manager RPCs; owns no state beyond the client."""

    backend = BACKEND
    names = portable_rules()
    sdk_loggers = ("google", "grpc", "urllib3")

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
        self._parent = f"projects/{project}" + (f"/locations/{location}" if location else "")
        self._location = location
        self._replication = replication
        self._timeout = timeout
        self._owns_client = owns_client
        self.capabilities = Capabilities(
            versions=True,
            compare_and_set=False,
            create_only=True,
            recoverable_delete=False,
            idempotent_put=False,
            max_value_bytes=MAX_PAYLOAD - HEADER_LEN,
        )

    # -- helpers ----------------------------------------------------------------------

    def _rpc(self, method: str, **request: Any) -> Any:
        return getattr(self.client, method)(request=request, retry=None, timeout=self._timeout)

    def _secret(self, name: str) -> str:
        return f"{self._parent}/secrets/{secret_id(name)}"

    def check_name(self, name: str) -> None:
        """Reject names whose secret id would exceed Secret Manager's 255 characters."""
        sid = secret_id(name)
        if len(sid) > MAX_SECRET_ID:
            raise InvalidArgumentError(
                f"name maps to a {len(sid)}-character GCP secret id (limit {MAX_SECRET_ID}; "
                f"'/', '.' and '_' take 3 characters each)"
            )

    # -- reads ------------------------------------------------------------------------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        secret = self._secret(name)
        stages: frozenset[str] = frozenset()
        if version is not None:
            if not (version.isascii() and version.isdigit()) or int(version) < 1:
                raise NotFoundError(f"no version {version!r}: GCP version ids are positive integers")
            ref = str(int(version))
        elif stage in (None, Stage.CURRENT):
            ref, stages = "latest", frozenset({Stage.CURRENT})
        elif stage == Stage.PREVIOUS:
            latest = int(_version_id(self._rpc("get_secret_version", name=f"{secret}/versions/latest").name))
            if latest <= 1:
                raise NotFoundError("secret has no previous version")
            ref, stages = str(latest - 1), frozenset({Stage.PREVIOUS})
        else:
            raise NotSupportedError(f"GCP Secret Manager has no {stage!r} stage")
        path = f"{secret}/versions/{ref}"
        try:
            response = self._rpc("access_secret_version", name=path)
        except gexc.BadRequest as exc:
            unreadable = self._unreadable(path, ref) if _status(exc) == "FAILED_PRECONDITION" else None
            if unreadable is None:
                raise
            raise unreadable from exc
        data = bytes(response.payload.data)
        checked = resources.SecretPayload.pb(response.payload).HasField("data_crc32c")
        if checked and google_crc32c.value(data) != response.payload.data_crc32c:
            raise DataLossError(f"CRC32C mismatch reading version {_version_id(response.name)}; value discarded")
        return Record(decode_value(data), _version_id(response.name), None, stages)

    def _unreadable(self, path: str, ref: str) -> NotFoundError | None:
        """A clear error for a version that exists but cannot be read (disabled or destroyed)."""
        try:
            meta = self._rpc("get_secret_version", name=path)
        except gexc.GoogleAPICallError:
            return None
        if meta.state == resources.SecretVersion.State.ENABLED:
            return None  # the precondition was something else; report it as it came
        state, number = _STATES.get(meta.state, "unreadable"), _version_id(meta.name)
        if ref == "latest":
            return NotFoundError(
                f"the latest version ({number}) is {state}; older versions are not read in its place "
                f"(enable it, or read a version explicitly)"
            )
        return NotFoundError(f"version {number} is {state}")

    def read_previous(self, name: str) -> Record:
        """The version before ``latest`` (GCP's own history is the previous stage)."""
        return self.read(name, stage=Stage.PREVIOUS)

    def current_version(self, name: str) -> str:
        """The latest version id (metadata only); NotFound if it is not enabled."""
        meta = self._rpc("get_secret_version", name=f"{self._secret(name)}/versions/latest")
        if meta.state != resources.SecretVersion.State.ENABLED:
            raise NotFoundError(f"the latest version ({_version_id(meta.name)}) is {_STATES.get(meta.state, 'not enabled')}")
        return _version_id(meta.name)

    def versions(self, name: str) -> Sequence[VersionInfo]:
        pager = self.client.list_secret_versions(
            request={"parent": self._secret(name), "page_size": 1000}, retry=None, timeout=self._timeout
        )
        found = sorted(pager, key=lambda v: int(_version_id(v.name)), reverse=True)
        out = []
        for i, meta in enumerate(found):
            # Ids are sequential per secret, so the newest is what GCP calls latest and the
            # one before it was latest until the last put.
            stages = frozenset({Stage.CURRENT}) if i == 0 else frozenset({Stage.PREVIOUS}) if i == 1 else frozenset()
            out.append(VersionInfo(name, _version_id(meta.name), _time(meta.create_time), stages, _STATES.get(meta.state, "unknown")))
        return out

    def list(self, prefix: str) -> Iterator[str]:
        request: dict[str, Any] = {"parent": self._parent, "page_size": 1000}
        if prefix:
            # A substring match on the server narrows the listing; the exact prefix is checked here.
            request["filter"] = f'name:"{secret_id(prefix)}"'
        for secret in self.client.list_secrets(request=request, retry=None, timeout=self._timeout):
            name = portable_name(_last(secret.name))
            if name is not None and name.startswith(prefix):
                yield name

    # -- writes -----------------------------------------------------------------------

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        if if_version is not None:
            raise NotSupportedError("compare-and-set is not atomic on GCP Secret Manager")
        secret = self._secret(name)
        data = encode_value(value)
        payload = {"data": data, "data_crc32c": google_crc32c.value(data)}
        if create_only:
            try:
                self._create(name)
            except gexc.Conflict as exc:
                if _status(exc) not in ("ALREADY_EXISTS", None):
                    raise
                raise AlreadyExistsError("secret already exists (create_only)") from exc
            try:
                added = self._rpc("add_secret_version", parent=secret, payload=payload)
            except gexc.NotFound as exc:
                raise ConflictError("secret was deleted while it was being created") from exc
        else:
            try:
                added = self._rpc("add_secret_version", parent=secret, payload=payload)
            except gexc.NotFound:
                try:
                    self._create(name)
                except gexc.Conflict as exc:
                    if _status(exc) not in ("ALREADY_EXISTS", None):
                        raise
                    # another writer created it first; adding our version is all we need
                added = self._rpc("add_secret_version", parent=secret, payload=payload)
        return VersionInfo(name, _version_id(added.name), _time(added.create_time), frozenset({Stage.CURRENT}))

    def _create(self, name: str) -> None:
        body: dict[str, Any] = {}
        if self._location is None:
            if self._replication == "automatic":
                body["replication"] = {"automatic": {}}
            else:
                body["replication"] = {"user_managed": {"replicas": [{"location": loc} for loc in self._replication]}}
        self._rpc("create_secret", parent=self._parent, secret_id=secret_id(name), secret=body)

    def delete(self, name: str, *, purge: bool) -> None:
        # DeleteSecret removes the secret and every version at once; GCP has no soft delete.
        self._rpc("delete_secret", name=self._secret(name))

    # -- errors -----------------------------------------------------------------------

    def classify(self, exc: BaseException) -> Classified | None:
        return classify(exc)

    def close(self) -> None:
        if self._owns_client:
            transport = getattr(self.client, "transport", None)
            if transport is not None:
                transport.close()


def _version_id(resource: str) -> str:
    return _last(resource)


def _last(resource: str) -> str:
    return resource.rsplit("/", 1)[-1]


def _time(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) and value.tzinfo is not None else None


def _status(exc: gexc.GoogleAPICallError) -> str | None:
    """The canonical status name, also for REST errors (whose class only reflects the HTTP status)."""
    response: Any = getattr(exc, "response", None)
    if response is not None and callable(getattr(response, "json", None)):  # a requests.Response: REST
        try:
            status = response.json()["error"]["status"]
            if isinstance(status, str):
                return status
        except (ValueError, KeyError, TypeError):
            pass
    code = getattr(exc, "grpc_status_code", None)
    return str(code.name) if code is not None else None


_BY_STATUS = {
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
}

# REST errors arrive as the first api-core class registered for the HTTP status; when the
# body carries no status name, this is the best reading of the class alone.
_BY_CLASS: tuple[tuple[type[BaseException], ErrorCode], ...] = (
    (gexc.NotFound, ErrorCode.NOT_FOUND),
    (gexc.AlreadyExists, ErrorCode.ALREADY_EXISTS),
    (gexc.Conflict, ErrorCode.CONFLICT),
    (gexc.FailedPrecondition, ErrorCode.CONFLICT),
    (gexc.BadRequest, ErrorCode.INVALID_ARGUMENT),
    (gexc.Unauthorized, ErrorCode.UNAUTHENTICATED),
    (gexc.Forbidden, ErrorCode.PERMISSION_DENIED),
    (gexc.TooManyRequests, ErrorCode.THROTTLED),
    (gexc.GatewayTimeout, ErrorCode.DEADLINE_EXCEEDED),
    (gexc.DataLoss, ErrorCode.DATA_LOSS),
    (gexc.MethodNotImplemented, ErrorCode.NOT_SUPPORTED),
    (gexc.ServerError, ErrorCode.UNAVAILABLE),
)


def classify(exc: BaseException) -> Classified | None:
    """Portable code for a google-api-core (gRPC or REST), google-auth, requests or grpc error."""
    import google.auth.exceptions as auth_exc
    import requests

    if isinstance(exc, gexc.GoogleAPICallError):
        status = _status(exc)
        code = _BY_STATUS.get(status) if status else None
        if code is None:
            code = next((c for cls, c in _BY_CLASS if isinstance(exc, cls)), ErrorCode.UNKNOWN)
        return Classified(code, f"{status or type(exc).__name__}: {exc.message}"[:500])
    if isinstance(exc, gexc.RetryError):
        return Classified(ErrorCode.UNAVAILABLE, f"RetryError: {exc.message}"[:500])
    if isinstance(exc, auth_exc.DefaultCredentialsError):
        return Classified(ErrorCode.UNAUTHENTICATED, f"Google credentials missing or unusable: {exc}"[:500])
    if isinstance(exc, auth_exc.RefreshError):
        return Classified(ErrorCode.UNAUTHENTICATED, f"credentials could not be refreshed: {exc}"[:500])
    if isinstance(exc, auth_exc.TransportError):
        return Classified(ErrorCode.UNAVAILABLE, f"auth transport error: {exc}"[:500])
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Classified(ErrorCode.UNAVAILABLE, f"could not connect: {type(exc).__name__}")
    if isinstance(exc, requests.exceptions.Timeout):
        return Classified(ErrorCode.DEADLINE_EXCEEDED, f"request timed out: {type(exc).__name__}")
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return Classified(ErrorCode.UNAVAILABLE, f"connection failed: {type(exc).__name__}")
    try:
        import grpc
    except ImportError:  # pragma: no cover - grpc ships with the gcp extra
        return None
    if isinstance(exc, grpc.RpcError) and callable(getattr(exc, "code", None)):
        name = exc.code().name
        return Classified(_BY_STATUS.get(name, ErrorCode.UNKNOWN), f"{name}: {exc.details()}"[:500])
    return None


# -- factory ------------------------------------------------------------------------------


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> GcpDriver:
    """Build the driver for ``gcp-sm://PROJECT?location=...&replication=...``."""
    opts = validate(GcpOptions, options, what="gcp-sm store")
    if url.path not in ("", "/"):
        raise ConfigError("a gcp-sm URL names only the project: gcp-sm://PROJECT (use ?location= for regional secrets)")
    if opts.insecure and not opts.endpoint:
        raise ConfigError("insecure=true is only for a local test server: give its endpoint too")
    if opts.location is not None and opts.replication != "automatic":
        raise ConfigError("regional secrets (location=...) have no replication policy; drop the replication option")
    project = url.host
    owns = client is None
    if client is None:
        client, default_project = _make_client(opts)
        project = project or default_project or ""
    if not project:
        raise ConfigError("no project: use gcp-sm://PROJECT (the default credentials name none)")
    return GcpDriver(
        client, project=project, location=opts.location, replication=opts.replication,
        timeout=opts.timeout, owns_client=owns,
    )


#: gRPC's own reconnect backoff starts at 1 s and grows to 120 s. While it runs the channel fails
#: every call at once with UNAVAILABLE without trying to connect, so the store's retries were
#: spent in milliseconds and a backend that came back stayed unreachable for up to that long.
#: A short, capped backoff leaves the pacing to the store's RetryPolicy. The price: a channel
#: whose backend is down tries to reconnect about three times a second (gRPC's default starts at
#: once a second).
GRPC_RECONNECT_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 300),
)


def _grpc_transport(**kwargs: Any) -> Any:
    """The client library's gRPC transport, its channel made with ``GRPC_RECONNECT_OPTIONS``."""
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    def channel(*args: Any, options: Sequence[tuple[str, Any]] = (), **kw: Any) -> Any:
        return SecretManagerServiceGrpcTransport.create_channel(
            *args, options=[*options, *GRPC_RECONNECT_OPTIONS], **kw
        )

    return SecretManagerServiceGrpcTransport(channel=channel, **kwargs)


def _make_client(opts: GcpOptions) -> tuple[Any, str | None]:
    endpoint = opts.endpoint or (
        f"secretmanager.{opts.location}.rep.googleapis.com" if opts.location else "secretmanager.googleapis.com"
    )
    if opts.insecure:
        from google.auth.credentials import AnonymousCredentials

        if opts.transport == "rest":
            api = endpoint if "://" in endpoint else f"http://{endpoint}"
            return sm.SecretManagerServiceClient(
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                transport="rest", client_options=ClientOptions(api_endpoint=api)
            ), None
        import grpc
        from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
            SecretManagerServiceGrpcTransport,
        )

        channel = grpc.insecure_channel(endpoint, options=list(GRPC_RECONNECT_OPTIONS))
        transport = SecretManagerServiceGrpcTransport(channel=channel)
        return sm.SecretManagerServiceClient(transport=transport), None
    import google.auth

    credentials, default_project = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    client = sm.SecretManagerServiceClient(
        credentials=credentials,
        transport=_grpc_transport if opts.transport == "grpc" else opts.transport,
        client_options=ClientOptions(api_endpoint=endpoint),
    )
    return client, default_project
