"""The vault:// driver for KV v2 (numbered versions, check-and-set, soft delete), and ``open_driver``.

Each portable call and its wire call (mount ``secret``):

| call | KV v2 request |
|---|---|
| ``read(name)`` / ``read(name, version=N)`` | ``GET secret/data/NAME`` / ``?version=N`` |
| ``read_previous(name)`` | ``GET secret/data/NAME``, then ``?version=<current - 1>`` (data path only) |
| ``current_version(name)`` | ``GET secret/metadata/NAME`` (the data path where the policy denies metadata) |
| ``write(..)`` | ``POST secret/data/NAME {"options": {"cas": N}, "data": {...}}``; ``cas=0`` for create-only |
| ``delete(name)`` / ``purge=True`` | ``POST secret/delete/NAME {"versions": [live...]}`` / ``DELETE secret/metadata/NAME`` |
| ``versions(name)`` | ``GET secret/metadata/NAME`` (marks current, and previous = current - 1) |
| ``list(prefix)`` | ``LIST secret/metadata/FOLDER/`` per folder (``exclude_deleted=true``) |
| ``rotation_settings(name)`` | ``GET secret/metadata/NAME`` (``max_versions``), then ``GET secret/config`` if needed |

Stages are emulated by the store (``secretkit.stages``): ``previous`` is KV v2's own previous
version (``read_previous``), ``pending`` a companion path that exists only while a rotation runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import hvac.exceptions as hx
from hvac import utils

from secretkit.drivers.base import (
    Capabilities,
    ConfigError,
    ConflictError,
    ErrorCode,
    History,
    Leases,
    NotFoundError,
    NotSupportedError,
    Record,
    RotationSetting,
    RotationSettings,
    SdkClient,
    SecretError,
    Stage,
    StoreURL,
    Value,
    ValueLimits,
    VersionInfo,
    VersionProbe,
    already_exists,
    bounded_call,
    error_for,
    validate_options as validate,
    version_conflict,
)
from secretkit.drivers.vault.auth import Credentials, TokenKeeper, credentials
from secretkit.drivers.vault.client import build_client, detect_mount
from secretkit.drivers.vault.codec import BACKEND, parse_time, version_number, version_state
from secretkit.drivers.vault.errors import acl_denied, cas_mismatch, cas_required, classify, missing_reason
from secretkit.drivers.vault.kv import VaultDriverBase, keys_of
from secretkit.drivers.vault.kv1 import KV1Driver
from secretkit.drivers.vault.options import DEFAULT_MAX_VALUE_BYTES, Options

KV2_CAPABILITIES = Capabilities(
    versions=True,
    compare_and_set=True,
    create_only=True,
    recoverable_delete=True,
    idempotent_put=False,  # a retried write after a lost reply would add a second version
    max_value_bytes=DEFAULT_MAX_VALUE_BYTES,
)


class KV2Driver(VaultDriverBase):
    """KV v2 (see the module docstring for the wire calls)."""

    protocols = (VersionProbe, History, RotationSettings, ValueLimits, SdkClient, Leases)
    capabilities = KV2_CAPABILITIES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Set once the policy denies a metadata read: version probes then read the data path.
        self._metadata_denied = False

    def _kv(self) -> Any:
        return self.client.secrets.kv.v2

    def _metadata(self, path: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = self._run(lambda: self._kv().read_secret_metadata(path, mount_point=self.mount))["data"]
        except hx.InvalidPath as exc:
            raise NotFoundError("secret not found") from exc
        return data

    # -- reads ---------------------------------------------------------------------------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        if stage == Stage.PREVIOUS:
            return self.read_previous(name)
        if stage not in (None, Stage.CURRENT):
            raise NotSupportedError(f"KV v2 keeps no {stage!r} stage; the store emulates it")
        number = None
        if version is not None:
            number = version_number(version)
            if number is None:
                raise NotFoundError(f"no version {version!r}: KV v2 versions are numbers from 1")
        path = self._path(name)
        try:
            reply = self._run(lambda: self._kv().read_secret_version(
                path, version=number, mount_point=self.mount, raise_on_deleted_version=True))
        except hx.InvalidPath as exc:
            raise NotFoundError(missing_reason(exc, version)) from exc
        meta = reply["data"]["metadata"]
        return Record(self._decode(reply["data"]["data"]), str(meta["version"]), parse_time(meta.get("created_time")),
                      frozenset({Stage.CURRENT}) if version is None else frozenset())

    def read_previous(self, name: str) -> Record:
        """The version before the current one, read from the data path only (so a policy that
        grants ``read`` on exactly ``<mount>/data/NAME`` reads it)."""
        current = self.read(name)
        number = int(current.version) - 1
        if number < 1:
            raise NotFoundError("secret has no previous version (the current one is version 1)")
        record = self.read(name, version=str(number))
        return Record(record.value, record.version, record.created_at, frozenset({Stage.PREVIOUS}))

    def current_version(self, name: str) -> str:
        """The current version number from metadata (no value read); NotFoundError if deleted."""
        path = self._path(name)
        if not self._metadata_denied:
            try:
                meta = self._metadata(path)
            except hx.Forbidden as exc:
                if not acl_denied(exc):
                    raise
                self._metadata_denied = True  # a reader's exact-path policy: fall through
            else:
                current = str(meta.get("current_version") or 0)
                state = version_state(meta.get("versions", {}).get(current, {"destroyed": True}))
                if state != "enabled":
                    raise NotFoundError(
                        f"the current version {current} is {state}" if current != "0" else "secret has no versions")
                return current
        return self.read(name).version

    def versions(self, name: str) -> Sequence[VersionInfo]:
        """Newest first. ``current`` and ``previous`` (the version before it) are marked exactly
        where ``read`` and ``read_previous`` find them: each enabled, and previous only while
        current is (a deleted current has no previous to read)."""
        meta = self._metadata(self._path(name))
        found = meta.get("versions", {})
        current = int(meta.get("current_version") or 0)
        marks: dict[str, frozenset[str]] = {}
        if version_state(found.get(str(current), {"destroyed": True})) == "enabled":
            marks[str(current)] = frozenset({Stage.CURRENT})
            if version_state(found.get(str(current - 1), {"destroyed": True})) == "enabled":
                marks[str(current - 1)] = frozenset({Stage.PREVIOUS})
        return [
            VersionInfo(name, number, parse_time(info.get("created_time")), marks.get(number, frozenset()),
                        version_state(info))
            for number, info in sorted(found.items(), key=lambda kv: -int(kv[0]))
        ]

    def rotation_settings(self, name: str) -> RotationSetting:
        """How many versions KV v2 keeps of ``name``: ``max(max_versions of its metadata, of
        the mount's config)``, 10 where both are 0 (unset). A read the policy denies makes the
        limit unknown (None)."""
        key = self._max_versions(lambda: self._metadata(self._path(name)))
        if key is not None and key >= 2:
            return RotationSetting()  # the larger of the two wins, whatever the mount says
        mount = self._max_versions(lambda: self._run(lambda: self._kv().read_configuration(mount_point=self.mount))[
            "data"])
        if key is None or mount is None or (max(key, mount) or 10) >= 2:
            return RotationSetting()
        where = "on the secret's metadata" if key == 1 else f"in the config of mount {self.mount!r}"
        return RotationSetting(kept_versions=1, kept_by=f"max_versions=1 {where}")

    def _max_versions(self, read: Callable[[], dict[str, Any]]) -> int | None:
        try:
            return int(read().get("max_versions") or 0)
        except hx.Forbidden as exc:
            if not acl_denied(exc):
                raise
            return None

    # -- writes --------------------------------------------------------------------------

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        path = self._path(name)
        data = self._encode(value)
        cas: int | None = None
        if if_version is not None:
            cas = version_number(if_version)
            if cas is None:
                raise ConflictError(f"current version is not {if_version!r} (KV v2 versions are numbers from 1)")
        elif create_only:
            cas = 0
        try:
            return self._put(name, path, data, cas)
        except Exception as exc:
            if not cas_mismatch(exc):
                raise
            if if_version is not None:
                raise version_conflict(if_version, self._current_or_none(name)) from exc
            # create-only: the name may hold only deleted versions, which count as absent here.
            # CAS on the version we just saw keeps it atomic: a writer in between makes it fail.
            try:
                current = self.current_version(name)
            except NotFoundError:
                meta = self._metadata(path)
                try:
                    return self._put(name, path, data, int(meta.get("current_version") or 0))
                except Exception as again:
                    if cas_mismatch(again):
                        raise already_exists(self._current_or_none(name)) from again
                    raise
            raise already_exists(current) from exc

    def _current_or_none(self, name: str) -> str | None:
        """The current version for a conflict's message; None when it cannot be read (the
        conflict is the error to report, not a failure to learn the version)."""
        try:
            return self.current_version(name)
        except Exception:  # noqa: BLE001 - hvac's exceptions, or NotFoundError: unknown either way
            return None

    def _put(self, name: str, path: str, data: dict[str, Any], cas: int | None) -> VersionInfo:
        try:
            reply = self._run(lambda: self._kv().create_or_update_secret(path, secret=data, cas=cas, mount_point=self.mount))
        except Exception as exc:
            if cas is not None or not cas_required(exc):
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
                if cas_mismatch(again):
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

    # -- listing -------------------------------------------------------------------------

    def list(self, prefix: str) -> Iterator[str]:
        return self._walk(prefix, self._list_folder)

    def _list_folder(self, folder: str) -> Sequence[str]:
        url = utils.format_url("/v1/{mount}/metadata/{folder}", mount=self.mount, folder=folder)
        try:
            reply = self._run(lambda: self.client.adapter.list(url, params={"exclude_deleted": "true"}))
        except hx.InvalidPath:
            return []
        # With a warning attached, an empty folder answers 200 and no keys instead of 404.
        keys = [str(k) for k in keys_of(reply)]
        warnings = (reply.get("warnings") if isinstance(reply, dict) else None) or []
        if not any("exclude_deleted" in str(w) for w in warnings):
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


# -- opening -------------------------------------------------------------------------------

#: The server answered the mount lookup but would not say (the token may not ask, or the
#: endpoint is missing behind a proxy): only then is ``kv_version=1|2`` the fix.
_UNDETECTED = frozenset({ErrorCode.PERMISSION_DENIED, ErrorCode.NOT_FOUND, ErrorCode.NOT_SUPPORTED})


#: The driver classes this factory opens, by the title docs/capabilities.md gives them.
DRIVERS: dict[str, type] = {"vault KV v2": KV2Driver, "vault KV v1": KV1Driver}


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> KV2Driver | KV1Driver:
    """Open ``vault://host:port/mount[/folder]``; ``client`` may be a ready ``hvac.Client``."""
    opts = validate(Options, options, what="vault store")
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
            # Opening asks the server once: bound it like any store call (the SDK's timeout is
            # per socket read, so a server that answers a byte at a time would hold it forever).
            mount, prefix, version = bounded_call(lambda: detect_mount(client, keeper.run, path), opts.timeout)
        except SecretError:
            raise
        except Exception as exc:
            found = classify(exc)
            if found is None:
                raise
            if found.code not in _UNDETECTED:  # the address, TLS or the token: kv_version would not help
                raise error_for(found.code, found.detail, backend=BACKEND) from exc
            raise error_for(found.code, f"pass kv_version=1 or 2 (and mount= for a mount path of several "
                            f"segments): the server would not tell the KV version of {path!r} ({found.detail})",
                            backend=BACKEND) from exc
    else:
        mount = (opts.mount or path.partition("/")[0]).strip("/")
        if path != mount and not path.startswith(mount + "/"):
            raise ConfigError(f"URL path {path!r} is not inside mount {mount!r}")
        prefix = path[len(mount):].strip("/")
        version = int(opts.kv_version)
    kind = KV2Driver if version == 2 else KV1Driver
    return kind(client, keeper, mount, prefix, owns_client=owns, max_value_bytes=opts.max_value_bytes,
                value_key=opts.value_key)
