"""Where each backend keeps the rotation stages ``current``, ``previous`` and ``pending``.

Native first: nothing secretkit keeps beside a secret may sit where its readers look.

* ``native`` — the driver has ``NativeStages`` and keeps every stage itself: AWS staging
  labels and memory/file labels on the secret's own versions; on Kubernetes, which keeps no
  history, companion Secrets (pending only while a rotation runs, in a configurable namespace;
  previous after a promotion) that never appear in ``list()`` and hold nothing readers of the
  Secret itself see.
* ``emulated`` — the driver has ``History`` (Vault KV v2 versions, GCP versions) and an atomic
  create-only write: ``previous`` is the backend's own previous version, and only the
  *pending* value lives elsewhere, in a companion secret ``store.pending_prefix + NAME``
  (default ``secretkit-pending/NAME``), and only while a rotation runs. The companion is created
  with the backend's create-only write, so exactly one rotator holds it, and it is deleted at
  promotion. The prefix is a store option, so a policy can give the rotator (and nobody else)
  access to it; ``list()`` never shows it. A backend with no create-only write but a
  ``ClaimLog`` (Azure Key Vault) keeps the companion as that log instead: every rotator adds
  an entry, the oldest live one holds the rotation, and the companion is never deleted, only
  ended; promotion then needs no compare-and-set, because only the holder promotes.
* otherwise (Vault KV v1): no stages; ``rotate`` raises ``NotSupportedError``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Literal

from secretkit.drivers.base import ClaimLog, History, NativeStages, Record
from secretkit.errors import AlreadyExistsError, ConflictError, InvalidArgumentError, NotFoundError, NotSupportedError
from secretkit.seam import StoreSeam
from secretkit.secret import Kind, Secret, Stage, Value, same_value

StageSupport = Literal["native", "emulated"]


def support(driver: object, create_only: bool) -> StageSupport | None:
    """How a driver's backend keeps stages (see the module docstring); None: it has none."""
    if isinstance(driver, NativeStages):
        return "native"
    if isinstance(driver, History) and (create_only or isinstance(driver, ClaimLog)):
        return "emulated"
    return None


class Native:
    """Rotation steps through the driver's own stage primitives."""

    def __init__(self, store: StoreSeam) -> None:
        self.store = store
        driver = store.driver
        assert isinstance(driver, NativeStages)
        self.driver: NativeStages = driver

    def create(self, name: str, value: Value, *, token: str, adopt: bool) -> Secret | None:
        """Write the pending version; None when this token's rotation already finished."""
        info = self.store.call_driver(
            "rotate.create", name, lambda: self.driver.write_pending(name, value, token=token, adopt=adopt),
            sensitive=True)
        if Stage.CURRENT in info.stages:
            return None
        return self.store.get(name, stage=Stage.PENDING, refresh=True)

    def promote(self, name: str, pending: Secret, *, current: Secret, token: str) -> str:
        info = self.store.call_driver(
            "rotate.promote", name, lambda: self.driver.promote(name, pending.version, if_current=current.version))
        return str(info.version)

    def discard(self, name: str) -> str | None:
        try:
            pending = self.store.get(name, stage=Stage.PENDING, refresh=True)
        except NotFoundError:
            return None
        if Stage.CURRENT in pending.stages:
            return None
        self.store.call_driver("rotate.discard", name, lambda: self.driver.discard_pending(name, pending.version))
        return pending.version

    def forget(self, name: str) -> None:
        """Nothing to do: native stages go with the secret."""


class Companion:
    """Emulated pending: a companion secret at ``pending_prefix + NAME`` (see the module docstring).

    The companion holds the pending value and the rotation token, so a re-run recognises its
    own pending value. Promotion writes the pending value to NAME (with compare-and-set on the
    current version where the backend has it), which makes the old value the backend's own
    previous version, and then deletes the companion.
    """

    def __init__(self, store: StoreSeam) -> None:
        self.store, self.driver = store, store.driver
        #: where the backend has no create-only write: the companion is a first-writer-wins log
        driver, create_only = store.driver, store.capabilities.create_only
        self.log: ClaimLog | None = driver if not create_only and isinstance(driver, ClaimLog) else None
        if not create_only and self.log is None:
            raise NotSupportedError(
                "staged rotation needs an atomic create-only write, which this backend lacks", backend=store.backend
            )

    def companion(self, name: str) -> str:
        """The companion's name: ``pending_prefix + NAME``, or, where the backend cannot hold
        that (a native name near the length limit, or one outside the portable grammar that the
        backend only holds at top level), ``pending_prefix`` + a digest of NAME."""
        plain = self.store.pending_prefix + name
        try:
            self.store.names.storage_name(plain)
            return plain
        except InvalidArgumentError:
            return self.store.pending_prefix + hashlib.sha256(name.encode("utf-8")).hexdigest()[:40]

    def _read(self, name: str) -> tuple[Value, str, Record] | None:
        companion, log = self.companion(name), self.log
        read = (lambda: log.read_claim(companion)) if log is not None else (lambda: self.driver.read(companion))
        try:
            record = self.store.call_driver("rotate.read", name, read)
        except NotFoundError:
            return None
        return _opened(record)

    def create(self, name: str, value: Value, *, token: str, adopt: bool) -> Secret | None:
        companion = self.companion(name)
        found = self._read(name)
        if found is None and self.log is not None:
            found = self._claim(name, value, token)
        elif found is None:
            try:
                self.store.call_driver(
                    "rotate.create", name,
                    lambda: self.driver.write(companion, pack(value, token), if_version=None, create_only=True,
                                              token=token),
                    sensitive=True,
                )
            except AlreadyExistsError:
                pass  # a concurrent rotator won; the holder check below says so
            found = self._read(name)
        if found is None:
            raise ConflictError("the pending value vanished: another rotator discarded it", name=name,
                                backend=self.store.backend)
        pending, holder, record = found
        if holder != token and not adopt:
            raise ConflictError(
                "another rotation is in progress; resume it or discard_pending() first",
                name=name, backend=self.store.backend,
            )
        return Secret(name, pending_version(record.version), pending, record.created_at, frozenset({Stage.PENDING}))

    def _claim(self, name: str, value: Value, token: str) -> tuple[Value, str, Record] | None:
        """Add this rotator's entry to the companion log; the winner's (None: every entry ended)."""
        log, companion = self.log, self.companion(name)
        assert log is not None
        try:
            record = self.store.call_driver(
                "rotate.create", name, lambda: log.claim(companion, pack(value, token), token=token), sensitive=True)
        except NotFoundError:
            return None
        return _opened(record)

    def promote(self, name: str, pending: Secret, *, current: Secret, token: str) -> str:
        now = self.store.call_driver("rotate.promote", name, lambda: self.driver.read(name))
        if not same_value(now.value, pending.value):  # else a crashed run already wrote it: just clean up
            if now.version != current.version:
                raise ConflictError(f"current version is {now.version!r}, not {current.version!r}", name=name,
                                    backend=self.store.backend)
            cas = now.version if self.store.capabilities.compare_and_set else None
            info = self.store.call_driver("rotate.promote", name, lambda: self.driver.write(
                name, pending.value, if_version=cas, create_only=False, token=token), sensitive=True)
            version = info.version
        else:
            version = now.version
        self.forget(name)
        return version

    def discard(self, name: str) -> str | None:
        found = self._read(name)
        # delete even what cannot be read: a rotator that died half-way through creating the
        # companion (GCP: the secret made, its version not yet added) must not block rotation
        self.forget(name)
        return pending_version(found[2].version) if found is not None else None

    def read(self, name: str) -> Record:
        found = self._read(name)
        if found is None:
            raise NotFoundError("secret has no pending version")
        value, _, record = found
        return Record(value, pending_version(record.version), record.created_at, frozenset({Stage.PENDING}))

    def forget(self, name: str) -> None:
        """Remove the companion (at promotion, discard, and when NAME itself is deleted)."""
        companion, log = self.companion(name), self.log
        end = (lambda: log.release(companion)) if log is not None else (lambda: self.driver.delete(companion, purge=True))
        try:
            self.store.call_driver("rotate.cleanup", name, end)
        except NotFoundError:
            pass


def _opened(record: Record) -> tuple[Value, str, Record]:
    """A companion's pending value, the token of the rotation holding it, and its record."""
    fields = record.value.fields
    return unpack(fields), fields.get("token", ""), record


def pending_version(companion_version: str) -> str:
    """The version id reported for an emulated pending value (never a version of NAME itself)."""
    return f"pending-{companion_version}"


def for_store(store: StoreSeam) -> Native | Companion:
    """The rotation steps of ``store``; ``NotSupportedError`` where it keeps no stages."""
    how = support(store.driver, store.capabilities.create_only)
    if how == "native":
        return Native(store)
    if how == "emulated":
        return Companion(store)
    raise NotSupportedError(
        "this backend keeps no rotation stages (no staging labels, no history with an atomic create-only write)",
        backend=store.backend,
    )


def pack(value: Value, token: str) -> Value:
    """A companion's content: the pending value (its shape kept exactly) and the rotation token."""
    raw = value.raw
    if isinstance(raw, bytes):
        data = base64.b64encode(raw).decode("ascii")
    elif isinstance(raw, str):
        data = raw
    else:
        data = json.dumps({k: v if isinstance(v, str) else {"base64": base64.b64encode(v).decode("ascii")}
                           if isinstance(v, bytes) else {"json": v} for k, v in raw.items()})
    return Value.of({"token": token, "kind": value.kind.value, "data": data})


def unpack(fields: dict[str, str] | object) -> Value:
    """Invert ``pack``."""
    assert isinstance(fields, dict)
    kind = Kind(fields["kind"])
    data = fields["data"]
    if kind is Kind.BYTES:
        return Value(Kind.BYTES, base64.b64decode(data))
    if kind is Kind.TEXT:
        return Value(Kind.TEXT, data)
    items = {}
    for key, item in json.loads(data).items():
        if isinstance(item, dict) and "base64" in item:
            items[key] = base64.b64decode(item["base64"])
        else:
            items[key] = item["json"] if isinstance(item, dict) and "json" in item else item
    return Value(Kind.FIELDS, items)
