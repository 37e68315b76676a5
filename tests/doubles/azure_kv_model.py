"""The vault behind the Azure Key Vault double (``azure_kv``): secrets data-plane semantics only.

No HTTP here: ``azure_kv`` parses requests, checks the token and api-version, and calls one
method per operation; every method returns the JSON document the service answers with, or
raises ``KvError`` carrying Key Vault's status, error code, message and inner error code.

Modelled (backends.md §11, the SDK's generated models in azure/keyvault/secrets/_generated):

* Names: 1-127 of ``[0-9A-Za-z-]`` (else 400 BadParameter), **case-insensitive** like every
  Key Vault object name: ``Db`` and ``db`` are one secret; ids keep the case the secret was
  first created with **[unverified: which spelling the service echoes]**.
* Versions: 32 lowercase hex ids, never reused; ``attributes`` with ``enabled``, ``nbf``,
  ``exp``, ``created``, ``updated`` (unix seconds, from ``clock``), ``recoveryLevel`` and
  ``recoverableDays``; ``contentType`` and ``tags`` per version (a PUT never inherits them).
  ``nbf``/``exp`` are stored, not enforced: the service serves a get outside that window
  (about-secrets, "Date-time controlled operations").
* A disabled version (or a latest that is disabled) is 403 Forbidden / SecretDisabled on
  GET; it is listed, and PATCH can enable it again.
* Soft-delete (``Recoverable+Purgeable``, 90 days, by default): DELETE moves the secret to the
  deleted collection (DeletedSecretBundle with ``recoveryId``, ``deletedDate``,
  ``scheduledPurgeDate``); it shows there after ``delete_delay`` seconds (404 until then, which
  is what the SDK's delete poller waits out); a PUT on its name is 409
  ObjectIsDeletedButRecoverable; recover brings every version back (404 on GET and 409
  ObjectIsBeingRecovered on PUT for ``recover_delay`` seconds); purge removes it for good
  (403 when the recovery level has no ``Purgeable``, i.e. purge protection).
  ``soft_delete=False`` models an old vault: DELETE is final and answers without ``recoveryId``.
* Lists: ``maxresults`` 1-25 (default 25), ``nextLink`` carrying an opaque ``$skiptoken``
  (the name or version to continue after, so pages never repeat or skip an item that was
  there throughout), ``nextLink: null`` on the last page. Secrets are listed by name
  (case-insensitive); versions by version id, i.e. in no useful order, because the service
  documents none **[unverified: the service's order]**: a reader wanting "previous" must sort
  by ``created`` itself.
* Limits: value at most 25 KiB of UTF-8, ``contentType`` at most 255 characters, at most 15
  tags, tag names 512 and values 256 characters **[unverified: the exact error wording of
  these limits]**.

Not modelled: certificate-backed secrets (``kid``, ``managed``), backup/restore, the
automatic purge at ``scheduledPurgeDate``, access policies/RBAC.
"""

from __future__ import annotations

import base64
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
VERSION = re.compile(r"[0-9a-fA-F]{32}")
MAX_VALUE_BYTES = 25 * 1024
MAX_CONTENT_TYPE = 255
MAX_TAGS = 15
MAX_TAG_NAME, MAX_TAG_VALUE = 512, 256
PAGE_MAX = 25
RECOVERABLE_DAYS = 90
_NOT_FOUND_HELP = (" was not found in this key vault. If you recently deleted this secret you may be able to recover it "
                   "using the correct recovery command. For help resolving this issue, please see "
                   "https://go.microsoft.com/fwlink/?linkid=2125182")


class KvError(Exception):
    """An error answer: ``{"error": {"code", "message", "innererror": {"code"}}}``."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.inner = status, code, message, inner
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return {"error": error}


def bad_parameter(message: str) -> KvError:
    return KvError(400, "BadParameter", message)


def not_found(name: str, version: str | None = None) -> KvError:
    what = f"{name}/{version}" if version else name
    return KvError(404, "SecretNotFound", f"A secret with (name/id) {what}{_NOT_FOUND_HELP}")


def deleted_not_found(name: str) -> KvError:
    # [unverified wording] the code is the same SecretNotFound as for live secrets
    return KvError(404, "SecretNotFound", f"Deleted Secret not found: {name}")


@dataclass
class Version:
    id: str
    value: str
    content_type: str | None
    tags: dict[str, str] | None
    enabled: bool
    nbf: int | None
    exp: int | None
    created: int
    updated: int
    seq: int  # creation order, finer than ``created``'s whole seconds


@dataclass
class Secret:
    name: str  # as first created
    versions: dict[str, Version] = field(default_factory=dict)
    latest: str = ""
    deleted_date: int | None = None
    visible_at: float = 0.0  # deleted: listed from then on; recovered: readable from then on

    def current(self) -> Version:
        return self.versions[self.latest]


class VaultModel:
    """Secrets of one vault. Thread-safe; ``base_url`` (``https://host:port``) is passed per
    call because ids name the vault the way the client addressed it."""

    def __init__(self, soft_delete: bool = True, recovery_level: str = "Recoverable+Purgeable",
                 clock: Callable[[], float] = time.time) -> None:
        self.soft_delete = soft_delete
        self.recovery_level = recovery_level if soft_delete else "Purgeable"
        #: unix time for ``created``/``updated``; whole seconds on the wire as in the service, so
        #: versions made within one second tie: a test needing an order sets a clock of its own
        self.clock = self._clock = clock
        self.delete_delay = 0.0
        self.recover_delay = 0.0
        self._lock = threading.RLock()
        self._live: dict[str, Secret] = {}
        self._deleted: dict[str, Secret] = {}
        self._seq = 0

    def reset(self) -> None:
        with self._lock:
            self._live.clear()
            self._deleted.clear()
            self.delete_delay = self.recover_delay = 0.0
            self.clock = self._clock

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def check_name(name: str) -> str:
        if not NAME.fullmatch(name):
            raise bad_parameter(f"The request URI contains an invalid name: {name}")
        return name.lower()

    def _now(self) -> int:
        return int(self.clock())

    def _live_secret(self, name: str) -> Secret:
        key = self.check_name(name)
        secret = self._live.get(key)
        if secret is None or secret.visible_at > time.monotonic():
            raise not_found(name)
        return secret

    def _version(self, name: str, version: str) -> tuple[Secret, Version]:
        secret = self._live_secret(name)
        if not version:
            return secret, secret.current()
        found = secret.versions.get(version.lower()) if VERSION.fullmatch(version) else None
        if found is None:
            raise not_found(name, version)
        return secret, found

    def _attributes(self, v: Version) -> dict[str, Any]:
        attrs: dict[str, Any] = {"enabled": v.enabled}
        if v.nbf is not None:
            attrs["nbf"] = v.nbf
        if v.exp is not None:
            attrs["exp"] = v.exp
        attrs.update(created=v.created, updated=v.updated, recoveryLevel=self.recovery_level)
        if self.soft_delete:
            attrs["recoverableDays"] = RECOVERABLE_DAYS
        return attrs

    def _bundle(self, base: str, secret: Secret, v: Version, value: bool, versioned: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if value:
            doc["value"] = v.value
        doc["id"] = f"{base}/secrets/{secret.name}" + (f"/{v.id}" if versioned else "")
        if v.content_type is not None:
            doc["contentType"] = v.content_type
        doc["attributes"] = self._attributes(v)
        if v.tags:
            doc["tags"] = dict(v.tags)
        return doc

    def _deleted_doc(self, base: str, secret: Secret, versioned: bool) -> dict[str, Any]:
        doc = self._bundle(base, secret, secret.current(), value=False, versioned=versioned)
        if self.soft_delete:
            assert secret.deleted_date is not None
            doc["recoveryId"] = f"{base}/deletedsecrets/{secret.name}"
            doc["deletedDate"] = secret.deleted_date
            doc["scheduledPurgeDate"] = secret.deleted_date + RECOVERABLE_DAYS * 86400
        return doc

    @staticmethod
    def _tags(raw: Any) -> dict[str, str] | None:
        if raw is None:
            return None
        if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
            raise bad_parameter("Tags must be a map of strings to strings.")
        if len(raw) > MAX_TAGS:
            raise bad_parameter(f"The number of tags exceeds the maximum of {MAX_TAGS}.")
        for k, v in raw.items():
            if not k or len(k) > MAX_TAG_NAME or len(v) > MAX_TAG_VALUE:
                raise bad_parameter(f"Tag names may have at most {MAX_TAG_NAME} characters and tag values "
                                    f"at most {MAX_TAG_VALUE}.")
        return dict(raw)

    @staticmethod
    def _content_type(raw: Any) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str) or len(raw) > MAX_CONTENT_TYPE:
            raise bad_parameter(f"The content type must be a string of at most {MAX_CONTENT_TYPE} characters.")
        return raw

    @staticmethod
    def _attrs_in(raw: Any) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise bad_parameter("Property attributes must be an object.")
        out: dict[str, Any] = {}
        if raw.get("enabled") is not None:
            if not isinstance(raw["enabled"], bool):
                raise bad_parameter("Property attributes.enabled must be a boolean.")
            out["enabled"] = raw["enabled"]
        for key in ("nbf", "exp"):
            if key in raw:  # null clears on PATCH
                if raw[key] is not None and (isinstance(raw[key], bool) or not isinstance(raw[key], (int, float))):
                    raise bad_parameter(f"Property attributes.{key} must be a unix time in seconds.")
                out[key] = None if raw[key] is None else int(raw[key])
        return out

    def _page(self, base: str, path: str, api_version: str, items: list[tuple[str, dict[str, Any]]],
              maxresults: str | None, skiptoken: str | None) -> dict[str, Any]:
        """One page of ``items`` (sorted (key, doc) pairs) after the key in ``skiptoken``."""
        size = PAGE_MAX
        if maxresults is not None:
            if not maxresults.isdigit() or not 1 <= int(maxresults) <= PAGE_MAX:
                raise bad_parameter(f"Invalid value for maxresults: {maxresults}. It must be between 1 and {PAGE_MAX}.")
            size = int(maxresults)
        after = ""
        if skiptoken:
            try:
                after = base64.urlsafe_b64decode(skiptoken + "=" * (-len(skiptoken) % 4)).decode()
            except (ValueError, UnicodeDecodeError):
                raise bad_parameter("The $skiptoken is invalid.") from None
        rest = [doc for key, doc in items if key > after]
        page, more = rest[:size], len(rest) > size
        next_link = None
        if more:
            last = [key for key, _ in items if key > after][size - 1]
            token = base64.urlsafe_b64encode(last.encode()).decode().rstrip("=")
            next_link = f"{base}{path}?api-version={api_version}&$skiptoken={token}&maxresults={size}"
        return {"value": page, "nextLink": next_link}

    # -- operations ------------------------------------------------------------------------

    def set_secret(self, base: str, name: str, body: Any) -> dict[str, Any]:
        key = self.check_name(name)
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            raise bad_parameter("Property value is required and must be a string.")
        if len(body["value"].encode()) > MAX_VALUE_BYTES:
            raise bad_parameter(f"The secret value exceeds the maximum allowed size of {MAX_VALUE_BYTES} bytes.")
        content_type = self._content_type(body.get("contentType"))
        tags = self._tags(body.get("tags"))
        attrs = self._attrs_in(body.get("attributes"))
        with self._lock:
            deleted = self._deleted.get(key)
            if deleted is not None:
                raise KvError(409, "Conflict", f"Secret {name} is currently in a deleted but recoverable state, "
                              "and its name cannot be reused; in this state, the secret can only be recovered or "
                              "purged.", "ObjectIsDeletedButRecoverable")
            secret = self._live.get(key)
            if secret is not None and secret.visible_at > time.monotonic():
                raise KvError(409, "Conflict", f"Secret {name} is currently being recovered and cannot be "
                              "re-created; retry later.", "ObjectIsBeingRecovered")
            if secret is None:
                secret = self._live[key] = Secret(name)
            now, self._seq = self._now(), self._seq + 1
            v = Version(uuid.uuid4().hex, body["value"], content_type, tags, attrs.get("enabled", True),
                        attrs.get("nbf"), attrs.get("exp"), now, now, self._seq)
            secret.versions[v.id] = v
            secret.latest = v.id
            return self._bundle(base, secret, v, value=True)

    def get_secret(self, base: str, name: str, version: str) -> dict[str, Any]:
        with self._lock:
            secret, v = self._version(name, version)
            if not v.enabled:
                raise KvError(403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")
            return self._bundle(base, secret, v, value=True)

    def update_secret(self, base: str, name: str, version: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_parameter("The request body must be a JSON object.")
        content_type = self._content_type(body.get("contentType"))
        tags = self._tags(body.get("tags"))
        attrs = self._attrs_in(body.get("attributes"))
        with self._lock:
            secret, v = self._version(name, version)
            if "contentType" in body:
                v.content_type = content_type
            if "tags" in body:
                v.tags = tags
            v.enabled = attrs.get("enabled", v.enabled)
            v.nbf = attrs["nbf"] if "nbf" in attrs else v.nbf
            v.exp = attrs["exp"] if "exp" in attrs else v.exp
            v.updated = self._now()
            return self._bundle(base, secret, v, value=False)

    def list_secrets(self, base: str, api_version: str, maxresults: str | None, skiptoken: str | None) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            items = sorted((key, self._bundle(base, s, s.current(), value=False, versioned=False))
                           for key, s in self._live.items() if s.visible_at <= now)
            return self._page(base, "/secrets", api_version, items, maxresults, skiptoken)

    def list_versions(self, base: str, name: str, api_version: str, maxresults: str | None,
                      skiptoken: str | None) -> dict[str, Any]:
        with self._lock:
            secret = self._live_secret(name)
            items = sorted((vid, self._bundle(base, secret, v, value=False)) for vid, v in secret.versions.items())
            return self._page(base, f"/secrets/{secret.name}/versions", api_version, items, maxresults, skiptoken)

    def delete_secret(self, base: str, name: str) -> dict[str, Any]:
        with self._lock:
            secret = self._live_secret(name)
            key = name.lower()
            del self._live[key]
            if not self.soft_delete:
                return self._bundle(base, secret, secret.current(), value=False)
            secret.deleted_date = self._now()
            secret.visible_at = time.monotonic() + self.delete_delay
            self._deleted[key] = secret
            return self._deleted_doc(base, secret, versioned=True)

    def _deleted_secret(self, name: str) -> Secret:
        secret = self._deleted.get(self.check_name(name))
        if secret is None or secret.visible_at > time.monotonic():
            raise deleted_not_found(name)
        return secret

    def get_deleted(self, base: str, name: str) -> dict[str, Any]:
        with self._lock:
            return self._deleted_doc(base, self._deleted_secret(name), versioned=True)

    def list_deleted(self, base: str, api_version: str, maxresults: str | None, skiptoken: str | None) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            items = sorted((key, self._deleted_doc(base, s, versioned=False))
                           for key, s in self._deleted.items() if s.visible_at <= now)
            return self._page(base, "/deletedsecrets", api_version, items, maxresults, skiptoken)

    def recover(self, base: str, name: str) -> dict[str, Any]:
        with self._lock:
            secret = self._deleted_secret(name)
            key = name.lower()
            del self._deleted[key]
            secret.deleted_date = None
            secret.visible_at = time.monotonic() + self.recover_delay
            self._live[key] = secret
            return self._bundle(base, secret, secret.current(), value=False)

    def purge(self, name: str) -> None:
        with self._lock:
            self._deleted_secret(name)
            if "Purgeable" not in self.recovery_level:
                raise KvError(403, "Forbidden", f"Operation \"purge\" is not allowed because purge protection is "
                              f"enabled for this vault. Key Vault service will automatically purge it after the "
                              f"retention period has passed. Secret: {name}", "ForbiddenByPolicy")
            del self._deleted[name.lower()]

    # -- test hooks --------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Live secret names (as created), sorted; for assertions."""
        with self._lock:
            return sorted(s.name for s in self._live.values())

    def versions(self, name: str) -> list[Version]:
        """A secret's versions oldest first (by creation order), live or deleted; for assertions."""
        with self._lock:
            secret = self._live.get(name.lower()) or self._deleted.get(name.lower())
            if secret is None:
                return []
            return sorted(secret.versions.values(), key=lambda v: v.seq)

    def deleted_names(self) -> Iterable[str]:
        with self._lock:
            return sorted(s.name for s in self._deleted.values())
