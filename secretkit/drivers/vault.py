"""vault://host:port/mount[/prefix] -- HashiCorp Vault and OpenBao KV secrets engines (v1 and v2).

Schemes: ``vault://`` and ``openbao://`` speak HTTPS; ``vault+http://`` (or ``tls=false``)
plain HTTP, for dev servers only. Without a host the URL falls back to ``VAULT_ADDR``. The
path names the KV mount and an optional folder prefix inside it (``/secret/app`` stores
``db`` at ``secret/app/db``); the engine version is read from ``sys/internal/ui/mounts``
unless ``kv_version=1|2`` is given.

Value encoding (Vault stores a JSON object per version):

* fields ``{"user": "x"}`` are stored as that object, so ``vault kv put app/db user=x
  password=y`` reads back as fields and vice versa;
* text is stored as ``{"secretkit:text": "<text>"}``;
* bytes as ``{"secretkit:base64": "<standard base64>"}`` (any octets);
* no fields, on KV v1 only (which refuses an empty object), as ``{"secretkit:fields": "{}"}``.

The reserved keys contain ``:``, which no portable field name can, so they never collide
with fields written through secretkit. Non-string JSON values written by other tools read as
their compact JSON text.

Names map unchanged to KV paths (every portable character is valid there).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from secretkit import names as _names
from secretkit.config import StoreURL, validate
from secretkit.drivers.base import Capabilities, Classified, Record
from secretkit.drivers.vault_auth import AuthMethod, Credentials, TokenKeeper, credentials
from secretkit.drivers.vault_client import build_client, classify
from secretkit.errors import (
    AlreadyExistsError,
    ConfigError,
    ConflictError,
    NotFoundError,
    NotSupportedError,
    SecretError,
    error_for,
)
from secretkit.secret import Kind, Stage, Value, VersionInfo

T = TypeVar("T")

TEXT_KEY = "secretkit:text"
BYTES_KEY = "secretkit:base64"
EMPTY_KEY = "secretkit:fields"

#: Portable octets per value. Vault's JSON may grow a value up to 6x (``\\u0000`` escapes)
#: and integrated storage refuses entries over 1 MiB, so 128 KiB always fits.
DEFAULT_MAX_VALUE_BYTES = 128 * 1024

KV2_CAPABILITIES = Capabilities(
    versions=True,
    compare_and_set=True,
    create_only=True,
    recoverable_delete=True,
    idempotent_put=False,  # a retried write after a lost reply would add a second version
    max_value_bytes=DEFAULT_MAX_VALUE_BYTES,
)

KV1_CAPABILITIES = Capabilities(
    versions=False,
    compare_and_set=False,
    create_only=False,
    recoverable_delete=False,
    idempotent_put=True,  # an overwrite repeated with the same value leaves the same state
    max_value_bytes=DEFAULT_MAX_VALUE_BYTES,
)


class VaultOptions(BaseModel):
    """Options of vault:// (URL query parameters or keyword arguments of ``secretkit.open``)."""

    model_config = ConfigDict(extra="forbid")

    tls: bool | None = Field(None, description="false: plain http (dev servers); default from the scheme")
    ca_cert: str | None = Field(None, description="CA bundle file or directory (default VAULT_CACERT/VAULT_CAPATH)")
    tls_verify: bool = Field(True, description="false disables certificate checks (testing only)")
    client_cert: str | None = Field(None, description="client certificate (PEM) for TLS client auth")
    client_key: str | None = Field(None, description="its private key (PEM)")
    namespace: str | None = Field(None, description="Enterprise/OpenBao namespace (default VAULT_NAMESPACE)")
    kv_version: Literal["auto", "1", "2"] = Field("auto", description="KV engine version; auto asks the server")
    mount: str | None = Field(None, description="KV mount path, when kv_version is given and the mount is nested")
    timeout: float = Field(30.0, gt=0, description="seconds per HTTP request")
    auth: AuthMethod = Field("token", description="token, approle, kubernetes or userpass")
    auth_mount: str | None = Field(None, description="auth method mount path (default: the method's name)")
    token: SecretStr | None = Field(None, description="token (default VAULT_TOKEN, then ~/.vault-token)")
    role_id: str | None = Field(None, description="AppRole role id (default VAULT_ROLE_ID)")
    secret_id: SecretStr | None = Field(None, description="AppRole secret id (default VAULT_SECRET_ID)")
    role: str | None = Field(None, description="Kubernetes auth role (default VAULT_K8S_ROLE)")
    jwt_path: str | None = Field(None, description="service-account JWT file (default the in-cluster path)")
    username: str | None = Field(None, description="userpass user (default VAULT_USERNAME)")
    password: SecretStr | None = Field(None, description="userpass password (default VAULT_PASSWORD)")
    renew_fraction: float = Field(1 / 3, gt=0, lt=1, description="renew once less than this share of the TTL is left")
    max_value_bytes: int = Field(DEFAULT_MAX_VALUE_BYTES, gt=0, description="largest portable value accepted")

    @field_validator("kv_version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


# -- value encoding ----------------------------------------------------------------------


def encode(value: Value, *, allow_empty: bool = True) -> dict[str, str]:
    """The JSON object Vault stores for ``value`` (see the module docstring)."""
    if value.kind is Kind.TEXT:
        return {TEXT_KEY: value.text}
    if value.kind is Kind.BYTES:
        return {BYTES_KEY: base64.b64encode(value.bytes).decode("ascii")}
    if not value.fields and not allow_empty:
        return {EMPTY_KEY: "{}"}
    return dict(value.fields)


def decode(data: Mapping[str, Any] | None) -> Value:
    """Invert ``encode``; any other object (e.g. written by the vault CLI) reads as fields."""
    data = data or {}
    if len(data) == 1:
        ((key, item),) = data.items()
        if key == TEXT_KEY and isinstance(item, str):
            return Value(Kind.TEXT, item)
        if key == BYTES_KEY and isinstance(item, str):
            try:
                return Value(Kind.BYTES, base64.b64decode(item, validate=True))
            except (binascii.Error, ValueError):
                pass  # not ours after all: show it as the field it is
        if key == EMPTY_KEY and item == "{}":
            return Value.of({})
    fields = {
        str(key): item if isinstance(item, str) else json.dumps(item, separators=(",", ":"), ensure_ascii=False)
        for key, item in data.items()
    }
    return Value.of(fields)


_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def parse_time(text: str | None) -> datetime | None:
    """Vault's RFC 3339 timestamps carry nanoseconds, which ``fromisoformat`` rejects before 3.11."""
    match = _TIMESTAMP.fullmatch(text or "")
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc)
    if fraction:
        stamp += timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        stamp -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return stamp


def version_state(meta: Mapping[str, Any], now: datetime | None = None) -> str:
    """``enabled``, ``deleted`` (soft, recoverable) or ``destroyed`` for one KV v2 version's metadata."""
    if meta.get("destroyed"):
        return "destroyed"
    deleted_at = parse_time(meta.get("deletion_time"))
    if deleted_at is not None and deleted_at <= (now or datetime.now(timezone.utc)):
        return "deleted"
    return "enabled"


def _cas_required(exc: BaseException) -> bool:
    import hvac.exceptions as hx

    return isinstance(exc, hx.InvalidRequest) and any(
        "check-and-set parameter required" in str(e) for e in (exc.errors or [])
    )


def _cas_mismatch(exc: BaseException) -> bool:
    import hvac.exceptions as hx

    return isinstance(exc, hx.InvalidRequest) and any(
        "check-and-set parameter did not match" in str(e) for e in (exc.errors or [])
    )


# -- the drivers -------------------------------------------------------------------------


class _VaultDriver:
    """What the KV v1 and v2 drivers share: the client, the token keeper, names, errors."""

    backend = "vault"
    capabilities: Capabilities
    names = _names.portable_rules()
    sdk_loggers = ("hvac", "urllib3", "requests")

    def __init__(self, client: Any, keeper: TokenKeeper, mount: str, prefix: str, *, owns_client: bool,
                 max_value_bytes: int) -> None:
        self.client = client
        self.mount = mount.strip("/")
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._keeper = keeper
        self._owns_client = owns_client
        self.capabilities = _with_limit(self.capabilities, max_value_bytes)

    def _path(self, name: str) -> str:
        return self.prefix + name

    def _run(self, call: Callable[[], T]) -> T:
        return self._keeper.run(call)

    def classify(self, exc: BaseException) -> Classified | None:
        return classify(exc)

    def close(self) -> None:
        if self._owns_client:
            self.client.adapter.close()

    def _walk(self, prefix: str, list_folder: Callable[[str], Sequence[str]]) -> Iterator[str]:
        """Portable names under ``prefix``: LIST folder by folder, descending only where names can match."""
        start = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        pending = [start]
        while pending:
            folder = pending.pop()
            for key in list_folder(self.prefix + folder):
                name = folder + key
                if key.endswith("/"):
                    if name.startswith(prefix) or prefix.startswith(name):
                        pending.append(name)
                elif name.startswith(prefix) and _portable(name):
                    yield name


def _portable(name: str) -> bool:
    try:
        _names.check_name(name)
    except SecretError:
        return False  # written by another tool under a name secretkit could not address
    return True


def _with_limit(caps: Capabilities, max_value_bytes: int) -> Capabilities:
    from dataclasses import replace

    return replace(caps, max_value_bytes=max_value_bytes)


def _number(version: str) -> int | None:
    return int(version) if version.isdigit() and int(version) > 0 else None


class KV2Driver(_VaultDriver):
    """KV v2: numbered versions, check-and-set, soft delete (recoverable) and purge."""

    capabilities = KV2_CAPABILITIES

    def _kv(self) -> Any:
        return self.client.secrets.kv.v2

    def _metadata(self, path: str) -> dict[str, Any]:
        import hvac.exceptions as hx

        try:
            data: dict[str, Any] = self._run(lambda: self._kv().read_secret_metadata(path, mount_point=self.mount))["data"]
        except hx.InvalidPath as exc:
            raise NotFoundError("secret not found") from exc
        return data

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        import hvac.exceptions as hx

        number = None
        if version is not None:
            number = _number(version)
            if number is None:
                raise NotFoundError(f"no version {version!r}: KV v2 versions are numbers from 1")
        path = self._path(name)
        try:
            reply = self._run(lambda: self._kv().read_secret_version(
                path, version=number, mount_point=self.mount, raise_on_deleted_version=True))
        except hx.InvalidPath as exc:
            raise NotFoundError(_missing_reason(exc, version)) from exc
        meta = reply["data"]["metadata"]
        return Record(decode(reply["data"]["data"]), str(meta["version"]), parse_time(meta.get("created_time")),
                      frozenset({Stage.CURRENT}) if version is None else frozenset())

    def read_previous(self, name: str) -> Record:
        """The version before the current one (KV v2's own history is the previous stage)."""
        current = self.read(name)
        number = int(current.version) - 1
        if number < 1:
            raise NotFoundError("secret has no previous version")
        record = self.read(name, version=str(number))
        return Record(record.value, record.version, record.created_at, frozenset({Stage.PREVIOUS}))

    def current_version(self, name: str) -> str:
        """The current version number from metadata (no value read); NotFoundError if deleted."""
        meta = self._metadata(self._path(name))
        current = str(meta.get("current_version") or 0)
        state = version_state(meta.get("versions", {}).get(current, {"destroyed": True}))
        if state != "enabled":
            raise NotFoundError(f"the current version {current} is {state}" if current != "0" else "secret has no versions")
        return current

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        path = self._path(name)
        data = encode(value)
        cas: int | None = None
        if if_version is not None:
            cas = _number(if_version)
            if cas is None:
                raise ConflictError(f"current version is not {if_version!r} (KV v2 versions are numbers from 1)")
        elif create_only:
            cas = 0
        try:
            return self._put(name, path, data, cas)
        except Exception as exc:
            if not _cas_mismatch(exc):
                raise
            if if_version is not None:
                raise ConflictError(f"current version is not {if_version}") from exc
            # create-only: the name may hold only deleted versions, which count as absent here.
            # CAS on the version we just saw keeps it atomic: a writer in between makes it fail.
            try:
                current = self.current_version(name)
            except NotFoundError:
                meta = self._metadata(path)
                try:
                    return self._put(name, path, data, int(meta.get("current_version") or 0))
                except Exception as again:
                    if _cas_mismatch(again):
                        raise AlreadyExistsError("secret already exists") from again
                    raise
            raise AlreadyExistsError(f"secret already exists (current version {current})") from exc

    def _put(self, name: str, path: str, data: dict[str, str], cas: int | None) -> VersionInfo:
        try:
            reply = self._run(lambda: self._kv().create_or_update_secret(path, secret=data, cas=cas, mount_point=self.mount))
        except Exception as exc:
            if cas is not None or not _cas_required(exc):
                raise
            # The mount or key demands CAS even for plain puts: name the version we overwrite.
            try:
                seen = int(self._metadata(path).get("current_version") or 0)
            except NotFoundError:
                seen = 0
            try:
                reply = self._run(lambda: self._kv().create_or_update_secret(
                    path, secret=data, cas=seen, mount_point=self.mount))
            except Exception as again:
                if _cas_mismatch(again):
                    raise ConflictError("secret changed while writing (cas_required is set)") from again
                raise
        meta = reply["data"]
        return VersionInfo(name, str(meta["version"]), parse_time(meta.get("created_time")), frozenset({Stage.CURRENT}))

    def delete(self, name: str, *, purge: bool) -> None:
        path = self._path(name)
        meta = self._metadata(path)
        if purge:
            self._run(lambda: self._kv().delete_metadata_and_all_versions(path, mount_point=self.mount))
            return
        live = sorted(int(v) for v, m in meta.get("versions", {}).items() if version_state(m) == "enabled")
        if not live:
            raise NotFoundError("secret is already deleted (its versions are soft-deleted or destroyed)")
        self._run(lambda: self._kv().delete_secret_versions(path, versions=live, mount_point=self.mount))

    def versions(self, name: str) -> Sequence[VersionInfo]:
        meta = self._metadata(self._path(name))
        current = str(meta.get("current_version") or 0)
        out = []
        for number, info in sorted(meta.get("versions", {}).items(), key=lambda kv: -int(kv[0])):
            state = version_state(info)
            stages = frozenset({Stage.CURRENT}) if number == current and state == "enabled" else frozenset()
            out.append(VersionInfo(name, number, parse_time(info.get("created_time")), stages, state))
        return out

    def list(self, prefix: str) -> Iterator[str]:
        return self._walk(prefix, self._list_folder)

    def _list_folder(self, folder: str) -> Sequence[str]:
        import hvac.exceptions as hx
        from hvac import utils

        url = utils.format_url("/v1/{mount}/metadata/{folder}", mount=self.mount, folder=folder)
        try:
            reply = self._run(lambda: self.client.adapter.list(url, params={"exclude_deleted": "true"}))
        except hx.InvalidPath:
            return []
        # With a warning attached, an empty folder answers 200 and no keys instead of 404.
        keys = [str(k) for k in _keys(reply)]
        ignored = any("exclude_deleted" in str(w) for w in (reply.get("warnings") if isinstance(reply, dict) else None) or [])
        if not ignored:
            return keys
        # Servers without exclude_deleted (OpenBao, older Vault): check each leaf's current version.
        return [k for k in keys if k.endswith("/") or self._alive(folder + k)]

    def _alive(self, path: str) -> bool:
        try:
            meta = self._metadata(path)
        except NotFoundError:
            return False
        current = str(meta.get("current_version") or 0)
        info = meta.get("versions", {}).get(current)
        return info is not None and version_state(info) == "enabled"


def _missing_reason(exc: Any, version: str | None) -> str:
    """Say why a KV v2 read found nothing: no such secret/version, or a deleted/destroyed version."""
    body = getattr(exc, "json", None) or {}
    meta = ((body.get("data") or {}).get("metadata") or {}) if isinstance(body, dict) else {}
    number = meta.get("version", version)
    which = f"version {number}" if version else f"the current version {number}"
    if meta.get("destroyed"):
        return f"{which} was destroyed and cannot be recovered"
    if meta.get("deletion_time"):
        return (f"{which} is deleted (soft delete at {meta['deletion_time']}; "
                "recoverable with `vault kv undelete` until purged)")
    return f"version {version} not found" if version else "secret not found"


class KV1Driver(_VaultDriver):
    """KV v1: one unversioned value per path; writes overwrite; delete is permanent.

    Version ids are a digest of the stored object, so they change exactly when the value does.
    """

    capabilities = KV1_CAPABILITIES

    def _kv(self) -> Any:
        return self.client.secrets.kv.v1

    def _get(self, path: str) -> dict[str, Any]:
        import hvac.exceptions as hx

        try:
            data: dict[str, Any] = self._run(lambda: self._kv().read_secret(path, mount_point=self.mount))["data"]
        except hx.InvalidPath as exc:
            raise NotFoundError("secret not found") from exc
        return data

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        if version is not None:
            raise NotSupportedError("KV v1 keeps no versions")
        data = self._get(self._path(name))
        return Record(decode(data), _digest(data))

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        if if_version is not None or create_only:
            raise NotSupportedError("KV v1 has no check-and-set")
        path = self._path(name)
        data = encode(value, allow_empty=False)
        self._run(lambda: self._kv().create_or_update_secret(path, secret=data, method="PUT", mount_point=self.mount))
        return VersionInfo(name, _digest(data), None, frozenset({Stage.CURRENT}))

    def delete(self, name: str, *, purge: bool) -> None:
        path = self._path(name)
        self._get(path)  # KV v1 deletes silently; the portable API reports a missing secret
        self._run(lambda: self._kv().delete_secret(path, mount_point=self.mount))

    def versions(self, name: str) -> Sequence[VersionInfo]:
        raise NotSupportedError("KV v1 keeps no versions")

    def list(self, prefix: str) -> Iterator[str]:
        return self._walk(prefix, self._list_folder)

    def _list_folder(self, folder: str) -> Sequence[str]:
        import hvac.exceptions as hx

        try:
            reply = self._run(lambda: self._kv().list_secrets(folder, mount_point=self.mount))
        except hx.InvalidPath:
            return []
        return [str(k) for k in _keys(reply)]


def _keys(reply: Any) -> list[Any]:
    data = reply.get("data") if isinstance(reply, dict) else None
    keys = (data or {}).get("keys") or []
    return keys if isinstance(keys, list) else []


def _digest(data: Mapping[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:20]


# -- opening -----------------------------------------------------------------------------


def detect_mount(client: Any, keeper: TokenKeeper, path: str) -> tuple[str, str, int]:
    """(mount, prefix inside it, KV version) for a URL path, from ``sys/internal/ui/mounts``."""
    reply = keeper.run(lambda: client.adapter.get(f"/v1/sys/internal/ui/mounts/{path}"))
    data = reply["data"]
    if data.get("type") not in ("kv", "generic"):
        raise ConfigError(f"vault mount {data.get('path')!r} is a {data.get('type')!r} engine, not kv")
    mount = str(data["path"]).strip("/")
    prefix = path[len(mount):].strip("/") if path.startswith(mount) else ""
    version = int(((data.get("options") or {}).get("version")) or 1)
    return mount, prefix, version


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> KV2Driver | KV1Driver:
    """Open ``vault://host:port/mount[/prefix]``; ``client`` may be a ready ``hvac.Client``."""
    opts = validate(VaultOptions, options, what="vault store")
    path = url.path.strip("/") or "secret"
    owns = client is None
    explicit_auth = "auth" in options or any(k in options for k in ("token", "role_id", "username", "role"))
    if client is None:
        client = build_client(url, opts)
    creds: Credentials | None = credentials(
        opts.auth,
        mount=opts.auth_mount,
        token=opts.token.get_secret_value() if opts.token else (None if owns else client.token or None),
        role_id=opts.role_id,
        secret_id=opts.secret_id.get_secret_value() if opts.secret_id else None,
        role=opts.role,
        jwt_path=opts.jwt_path,
        username=opts.username,
        password=opts.password.get_secret_value() if opts.password else None,
        need_token=owns,
    )
    if not owns and not explicit_auth:
        creds = Credentials("token", "token", token=client.token) if client.token else None
    if creds is not None and creds.method == "token" and creds.token:
        client.token = creds.token
    keeper = TokenKeeper(client, creds, renew_fraction=opts.renew_fraction)
    if opts.kv_version == "auto":
        try:
            mount, prefix, version = detect_mount(client, keeper, path)
        except SecretError:
            raise
        except Exception as exc:
            found = classify(exc)
            if found is None:
                raise
            raise error_for(found.code, f"cannot detect the KV version of {path!r} ({found.detail}); "
                            "pass kv_version=1 or 2", backend="vault") from exc
    else:
        mount = (opts.mount or path.partition("/")[0]).strip("/")
        if path != mount and not path.startswith(mount + "/"):
            raise ConfigError(f"URL path {path!r} is not inside mount {mount!r}")
        prefix = path[len(mount):].strip("/")
        version = int(opts.kv_version)
    kind = KV2Driver if version == 2 else KV1Driver
    return kind(client, keeper, mount, prefix, owns_client=owns, max_value_bytes=opts.max_value_bytes)


__all__ = ["KV1Driver", "KV2Driver", "VaultOptions", "classify", "decode", "encode", "open_driver"]
