"""Rotation stages on Kubernetes, which keeps no history: companion Secrets the driver owns.

Values never sit where readers of a Secret look: not in its annotations (``kubectl describe``
prints them) and not in extra data keys (pods mount every key as a file, ``envFrom`` imports
every key). So:

* ``pending`` lives in ``<object>.secretkit-pending`` while a rotation runs, in the store's
  namespace or in ``pending_namespace`` (then named ``<namespace>.<object>.secretkit-pending``),
  so RBAC can give the rotator, and nobody else, access to it. It is made with a create, so
  exactly one rotator holds it (409 AlreadyExists for the others), and carries the rotation's
  token in an annotation.
* ``previous`` lives in ``<object>.secretkit-previous`` in the Secret's namespace: at
  promotion the old data is written there first, then the Secret's data is replaced with a
  ``resourceVersion`` precondition (the compare-and-set on ``if_current``), then the pending
  companion is deleted. Each step can be repeated, so a crashed rotation resumes.
* The previous companion records the token and the pending version of the rotation that
  filled it (annotations without values), which is how a re-run learns that its rotation
  already finished: the Secret itself keeps no trace of a rotation, since ``kubectl describe``
  shows its annotations to everyone (releases before this one annotated the Secret; those
  annotations are still honoured by a re-run, and removed at the next promotion).

Companions carry the label ``secretkit.io/stage`` (``list()`` never shows them), the
annotation ``secretkit.io/companion-of: <namespace>/<object>`` and the Secret's uid; in the
Secret's own namespace they also have an ownerReference to it, so Kubernetes' garbage
collector removes them with it. A plain ``put`` leaves ``previous`` alone: only promotion
moves it.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from secretkit.drivers.base import ConflictError, InvalidArgumentError, NotFoundError, Record, Stage, VersionInfo
from secretkit.drivers.kubernetes.api import SecretsApi
from secretkit.drivers.kubernetes.codec import (
    DEFAULT_VALUE_KEY,
    annotations_of,
    companion_name,
    decode_value,
    labels_of,
    metadata_of,
    resource_version,
)
from secretkit.drivers.kubernetes.errors import is_status

#: Label on companions (``pending`` or ``previous``); objects with it are never listed.
STAGE_LABEL = "secretkit.io/stage"
#: Annotation on companions: ``<namespace>/<object>`` of the Secret they belong to.
COMPANION_OF = "secretkit.io/companion-of"
#: Annotation on companions: the uid of that Secret (a later Secret of the same name is another one).
OWNER_UID = "secretkit.io/owner-uid"
#: Annotation on the pending companion (the rotation holding it) and on the previous companion
#: (the rotation that promoted over it).
TOKEN = "secretkit.io/rotation-token"
#: Annotation on the previous companion: the pending version that rotation promoted.
PROMOTED = "secretkit.io/promoted-version"
#: Set to None in the promotion's patch: the annotations older releases left on the Secret.
_UNSTAMP = {TOKEN: None, PROMOTED: None}
#: Annotation on the previous companion: the resourceVersion its value had as current.
PREVIOUS_VERSION = "secretkit.io/previous-version"

_CURRENT = frozenset({Stage.CURRENT})


def _uid(obj: dict[str, Any]) -> str:
    return str(metadata_of(obj).get("uid") or "")


class Companion:
    """The ``NativeStages`` steps of one store (see the module docstring)."""

    def __init__(self, api: SecretsApi, pending_namespace: str | None, value_key: str = DEFAULT_VALUE_KEY) -> None:
        self.api = api
        self.pending_namespace = pending_namespace or api.namespace
        self.value_key = value_key  # a companion holds a value as the Secret itself does

    def where(self, obj: str, stage: str) -> tuple[str, str]:
        """(namespace, name) of ``obj``'s companion for ``stage``."""
        if stage == Stage.PENDING and self.pending_namespace != self.api.namespace:
            return self.pending_namespace, companion_name(obj, stage, other_namespace=self.api.namespace)
        return self.api.namespace, companion_name(obj, stage)

    # -- reads -------------------------------------------------------------------------

    def find(self, obj: str, stage: str) -> dict[str, Any] | None:
        """The companion, or None (also when something else holds its name)."""
        namespace, name = self.where(obj, stage)
        doc = self.api.find(name, namespace)
        return doc if doc is not None and self._belongs(doc, obj, stage) else None

    def read(self, obj: str, stage: str) -> Record:
        doc = self.find(obj, stage)
        if doc is None:
            raise NotFoundError(f"secret has no {stage} value")
        version = resource_version(doc)
        if stage == Stage.PREVIOUS:
            version = annotations_of(doc).get(PREVIOUS_VERSION) or version
        return Record(decode_value(doc, self.value_key), version, None, frozenset({stage}))

    # -- rotation steps ----------------------------------------------------------------

    def write_pending(self, name: str, obj: str, data: dict[str, str], *, token: str, adopt: bool) -> VersionInfo:
        secret = self.api.get(obj)  # 404: the secret must exist
        if self._finished(obj, secret, TOKEN, token):  # this rotation was promoted already
            self._drop_pending(obj, token)
            return VersionInfo(name, resource_version(secret), None, _CURRENT)
        if secret.get("immutable"):
            raise InvalidArgumentError(
                "the Secret is immutable: Kubernetes rejects any change to its data, so it cannot be rotated; "
                "delete it and put it again"
            )
        namespace, companion = self.where(obj, Stage.PENDING)
        body = self._body(obj, secret, Stage.PENDING, data, {TOKEN: token})
        for _ in range(3):
            try:
                made = self.api.create(body, namespace)
                return VersionInfo(name, resource_version(made), None, frozenset({Stage.PENDING}))
            except ApiException as exc:
                if not is_status(exc, 409, "AlreadyExists"):
                    raise
            found = self.api.find(companion, namespace)
            if found is None:
                continue  # discarded in between: try to create it again
            if not self._belongs(found, obj, Stage.PENDING):
                raise ConflictError(
                    f"Secret {companion!r} in namespace {namespace!r}, where rotation keeps the pending value, "
                    "exists and was not made by secretkit"
                )
            if annotations_of(found).get(OWNER_UID) != _uid(secret):  # left by an earlier Secret of this name
                self.api.delete_if_there(companion, namespace, resource_version=resource_version(found))
                continue
            if annotations_of(found).get(TOKEN) == token or adopt:
                return VersionInfo(name, resource_version(found), None, frozenset({Stage.PENDING}))
            raise ConflictError(f"another rotation is in progress (pending version {resource_version(found)})")
        raise ConflictError("the pending value kept changing hands while this rotation started; rotate again")

    def promote(self, name: str, obj: str, version: str, *, if_current: str, stamp: dict[str, Any]) -> VersionInfo:
        """Previous ← current data, then current ← pending data if current is ``if_current``,
        then drop pending. ``stamp``: the labels and annotations of any secretkit write."""
        secret = self.api.get(obj)
        namespace, companion = self.where(obj, Stage.PENDING)
        if self._finished(obj, secret, PROMOTED, version):  # done before (a retry or a re-run)
            self.api.delete_if_there(companion, namespace, resource_version=version)
            return VersionInfo(name, resource_version(secret), None, _CURRENT)
        pending = self.find(obj, Stage.PENDING)
        if pending is None or resource_version(pending) != version:
            raise ConflictError(f"pending version {version!r} is gone: discarded, or replaced by another rotation")
        if resource_version(secret) != if_current:
            raise ConflictError(f"current version is {resource_version(secret)!r}, not {if_current!r}")
        # First keep the old value. Should the compare-and-set below then lose a race with a
        # writer that came in since the check above, previous holds what was current a moment
        # ago, which is still a value its readers used.
        self._keep_previous(obj, secret, {TOKEN: annotations_of(pending).get(TOKEN, ""), PROMOTED: version})
        meta = {
            "resourceVersion": if_current,
            "labels": dict(stamp.get("labels") or {}),
            "annotations": {**(stamp.get("annotations") or {}), **_UNSTAMP},
        }
        done = self.api.patch(obj, {"metadata": meta, "data": {"$patch": "replace", **(pending.get("data") or {})}})
        self.api.delete_if_there(companion, namespace, resource_version=version)
        return VersionInfo(name, resource_version(done), None, _CURRENT)

    def discard(self, obj: str, version: str) -> None:
        namespace, companion = self.where(obj, Stage.PENDING)
        self.api.delete_if_there(companion, namespace, resource_version=version)

    def forget(self, obj: str) -> None:
        """Delete both companions (with the Secret). One this identity may not delete is left:
        in the Secret's namespace the garbage collector removes it with its owner, and a
        pending companion elsewhere is seen to be stale (by the uid it records) and replaced
        by the next rotation of a Secret of that name."""
        for stage in (Stage.PREVIOUS, Stage.PENDING):
            namespace, companion = self.where(obj, stage)
            try:
                self.api.delete_if_there(companion, namespace)
            except ApiException as exc:
                if exc.status != 403:
                    raise

    # -- helpers -----------------------------------------------------------------------

    def _belongs(self, doc: dict[str, Any], obj: str, stage: str) -> bool:
        return (labels_of(doc).get(STAGE_LABEL) == stage
                and annotations_of(doc).get(COMPANION_OF) == f"{self.api.namespace}/{obj}")

    def _body(self, obj: str, owner: dict[str, Any], stage: str, data: dict[str, str],
              extra: dict[str, str]) -> dict[str, Any]:
        namespace, name = self.where(obj, stage)
        meta: dict[str, Any] = {
            "name": name,
            "labels": {STAGE_LABEL: stage},
            "annotations": {COMPANION_OF: f"{self.api.namespace}/{obj}", OWNER_UID: _uid(owner), **extra},
        }
        if namespace == self.api.namespace:  # owner references never cross namespaces
            meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Secret", "name": obj, "uid": _uid(owner)}]
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": data}

    def _finished(self, obj: str, secret: dict[str, Any], key: str, expected: str) -> bool:
        """Whether the rotation whose ``TOKEN`` (or ``PROMOTED`` pending version) is ``expected``
        was promoted into ``secret``. The previous companion it filled records it; the promotion
        landed if the Secret has moved on from the version kept there, and (while the pending
        companion is still there) holds the pending data: a crash between keeping previous and
        replacing the Secret, then someone else's put, is no promotion."""
        if annotations_of(secret).get(key) == expected:  # recorded on the Secret by an older release
            return True
        previous = self.find(obj, Stage.PREVIOUS)
        if previous is None or annotations_of(previous).get(OWNER_UID) != _uid(secret):
            return False
        notes = annotations_of(previous)
        if notes.get(key) != expected or notes.get(PREVIOUS_VERSION) == resource_version(secret):
            return False
        pending = self.find(obj, Stage.PENDING)
        if pending is None or annotations_of(pending).get(TOKEN) != notes.get(TOKEN):
            return True
        return (pending.get("data") or {}) == (secret.get("data") or {})

    def _keep_previous(self, obj: str, secret: dict[str, Any], rotation: dict[str, str]) -> None:
        """Write ``secret``'s data to the previous companion, with ``rotation`` (its token and
        pending version) recorded for ``_finished``."""
        namespace, name = self.where(obj, Stage.PREVIOUS)
        body = self._body(obj, secret, Stage.PREVIOUS, dict(secret.get("data") or {}),
                          {PREVIOUS_VERSION: resource_version(secret), **rotation})
        existing = self.api.find(name, namespace)
        if existing is None:
            try:
                self.api.create(body, namespace)
            except ApiException as exc:
                if is_status(exc, 409):
                    raise ConflictError("another rotation is promoting this secret") from exc
                raise
            return
        if not self._belongs(existing, obj, Stage.PREVIOUS):
            raise ConflictError(
                f"Secret {name!r}, where rotation keeps the previous value, exists and was not made by secretkit"
            )
        body["metadata"]["resourceVersion"] = resource_version(existing)
        self.api.replace(name, body, namespace)

    def _drop_pending(self, obj: str, token: str) -> None:
        found = self.find(obj, Stage.PENDING)
        if found is not None and annotations_of(found).get(TOKEN) == token:
            namespace, companion = self.where(obj, Stage.PENDING)
            self.api.delete_if_there(companion, namespace, resource_version=resource_version(found))
