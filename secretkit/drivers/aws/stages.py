"""AWS staging labels as secretkit's atomic primitives: compare-and-set and rotation stages.

Two facts of UpdateSecretVersionStage carry everything here: it refuses to take a label from a
version not named in ``RemoveFromVersionId`` (so one of several racing movers wins), and moving
``AWSCURRENT`` moves ``AWSPREVIOUS`` along. PutSecretValue, in contrast, silently takes the
labels it is given from wherever they are, so a new version is first written under a private
label (``secretkit-write-<id>``) that only its writer knows, then the real label is moved to it
with UpdateSecretVersionStage, and the private label is dropped. The functions take the boto3
client and an AWS ``SecretId`` (a name, or an ARN as rotation events carry it).
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions as bx

from secretkit.drivers.aws.codec import WRITE_LABEL_PREFIX, is_version_id
from secretkit.drivers.aws.errors import code_of, is_gone
from secretkit.drivers.base import ConflictError, NotFoundError, version_conflict

Labels = dict[str, tuple[str, ...]]


def labels(client: Any, secret_id: str) -> Labels:
    """Version id → its labels (DescribeSecret; no value is read). ``NotFoundError`` while the
    secret is scheduled for deletion, as for every read."""
    description = client.describe_secret(SecretId=secret_id)
    if description.get("DeletedDate"):
        raise NotFoundError("secret is scheduled for deletion")
    return {str(v): tuple(ls) for v, ls in (description.get("VersionIdsToStages") or {}).items()}


def holder(found: Labels, label: str) -> str | None:
    """The version that holds ``label``, if any."""
    return next((v for v, ls in found.items() if label in ls), None)


def finished(version_labels: tuple[str, ...]) -> bool:
    """A version holding AWSPENDING that is, or was, current: a finished rotation's leftover
    (AWS's own rotation functions leave AWSPENDING on the new current version, and a later put
    makes that version AWSPREVIOUS), never a rotation in progress."""
    return "AWSCURRENT" in version_labels or "AWSPREVIOUS" in version_labels


def current_or_none(client: Any, secret_id: str) -> str | None:
    try:
        description = client.describe_secret(SecretId=secret_id)
    except bx.ClientError as exc:
        if code_of(exc) == "ResourceNotFoundException":
            return None
        raise
    for version_id, version_labels in (description.get("VersionIdsToStages") or {}).items():
        if "AWSCURRENT" in version_labels:
            return str(version_id)
    return None


def drop_label(client: Any, secret_id: str, label: str, version_id: str) -> None:
    """Remove ``label`` from ``version_id``; a no-op when it is not there (a re-run)."""
    try:
        client.update_secret_version_stage(SecretId=secret_id, VersionStage=label, RemoveFromVersionId=version_id)
    except bx.ClientError as exc:
        if code_of(exc) != "InvalidParameterException":
            raise


# -- compare-and-set -------------------------------------------------------------------


def compare_and_set(client: Any, secret_id: str, member: dict[str, Any], token: str, if_version: str) -> None:
    """Add version ``token`` under a private label, then move AWSCURRENT to it only if AWSCURRENT
    is still on ``if_version`` (atomic on the server). A losing version never becomes current:
    it is left without labels (AWS calls it deprecated). ``ConflictError`` when it loses."""
    if not is_version_id(if_version):
        raise version_conflict(if_version)
    label = WRITE_LABEL_PREFIX + token
    try:
        client.put_secret_value(SecretId=secret_id, ClientRequestToken=token, VersionStages=[label], **member)
    except bx.ClientError as exc:
        if is_gone(exc):
            raise version_conflict(if_version) from exc
        raise
    try:
        client.update_secret_version_stage(
            SecretId=secret_id, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=if_version
        )
        current: str | None = token
    except bx.ClientError as exc:
        if code_of(exc) not in ("InvalidParameterException", "ResourceNotFoundException", "InvalidRequestException"):
            raise  # transient: the store retries, and the check below settles a landed move
        # A retry whose first attempt already moved AWSCURRENT has won too.
        current = current_or_none(client, secret_id)
    drop_label(client, secret_id, label, token)
    if current != token:
        raise version_conflict(if_version, current)


# -- rotation stages -------------------------------------------------------------------


def write_pending(
    client: Any, secret_id: str, member: dict[str, Any], version_id: str, *, adopt: bool
) -> tuple[str, tuple[str, ...]]:
    """Add version ``version_id`` labelled AWSPENDING, AWSCURRENT untouched; returns the pending
    version and its labels. A re-run returns its own version as it is; another rotation's
    pending is returned when ``adopt``, else ``ConflictError``; one concurrent rotator wins."""
    found = labels(client, secret_id)
    own = found.get(version_id)
    if own is not None and any(not label.startswith(WRITE_LABEL_PREFIX) for label in own):
        return version_id, own  # a re-run: this token's version is already staged
    pending = holder(found, "AWSPENDING")
    if pending is not None and not finished(found[pending]):
        if adopt:
            return pending, found[pending]
        raise ConflictError(f"another rotation is in progress (pending version {pending})")
    private = WRITE_LABEL_PREFIX + version_id
    if own is None:
        client.put_secret_value(SecretId=secret_id, ClientRequestToken=version_id, VersionStages=[private], **member)
    # AWSPENDING left behind by a finished rotation is named, so it may move.
    move: dict[str, Any] = {"RemoveFromVersionId": pending} if pending is not None else {}
    try:
        client.update_secret_version_stage(SecretId=secret_id, VersionStage="AWSPENDING", MoveToVersionId=version_id,
                                           **move)
    except bx.ClientError as exc:
        if code_of(exc) != "InvalidParameterException":
            raise
        drop_label(client, secret_id, private, version_id)
        raise ConflictError("another rotation took the pending stage first") from exc
    drop_label(client, secret_id, private, version_id)
    return version_id, ("AWSPENDING",)


def promote(client: Any, secret_id: str, version: str, *, if_current: str) -> None:
    """Move AWSCURRENT to ``version`` only if it is still on ``if_current`` (AWSPREVIOUS follows),
    then drop AWSPENDING; a no-op when already done. ``ConflictError`` if current moved."""
    if "AWSCURRENT" not in labels(client, secret_id).get(version, ()):
        try:
            client.update_secret_version_stage(
                SecretId=secret_id, VersionStage="AWSCURRENT", MoveToVersionId=version, RemoveFromVersionId=if_current
            )
        except bx.ClientError as exc:
            if code_of(exc) != "InvalidParameterException":
                raise
            if "AWSCURRENT" not in labels(client, secret_id).get(version, ()):  # not a lost response of ours
                raise ConflictError(f"current version is no longer {if_current!r}") from exc
    unstage(client, secret_id, version)


def unstage(client: Any, secret_id: str, version: str) -> None:
    """Remove AWSPENDING (and a leftover private label) from ``version``; the version stays
    (AWS has no call to delete one version)."""
    drop_label(client, secret_id, "AWSPENDING", version)
    drop_label(client, secret_id, WRITE_LABEL_PREFIX + version, version)
