"""The aws-sm:// driver: each portable call as the Secrets Manager operations it becomes.

| portable                          | Secrets Manager                                                  |
|-----------------------------------|------------------------------------------------------------------|
| read(name[, version/stage])       | GetSecretValue(VersionStage=AWSCURRENT / VersionId / the label)   |
| read_many(names)                  | BatchGetSecretValue, 20 names a call                             |
| current_version(name)             | DescribeSecret (VersionIdsToStages)                              |
| versions(name)                    | ListSecretVersionIds(IncludeDeprecated)                          |
| list(prefix)                      | ListSecrets with a ``name`` prefix filter                         |
| write(...)                        | PutSecretValue(ClientRequestToken); CreateSecret when missing;   |
|                                   | RestoreSecret first if deleted and ``restore_deleted``           |
| write(create_only)                | CreateSecret                                                     |
| write(if_version)                 | ``stages.compare_and_set`` (UpdateSecretVersionStage)             |
| write_pending / promote / discard | ``stages`` (AWSPENDING / AWSCURRENT moves)                        |
| rotation_settings(name)           | DescribeSecret (RotationEnabled, RotationLambdaARN, OwningService)  |
| delete(name[, purge])             | DeleteSecret (recovery window / ForceDeleteWithoutRecovery)      |
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import botocore.exceptions as bx

from secretkit.drivers.aws import codec, common, stages
from secretkit.drivers.aws.codec import BACKEND
from secretkit.drivers.aws.errors import classify, classify_code, code_of, is_marked_for_deletion, message_of
from secretkit.drivers.aws.options import Options
from secretkit.drivers.base import (
    AlreadyExistsError,
    BatchReader,
    Capabilities,
    ChangeEvents,
    Classified,
    ConfigError,
    ConflictError,
    NativeStages,
    NotFoundError,
    Record,
    RotationSetting,
    RotationSettings,
    SdkClient,
    SecretError,
    Stage,
    host_of,
    StoreURL,
    UnavailableError,
    Value,
    ValueLimits,
    VersionInfo,
    VersionProbe,
    already_exists,
    error_for,
    redact_url,
    request_timeout,
    upsert,
    validate_options as validate,
)

BATCH_SIZE = 20
#: A deleted secret whose DeletedDate is less than this far ahead is being purged, not recoverable.
PURGE_MARGIN_SECONDS = 300.0


CAPABILITIES = Capabilities(
    remote=True,
    versions=True,
    compare_and_set=True,
    create_only=True,
    recoverable_delete=True,
    idempotent_put=True,
    max_value_bytes=codec.AWS_MAX_VALUE,
)


class AwsDriver:
    """Translates the driver calls to Secrets Manager operations; one boto3 client, thread-safe.

    Implements ``BatchReader``, ``VersionProbe``, ``NativeStages``, ``ValueLimits`` and
    ``SdkClient`` (``client``) besides the required ``Driver`` calls.
    """

    backend = BACKEND
    protocols = (BatchReader, VersionProbe, NativeStages, RotationSettings, ValueLimits, SdkClient, ChangeEvents)
    capabilities = CAPABILITIES
    names = codec.NAMES
    sdk_loggers = common.SDK_LOGGERS
    #: botocore logs request and response bodies with these members; the snake_case spellings
    #: are what Python wrappers of the API log (keyword arguments).
    sdk_value_keys = ("SecretString", "SecretBinary", "secret_string", "secret_binary")
    #: ``changes=sqs:QUEUE`` / ``changes=sns:TOPIC_ARN`` (EventBridge events; secretkit.changes.aws)
    change_sources = {"sqs": "secretkit.changes.aws:open_sqs", "sns": "secretkit.changes.aws:open_sns"}

    def __init__(
        self, client: Any, *, owns_client: bool, recovery_window_days: int | None = None,
        restore_deleted: bool = False, client_options: common.ClientOptions | None = None,
    ) -> None:
        self.client = client
        #: what the client was made from (None for a client the user passed): change sources use them too
        self.client_options = client_options
        self._owns_client = owns_client
        self._recovery_window = recovery_window_days
        self._restore_deleted = restore_deleted

    def check_value(self, name: str, value: Value) -> None:
        codec.check_value(value)

    def event_names(self, secret: str) -> tuple[str, ...]:
        return codec.names_of_secret_id(secret, self.client.meta.region_name)

    # -- reads -----------------------------------------------------------------------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        request: dict[str, Any] = {"SecretId": name}
        if version is not None:
            if not codec.is_version_id(version):
                raise NotFoundError(f"version {version!r} not found")
            request["VersionId"] = version
        else:
            # AWS reads AWSCURRENT by default anyway; naming it also reads the right version on
            # moto, whose default version lags behind UpdateSecretVersionStage (users test with it).
            request["VersionStage"] = codec.NATIVE_STAGE[stage or Stage.CURRENT]
        return codec.to_record(self.client.get_secret_value(**request))

    def read_many(self, names: Sequence[str]) -> dict[str, Record | SecretError]:
        """BatchGetSecretValue, 20 names a call; names that fail get their own error."""
        wanted = list(dict.fromkeys(names))
        out: dict[str, Record | SecretError] = {}
        for start in range(0, len(wanted), BATCH_SIZE):
            chunk = wanted[start : start + BATCH_SIZE]
            request: dict[str, Any] = {"SecretIdList": chunk}
            while True:
                response = self.client.batch_get_secret_value(**request)
                for item in response.get("SecretValues", []):
                    name = str(item.get("Name", ""))
                    if name in chunk:
                        try:
                            out[name] = codec.to_record(item)
                        except SecretError as exc:
                            out[name] = exc
                for failure in response.get("Errors", []):
                    name = str(failure.get("SecretId", ""))
                    if name in chunk and name not in out:
                        classified = classify_code(str(failure.get("ErrorCode", "")), str(failure.get("Message", "")))
                        out[name] = error_for(classified.code, classified.detail, name=name, backend=BACKEND)
                token = response.get("NextToken")
                if not token:
                    break
                request["NextToken"] = token
        return out

    def current_version(self, name: str) -> str:
        """The AWSCURRENT version id from DescribeSecret (no value is fetched)."""
        current = stages.holder(stages.labels(self.client, name), "AWSCURRENT")
        if current is None:
            raise NotFoundError("secret has no current version")
        return current

    def versions(self, name: str) -> list[VersionInfo]:
        entries: list[dict[str, Any]] = []
        request: dict[str, Any] = {"SecretId": name, "IncludeDeprecated": True}
        while True:
            response = self.client.list_secret_version_ids(**request)
            entries.extend(response.get("Versions", []))
            token = response.get("NextToken")
            if not token:
                break
            request["NextToken"] = token
        # Newest first by creation time; equal times (moto's are whole seconds) keep the reverse
        # of the listing order, which is creation order on both AWS and moto.
        entries.reverse()
        entries.sort(key=lambda e: codec.timestamp(e.get("CreatedDate")), reverse=True)
        return [
            VersionInfo(name, str(e["VersionId"]), common.as_datetime(e.get("CreatedDate")),
                        codec.stages(e.get("VersionStages")))
            for e in entries
        ]

    def list(self, prefix: str) -> list[str]:
        if not codec.could_be_name_prefix(prefix):
            return []
        request: dict[str, Any] = {}
        if prefix:  # ListSecrets' name filter is a case-sensitive prefix match
            request["Filters"] = [{"Key": "name", "Values": [prefix]}]
        found = []
        for page in self.client.get_paginator("list_secrets").paginate(**request):
            for entry in page.get("SecretList", []):
                name = str(entry.get("Name", ""))
                if not entry.get("DeletedDate") and name.startswith(prefix):
                    found.append(name)
        return found

    # -- writes ----------------------------------------------------------------------

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        member = codec.encode_value(value)
        if create_only:
            return self._create(name, member, token)
        if if_version is not None:
            stages.compare_and_set(self.client, name, member, token, if_version)
            return VersionInfo(name, token, None, codec.stages(["AWSCURRENT"]))
        return self._put(name, member, token)

    def _put(self, name: str, member: dict[str, Any], token: str) -> VersionInfo:
        """PutSecretValue; CreateSecret when there is no secret (another writer creating it
        between the two: our version is added to theirs)."""
        return upsert(
            lambda: self._add_version(name, member, token),
            lambda: self._create(name, member, token),
            missing=lambda exc: isinstance(exc, bx.ClientError) and code_of(exc) == "ResourceNotFoundException",
            exists=lambda exc: isinstance(exc, AlreadyExistsError),
        )

    def _add_version(self, name: str, member: dict[str, Any], token: str) -> VersionInfo:
        """PutSecretValue. A secret in its recovery window is someone's recoverable secret (its
        description, tags, KMS key, policy and versions): a put never destroys it, and restores
        it first only when the store was opened with ``restore_deleted``."""
        try:
            response = self.client.put_secret_value(SecretId=name, ClientRequestToken=token, **member)
        except bx.ClientError as exc:
            if not is_marked_for_deletion(code_of(exc), message_of(exc)):
                raise
            taken = self._why_taken(name, token)
            if isinstance(taken, VersionInfo):
                return taken
            if isinstance(taken, ConflictError) and self._restore_deleted:
                self.client.restore_secret(SecretId=name)
            elif not isinstance(taken, AlreadyExistsError):  # AlreadyExists: restored meanwhile
                raise taken from exc
            response = self.client.put_secret_value(SecretId=name, ClientRequestToken=token, **member)
        return VersionInfo(name, str(response["VersionId"]), None, codec.stages(response.get("VersionStages")))

    def _create(self, name: str, member: dict[str, Any], token: str) -> VersionInfo:
        """CreateSecret (atomic create-only). A name in its recovery window is a ``ConflictError``,
        even with ``restore_deleted``: restoring is not creating, and purging to free the name
        would destroy a recoverable secret."""
        try:
            response = self.client.create_secret(Name=name, ClientRequestToken=token, **member)
            return VersionInfo(name, str(response.get("VersionId", token)), None, codec.stages(["AWSCURRENT"]))
        except bx.ClientError as exc:
            code = code_of(exc)
            if code != "ResourceExistsException" and not is_marked_for_deletion(code, message_of(exc)):
                raise
            taken = self._why_taken(name, token)
        if isinstance(taken, VersionInfo):
            return taken
        raise taken

    def _why_taken(self, name: str, token: str) -> VersionInfo | SecretError:
        """Why a write found ``name`` taken (DescribeSecret): our own earlier attempt whose
        response was lost (its version, success), a live secret (``AlreadyExistsError``), one in
        its recovery window (``ConflictError``), or one being purged (``UnavailableError``:
        AWS frees the name asynchronously; the store retries the idempotent put)."""
        try:
            description = self.client.describe_secret(SecretId=name)
        except bx.ClientError as exc:
            if code_of(exc) == "ResourceNotFoundException":  # purged meanwhile: let the store retry
                return UnavailableError("secret of this name was being deleted; retry")
            raise
        found = (description.get("VersionIdsToStages") or {}).get(token)
        if found is not None:
            return VersionInfo(name, token, None, codec.stages(found))
        deleted = description.get("DeletedDate")
        if deleted is None:
            versions = description.get("VersionIdsToStages") or {}
            return already_exists(next((str(v) for v, labels in versions.items() if "AWSCURRENT" in labels), None))
        # DeletedDate is when the secret goes: days ahead in a recovery window (7-30), about now
        # after a force delete or at the window's end. The margin absorbs clock skew.
        if codec.timestamp(deleted) > time.time() + PURGE_MARGIN_SECONDS:
            return scheduled_for_deletion(name)
        return UnavailableError("the deleted secret of this name is still being purged; retry")

    def delete(self, name: str, *, purge: bool) -> None:
        if purge:
            # ForceDeleteWithoutRecovery reports success for a missing secret; ask first.
            self.client.describe_secret(SecretId=name)
            self.client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
            return
        request: dict[str, Any] = {"SecretId": name}
        if self._recovery_window is not None:
            request["RecoveryWindowInDays"] = self._recovery_window
        self.client.delete_secret(**request)

    # -- native stages (secretkit.stages drives them; the labels are AWS's own) -----------

    def write_pending(self, name: str, value: Value, *, token: str, adopt: bool) -> VersionInfo:
        version, found = stages.write_pending(
            self.client, name, codec.encode_value(value), codec.rotation_version_id(token), adopt=adopt
        )
        return VersionInfo(name, version, None, codec.stages(found))

    def promote(self, name: str, version: str, *, if_current: str) -> VersionInfo:
        stages.promote(self.client, name, version, if_current=if_current)
        return VersionInfo(name, version, None, codec.stages(["AWSCURRENT"]))

    def discard_pending(self, name: str, version: str) -> None:
        stages.unstage(self.client, name, version)

    def rotation_settings(self, name: str) -> RotationSetting:
        """Whether Secrets Manager rotates ``name`` itself: a rotation Lambda, or rotation
        managed by the service that owns the secret (RDS, Redshift, …)."""
        description = self.client.describe_secret(SecretId=name)
        if not description.get("RotationEnabled"):
            return RotationSetting()
        if description.get("RotationLambdaARN"):
            return RotationSetting(rotated_by=f"the rotation Lambda {description['RotationLambdaARN']}")
        owner = description.get("OwningService")
        return RotationSetting(rotated_by=f"{owner}'s managed rotation" if owner else "Secrets Manager's rotation")

    # -- errors, lifecycle -----------------------------------------------------------

    @property
    def server_address(self) -> str | None:
        """The host the SDK client talks to (telemetry's ``server.address``)."""
        return host_of(self.client.meta.endpoint_url)

    def classify(self, exc: BaseException) -> Classified | None:
        return classify(exc)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()


#: The driver classes this factory opens, by the title docs/capabilities.md gives them.
DRIVERS: dict[str, type] = {"aws-sm": AwsDriver}


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> AwsDriver:
    """Build the driver for ``aws-sm://?region=...``; ``client`` is a ready boto3 client."""
    if url.host or url.path.strip("/"):
        raise ConfigError("aws-sm:// takes no host or path; use aws-sm://?region=eu-west-1")
    opts = validate(Options, options, what="aws-sm store")
    if client is not None:
        return AwsDriver(client, owns_client=False, **driver_settings(opts))
    made = common.make_client("secretsmanager", opts, title="AWS Secrets Manager")
    return AwsDriver(made, owns_client=True, client_options=opts, **driver_settings(opts))


def driver_settings(options: Options) -> dict[str, Any]:
    """The options the driver itself reads (the rest configure the boto3 client)."""
    return {"recovery_window_days": options.recovery_window_days, "restore_deleted": options.restore_deleted}


def scheduled_for_deletion(name: str) -> ConflictError:
    """The refusal of a write over a secret in its recovery window, with the ways out."""
    return ConflictError(
        "secret is scheduled for deletion and still recoverable; nothing was written. Restore it "
        f"(aws secretsmanager restore-secret --secret-id {name}, or open the store with "
        "aws-sm://?restore_deleted=true to restore on put), or purge it first with delete(name, purge=True)"
    )
