"""aws-sm:// — AWS Secrets Manager through boto3.

``secretkit.open("aws-sm://?region=eu-west-1")``; options ``region``, ``endpoint_url``,
``profile``, ``recovery_window_days``, ``connect_timeout``, ``read_timeout``, or a ready
``client=`` (a boto3 ``secretsmanager`` client). Credentials come from boto3's normal chain.

Translation rules (documented in docs/backends/aws.md):

* Names: a portable name is stored under the same AWS name, except that when the name's
  seventh character from the end is ``-`` it becomes ``=``. AWS reads a name ending in ``-``
  plus six characters as a possible partial ARN (its ARN suffix has that shape); ``=`` never
  occurs in a portable name, so the mapping is reversible.
* Values: bytes go to ``SecretBinary``; fields go to ``SecretString`` as a JSON object of
  strings; text goes to ``SecretString`` as is, unless it is empty, starts with NUL, or would
  read back as fields, in which case it is stored as NUL + text. Empty bytes (AWS refuses an
  empty ``SecretBinary``) are stored as the ``SecretString`` NUL ``b``.
* Version ids are the store's put tokens, sent as ``ClientRequestToken``: a retried put
  never creates a second version.
* Stages: portable ``current``/``previous``/``pending`` are ``AWSCURRENT``/``AWSPREVIOUS``/
  ``AWSPENDING``; reported stages hold both spellings.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import boto3
import botocore.exceptions as bx
from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field

from secretkit.config import StoreURL, validate
from secretkit.drivers.base import Capabilities, Classified, Record
from secretkit.errors import (
    AlreadyExistsError,
    ConfigError,
    ConflictError,
    ErrorCode,
    InvalidArgumentError,
    NotFoundError,
    SecretError,
    UnavailableError,
    error_for,
)
from secretkit.names import check_name as check_portable_name
from secretkit.redact import install_redaction
from secretkit.names import portable_rules
from secretkit.secret import Kind, Stage, Value, VersionInfo, fields_to_json

BACKEND = "aws-sm"
#: AWS's value limit, in bytes of SecretString (UTF-8) or SecretBinary.
AWS_MAX_VALUE = 65536
#: Escaped text carries one extra byte, so this is the largest portable size that always fits.
MAX_VALUE_BYTES = AWS_MAX_VALUE - 1
AWS_MAX_NAME = 512
BATCH_SIZE = 20

MARK = "\x00"
EMPTY_BYTES = MARK + "b"

NATIVE_STAGE = {Stage.CURRENT: "AWSCURRENT", Stage.PREVIOUS: "AWSPREVIOUS", Stage.PENDING: "AWSPENDING"}
PORTABLE_STAGE = {native: portable for portable, native in NATIVE_STAGE.items()}
#: Label that holds a compare-and-set write's version until AWSCURRENT moves (or not) to it.
WRITE_LABEL_PREFIX = "secretkit-write-"

_AWS_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
_VERSION_ID_LENGTH = range(32, 65)
_JSON_SPACE = " \t\n\r"
_TOKEN_NAMESPACE = uuid.UUID("6f1d0c9e-3b7a-5b52-9a7e-5ec2e7c1b1a0")


class AwsOptions(BaseModel):
    """Options of ``aws-sm://`` (URL query parameters or keyword arguments of ``open``)."""

    model_config = ConfigDict(extra="forbid")

    region: str | None = Field(None, description="AWS region; default: boto3's chain (AWS_REGION, profile)")
    endpoint_url: str | None = Field(None, description="another endpoint, e.g. a VPC endpoint or a local double")
    profile: str | None = Field(None, description="a named profile from ~/.aws/config")
    recovery_window_days: int | None = Field(
        None, ge=7, le=30, description="recovery window of delete() without purge; default AWS's 30 days"
    )
    connect_timeout: float = Field(10.0, gt=0, description="seconds to open a connection")
    read_timeout: float = Field(30.0, gt=0, description="seconds to wait for a response")


def rotation_version_id(token: str) -> str:
    """The AWS version id of a rotation token: the token itself when AWS accepts it as a
    ClientRequestToken (32-64 characters, as AWS's rotation Lambda events carry), else a
    stable UUID derived from it, so re-runs with the same token find the same version."""
    if len(token) in _VERSION_ID_LENGTH:
        return token
    return uuid.uuid5(_TOKEN_NAMESPACE, token).hex


# -- names ---------------------------------------------------------------------------


def encode_name(name: str) -> str:
    """The AWS name of a portable name (see the module docstring)."""
    if len(name) >= 7 and name[-7] == "-":
        return f"{name[:-7]}={name[-6:]}"
    return name


def decode_name(stored: str) -> str | None:
    """The portable name an AWS name encodes, or None for names secretkit never writes."""
    name = stored
    if "=" in stored:
        if stored.count("=") != 1 or len(stored) < 7 or stored[-7] != "=":
            return None
        name = f"{stored[:-7]}-{stored[-6:]}"
    try:
        check_portable_name(name)
    except InvalidArgumentError:
        return None
    return name if encode_name(name) == stored else None


# -- values --------------------------------------------------------------------------


def _as_fields(text: str) -> dict[str, str] | None:
    """The field mapping ``text`` reads back as, or None if it reads back as text."""
    if not text.lstrip(_JSON_SPACE).startswith("{"):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if isinstance(parsed, dict) and all(isinstance(v, str) for v in parsed.values()):
        return parsed
    return None


def encode_value(value: Value) -> dict[str, Any]:
    """The ``SecretString``/``SecretBinary`` request member for ``value``."""
    if value.kind is Kind.BYTES:
        return {"SecretBinary": value.bytes} if value.bytes else {"SecretString": EMPTY_BYTES}
    if value.kind is Kind.FIELDS:
        return {"SecretString": fields_to_json(value.map)}
    text = value.text
    if not text or text.startswith(MARK) or _as_fields(text) is not None:
        return {"SecretString": MARK + text}
    return {"SecretString": text}


def decode_value(response: Mapping[str, Any]) -> Value:
    """Invert ``encode_value`` on a GetSecretValue-shaped response."""
    if "SecretBinary" in response:
        return Value(Kind.BYTES, bytes(response["SecretBinary"]))
    text = response.get("SecretString")
    if text is None:
        raise NotFoundError("secret version has no value")
    if text == EMPTY_BYTES:
        return Value(Kind.BYTES, b"")
    if text.startswith(MARK):
        return Value(Kind.TEXT, text[1:])
    fields = _as_fields(text)
    if fields is not None:
        return Value.of(fields)
    return Value(Kind.TEXT, text)


def _stages(labels: Sequence[str] | None) -> frozenset[str]:
    """Native labels plus their portable spellings; our own transient write labels hidden."""
    out: set[str] = set()
    for label in labels or ():
        if label.startswith(WRITE_LABEL_PREFIX):
            continue
        out.add(label)
        if label in PORTABLE_STAGE:
            out.add(PORTABLE_STAGE[label])
    return frozenset(out)


# -- errors --------------------------------------------------------------------------

_CODES: dict[str, ErrorCode] = {
    "ResourceNotFoundException": ErrorCode.NOT_FOUND,
    "ResourceExistsException": ErrorCode.ALREADY_EXISTS,
    "InvalidParameterException": ErrorCode.INVALID_ARGUMENT,
    "InvalidRequestException": ErrorCode.INVALID_ARGUMENT,
    "ValidationException": ErrorCode.INVALID_ARGUMENT,
    "InvalidNextTokenException": ErrorCode.INVALID_ARGUMENT,
    "MalformedPolicyDocumentException": ErrorCode.INVALID_ARGUMENT,
    "PublicPolicyException": ErrorCode.INVALID_ARGUMENT,
    "PreconditionNotMetException": ErrorCode.INVALID_ARGUMENT,
    "AccessDeniedException": ErrorCode.PERMISSION_DENIED,
    "AccessDenied": ErrorCode.PERMISSION_DENIED,
    # KMS refused or could not use the key: a permission problem in practice, not transient.
    "DecryptionFailure": ErrorCode.PERMISSION_DENIED,
    "EncryptionFailure": ErrorCode.PERMISSION_DENIED,
    "UnrecognizedClientException": ErrorCode.UNAUTHENTICATED,
    "InvalidClientTokenId": ErrorCode.UNAUTHENTICATED,
    "InvalidSignatureException": ErrorCode.UNAUTHENTICATED,
    "SignatureDoesNotMatch": ErrorCode.UNAUTHENTICATED,
    "IncompleteSignature": ErrorCode.UNAUTHENTICATED,
    "MissingAuthenticationToken": ErrorCode.UNAUTHENTICATED,
    "ExpiredToken": ErrorCode.UNAUTHENTICATED,
    "ExpiredTokenException": ErrorCode.UNAUTHENTICATED,
    "AuthFailure": ErrorCode.UNAUTHENTICATED,
    "ThrottlingException": ErrorCode.THROTTLED,
    "Throttling": ErrorCode.THROTTLED,
    "ThrottledException": ErrorCode.THROTTLED,
    "TooManyRequestsException": ErrorCode.THROTTLED,
    "RequestLimitExceeded": ErrorCode.THROTTLED,
    "RequestThrottled": ErrorCode.THROTTLED,
    "RequestThrottledException": ErrorCode.THROTTLED,
    "SlowDown": ErrorCode.THROTTLED,
    "BandwidthLimitExceeded": ErrorCode.THROTTLED,
    "PriorRequestNotComplete": ErrorCode.THROTTLED,
    # botocore retries it as throttling, but on Secrets Manager it is a quota (e.g. too many
    # versions in 24 h) that backing off for seconds does not lift: fail fast.
    "LimitExceededException": ErrorCode.UNKNOWN,
    "InternalServiceError": ErrorCode.UNAVAILABLE,
    "InternalFailure": ErrorCode.UNAVAILABLE,
    "ServiceUnavailable": ErrorCode.UNAVAILABLE,
    "ServiceUnavailableException": ErrorCode.UNAVAILABLE,
    "RequestTimeout": ErrorCode.DEADLINE_EXCEEDED,
    "RequestTimeoutException": ErrorCode.DEADLINE_EXCEEDED,
}
_BY_STATUS = {401: ErrorCode.UNAUTHENTICATED, 403: ErrorCode.PERMISSION_DENIED, 404: ErrorCode.NOT_FOUND,
              429: ErrorCode.THROTTLED}
_DELETED = re.compile(r"marked (for )?delet|scheduled for delet", re.IGNORECASE)
# AWS validation messages may quote the offending member's value: never pass that on.
_QUOTED_VALUE = re.compile(r"Value .* at '", re.DOTALL)


def _code(exc: bx.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: bx.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def is_marked_for_deletion(code: str, message: str) -> bool:
    """AWS's answer for a secret in its recovery window (it exists, but is not readable)."""
    return code == "InvalidRequestException" and bool(_DELETED.search(message))


def classify_code(code: str, message: str, status: int | None = None) -> Classified:
    """The portable reading of an AWS error code (also used for BatchGetSecretValue's per-name errors)."""
    safe = _QUOTED_VALUE.sub("Value *** at '", message)[:300]
    detail = f"{code}: {safe}" if safe else code
    if is_marked_for_deletion(code, message):
        return Classified(ErrorCode.NOT_FOUND, f"secret is scheduled for deletion ({detail})")
    mapped = _CODES.get(code)
    if mapped is None and status is not None:
        mapped = _BY_STATUS.get(status) or (ErrorCode.UNAVAILABLE if status >= 500 else None)
    return Classified(mapped or ErrorCode.UNKNOWN, detail)


def classify(exc: BaseException) -> Classified | None:
    """Map a botocore/boto3 exception to a portable code; the detail never holds a value."""
    if isinstance(exc, bx.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return classify_code(_code(exc), _message(exc), status if isinstance(status, int) else None)
    if isinstance(exc, bx.ParamValidationError):
        # botocore's report quotes parameter values; name the parameters only.
        params = sorted(set(re.findall(r"parameter (\w+)", str(exc))))
        return Classified(ErrorCode.INVALID_ARGUMENT, f"request failed botocore validation ({', '.join(params)})")
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError, bx.CredentialRetrievalError,
                        bx.NoAuthTokenError, bx.TokenRetrievalError, bx.SSOError)):
        return Classified(ErrorCode.UNAUTHENTICATED, f"no usable AWS credentials ({type(exc).__name__})")
    if isinstance(exc, (bx.NoRegionError, bx.ProfileNotFound, bx.InvalidRegionError, bx.InvalidConfigError)):
        return Classified(ErrorCode.CONFIG, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, bx.ReadTimeoutError):
        return Classified(ErrorCode.DEADLINE_EXCEEDED, f"no response in time ({type(exc).__name__})")
    if isinstance(exc, (bx.ConnectionError, bx.HTTPClientError)):
        # Covers EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError, SSLError, proxies.
        return Classified(ErrorCode.UNAVAILABLE, f"cannot reach AWS Secrets Manager ({type(exc).__name__})")
    if isinstance(exc, bx.BotoCoreError):
        return Classified(ErrorCode.UNKNOWN, type(exc).__name__)
    return None


# -- the driver ----------------------------------------------------------------------


def _capabilities() -> Capabilities:
    return Capabilities(
        versions=True,
        compare_and_set=True,
        create_only=True,
        recoverable_delete=True,
        idempotent_put=True,
        max_value_bytes=MAX_VALUE_BYTES,
    )


class AwsDriver:
    """Translates the driver calls to Secrets Manager operations; one boto3 client, thread-safe."""

    backend = BACKEND
    names = portable_rules()
    sdk_loggers = ("botocore", "boto3", "urllib3")

    def __init__(self, client: Any, *, owned: bool, recovery_window_days: int | None = None) -> None:
        self.client = client
        self.capabilities = _capabilities()
        self._owned = owned
        self._recovery_window = recovery_window_days

    # -- checks before I/O -----------------------------------------------------------

    def check_name(self, name: str) -> None:
        """Reject names whose AWS form breaks AWS's character set or 512-character limit."""
        stored = encode_name(name)
        if not _AWS_NAME.fullmatch(stored):
            raise InvalidArgumentError(
                f"AWS secret names are 1-{AWS_MAX_NAME} of letters, digits and /_+=.@- "
                f"(this one maps to {len(stored)} characters)"
            )

    def check_value(self, name: str, value: Value) -> None:
        """Reject values whose stored form exceeds AWS's 65536-byte limit."""
        member = encode_value(value)
        stored = member.get("SecretBinary")
        size = len(stored) if stored is not None else len(member["SecretString"].encode("utf-8"))
        if size > AWS_MAX_VALUE:
            raise InvalidArgumentError(f"value is stored as {size} bytes; AWS Secrets Manager holds at most {AWS_MAX_VALUE}")

    # -- reads -----------------------------------------------------------------------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        request: dict[str, Any] = {"SecretId": encode_name(name)}
        if version is not None:
            if len(version) not in _VERSION_ID_LENGTH:  # AWS version ids are 32-64 characters
                raise NotFoundError(f"version {version!r} not found")
            request["VersionId"] = version
        else:
            # AWS reads AWSCURRENT by default anyway; naming it also reads the right version on
            # moto, whose default version lags behind UpdateSecretVersionStage (users test with it).
            request["VersionStage"] = NATIVE_STAGE[stage or Stage.CURRENT]
        response = self.client.get_secret_value(**request)
        return to_record(response)

    def read_many(self, names: Sequence[str]) -> dict[str, Record | SecretError]:
        """BatchGetSecretValue, 20 names a call; names that fail get their own error."""
        by_stored = {encode_name(n): n for n in names}
        stored = list(by_stored)
        out: dict[str, Record | SecretError] = {}
        for start in range(0, len(stored), BATCH_SIZE):
            chunk = stored[start : start + BATCH_SIZE]
            request: dict[str, Any] = {"SecretIdList": chunk}
            while True:
                response = self.client.batch_get_secret_value(**request)
                for item in response.get("SecretValues", []):
                    name = by_stored.get(item.get("Name", ""))
                    if name is not None:
                        try:
                            out[name] = to_record(item)
                        except SecretError as exc:
                            out[name] = exc
                for failure in response.get("Errors", []):
                    name = by_stored.get(failure.get("SecretId", ""))
                    if name is not None and name not in out:
                        classified = classify_code(str(failure.get("ErrorCode", "")), str(failure.get("Message", "")))
                        out[name] = error_for(classified.code, classified.detail, name=name, backend=BACKEND)
                token = response.get("NextToken")
                if not token:
                    break
                request["NextToken"] = token
        return out

    def current_version(self, name: str) -> str:
        """The AWSCURRENT version id from DescribeSecret (no value is fetched)."""
        for version_id, labels in self._labels(encode_name(name)).items():
            if "AWSCURRENT" in labels:
                return version_id
        raise NotFoundError("secret has no current version")

    def versions(self, name: str) -> list[VersionInfo]:
        entries: list[dict[str, Any]] = []
        request: dict[str, Any] = {"SecretId": encode_name(name), "IncludeDeprecated": True}
        while True:
            response = self.client.list_secret_version_ids(**request)
            entries.extend(response.get("Versions", []))
            token = response.get("NextToken")
            if not token:
                break
            request["NextToken"] = token
        # Newest first by creation time; equal times (moto reports none) keep the reverse of
        # the listing order, which is creation order on both AWS and moto.
        entries.reverse()
        entries.sort(key=lambda e: _timestamp(e.get("CreatedDate")), reverse=True)
        return [
            VersionInfo(name, str(e["VersionId"]), _datetime(e.get("CreatedDate")), _stages(e.get("VersionStages")))
            for e in entries
        ]

    def list(self, prefix: str) -> list[str]:
        # Encoding may turn one '-' into '='; filtering on the part before the first '-'
        # keeps the server-side filter a superset, and the exact prefix is applied here.
        server_prefix = prefix.split("-", 1)[0]
        request: dict[str, Any] = {}
        if server_prefix:
            request["Filters"] = [{"Key": "name", "Values": [server_prefix]}]
        found = []
        for page in self.client.get_paginator("list_secrets").paginate(**request):
            for entry in page.get("SecretList", []):
                if entry.get("DeletedDate"):
                    continue
                name = decode_name(str(entry.get("Name", "")))
                if name is not None and name.startswith(prefix):
                    found.append(name)
        return found

    # -- writes ----------------------------------------------------------------------

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        stored = encode_name(name)
        member = encode_value(value)
        if create_only:
            return self._create(name, stored, member, token)
        if if_version is not None:
            return self._compare_and_set(name, stored, member, token, if_version)
        return self._put(name, stored, member, token)

    def _put(self, name: str, stored: str, member: dict[str, Any], token: str) -> VersionInfo:
        """PutSecretValue; CreateSecret when there is no secret; a fresh secret over a deleted one."""
        try:
            response = self.client.put_secret_value(SecretId=stored, ClientRequestToken=token, **member)
            return VersionInfo(name, str(response["VersionId"]), None, _stages(response.get("VersionStages")))
        except bx.ClientError as exc:
            code = _code(exc)
            if code != "ResourceNotFoundException" and not is_marked_for_deletion(code, _message(exc)):
                raise
        try:
            return self._create(name, stored, member, token)
        except AlreadyExistsError:
            # Another writer created it between our two calls; add our version to theirs.
            response = self.client.put_secret_value(SecretId=stored, ClientRequestToken=token, **member)
            return VersionInfo(name, str(response["VersionId"]), None, _stages(response.get("VersionStages")))

    def _create(self, name: str, stored: str, member: dict[str, Any], token: str, *, purged: bool = False) -> VersionInfo:
        """CreateSecret (atomic create-only). A name in its recovery window is purged first:
        writing to a deleted name starts a new secret, never resurrecting the old versions."""
        try:
            response = self.client.create_secret(Name=stored, ClientRequestToken=token, **member)
            return VersionInfo(name, str(response.get("VersionId", token)), None, _stages(["AWSCURRENT"]))
        except bx.ClientError as exc:
            code = _code(exc)
            if code != "ResourceExistsException" and not is_marked_for_deletion(code, _message(exc)):
                raise
        try:
            description = self.client.describe_secret(SecretId=stored)
        except bx.ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":  # purged meanwhile: let the store retry
                raise UnavailableError("secret of this name was being deleted; retry") from exc
            raise
        labels = (description.get("VersionIdsToStages") or {}).get(token)
        if labels is not None:  # our own earlier attempt created it (its response was lost)
            return VersionInfo(name, token, None, _stages(labels))
        if not description.get("DeletedDate"):
            raise AlreadyExistsError("secret already exists")
        if purged:
            # AWS deletes asynchronously; the name frees up shortly (put is retried, idempotently).
            raise UnavailableError("the deleted secret of this name is still being purged; retry")
        self.client.delete_secret(SecretId=stored, ForceDeleteWithoutRecovery=True)
        return self._create(name, stored, member, token, purged=True)

    def _compare_and_set(
        self, name: str, stored: str, member: dict[str, Any], token: str, if_version: str
    ) -> VersionInfo:
        """Stage the new version under a private label, then move AWSCURRENT to it only if
        AWSCURRENT is still on ``if_version`` (UpdateSecretVersionStage's RemoveFromVersionId
        check, atomic on the server). A losing version never becomes current."""
        if len(if_version) not in _VERSION_ID_LENGTH:
            raise ConflictError(f"current version is not {if_version!r}")
        label = WRITE_LABEL_PREFIX + token
        try:
            self.client.put_secret_value(SecretId=stored, ClientRequestToken=token, VersionStages=[label], **member)
        except bx.ClientError as exc:
            code = _code(exc)
            if code == "ResourceNotFoundException" or is_marked_for_deletion(code, _message(exc)):
                raise ConflictError(f"secret does not exist, so its current version is not {if_version!r}") from exc
            raise
        try:
            self.client.update_secret_version_stage(
                SecretId=stored, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=if_version
            )
            won = True
        except bx.ClientError as exc:
            if _code(exc) not in ("InvalidParameterException", "ResourceNotFoundException", "InvalidRequestException"):
                raise  # transient: the store retries, and the check below settles a landed move
            # A retry whose first attempt already moved AWSCURRENT has won too.
            won = self._current_or_none(stored) == token
        self._drop_label(stored, label, token)
        if not won:
            raise ConflictError(f"current version is no longer {if_version!r}")
        return VersionInfo(name, token, None, _stages(["AWSCURRENT"]))

    def _current_or_none(self, stored: str) -> str | None:
        try:
            description = self.client.describe_secret(SecretId=stored)
        except bx.ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise
        for version_id, labels in (description.get("VersionIdsToStages") or {}).items():
            if "AWSCURRENT" in labels:
                return str(version_id)
        return None

    def _drop_label(self, stored: str, label: str, version_id: str) -> None:
        try:
            self.client.update_secret_version_stage(SecretId=stored, VersionStage=label, RemoveFromVersionId=version_id)
        except bx.ClientError as exc:
            if _code(exc) != "InvalidParameterException":  # already gone (an earlier attempt removed it)
                raise

    # -- rotation primitives (secretkit/rotation.py) ----------------------------------
    #
    # AWS's own labels are the stages. PutSecretValue would silently take AWSPENDING away
    # from another rotation's version, so the new version is first written under a private
    # label and AWSPENDING is then moved with UpdateSecretVersionStage, which refuses to take
    # a label from a version not named in RemoveFromVersionId: exactly one rotator wins.

    def write_pending(self, name: str, value: Value, *, token: str, adopt: bool) -> VersionInfo:
        """Add a version labelled AWSPENDING (AWSCURRENT untouched); atomic against other rotators."""
        stored, version_id = encode_name(name), rotation_version_id(token)
        labels = self._labels(stored)
        own = labels.get(version_id)
        if own is not None and _stages(own):  # a re-run: this token's version is already labelled
            return VersionInfo(name, version_id, None, _stages(own))
        holder = next((v for v, ls in labels.items() if "AWSPENDING" in ls), None)
        if holder is not None and "AWSCURRENT" not in labels[holder]:
            if adopt:
                return VersionInfo(name, holder, None, _stages(labels[holder]))
            raise ConflictError(f"another rotation is in progress (pending version {holder})")
        private = WRITE_LABEL_PREFIX + version_id
        if own is None:
            self.client.put_secret_value(
                SecretId=stored, ClientRequestToken=version_id, VersionStages=[private], **encode_value(value)
            )
        move: dict[str, Any] = {"RemoveFromVersionId": holder} if holder is not None else {}
        try:
            self.client.update_secret_version_stage(
                SecretId=stored, VersionStage="AWSPENDING", MoveToVersionId=version_id, **move
            )
        except bx.ClientError as exc:
            if _code(exc) != "InvalidParameterException":
                raise
            self._drop_label(stored, private, version_id)
            raise ConflictError("another rotation took the pending stage first") from exc
        self._drop_label(stored, private, version_id)
        return VersionInfo(name, version_id, None, _stages(["AWSPENDING"]))

    def promote(self, name: str, version: str, *, if_current: str) -> VersionInfo:
        """Move AWSCURRENT to ``version`` only if it is still on ``if_current`` (AWSPREVIOUS follows)."""
        self.promote_secret_id(encode_name(name), version, if_current=if_current)
        return VersionInfo(name, version, None, _stages(["AWSCURRENT"]))

    def promote_secret_id(self, secret_id: str, version: str, *, if_current: str) -> None:
        """``promote`` for a SecretId as AWS spells it (name or ARN), as rotation events carry it."""
        if "AWSCURRENT" not in self._labels(secret_id).get(version, ()):
            try:
                self.client.update_secret_version_stage(
                    SecretId=secret_id, VersionStage="AWSCURRENT", MoveToVersionId=version,
                    RemoveFromVersionId=if_current,
                )
            except bx.ClientError as exc:
                if _code(exc) != "InvalidParameterException":
                    raise
                if "AWSCURRENT" not in self._labels(secret_id).get(version, ()):  # not a lost response of ours
                    raise ConflictError(f"current version is no longer {if_current!r}") from exc
        self._unstage(secret_id, version)

    def discard_pending(self, name: str, version: str) -> None:
        """Remove AWSPENDING (and a leftover private label) from ``version``; the version stays."""
        self._unstage(encode_name(name), version)

    def _unstage(self, secret_id: str, version: str) -> None:
        self._drop_label(secret_id, "AWSPENDING", version)
        self._drop_label(secret_id, WRITE_LABEL_PREFIX + version, version)

    def _labels(self, secret_id: str) -> dict[str, tuple[str, ...]]:
        description = self.client.describe_secret(SecretId=secret_id)
        if description.get("DeletedDate"):
            raise NotFoundError("secret is scheduled for deletion")
        return {str(v): tuple(ls) for v, ls in (description.get("VersionIdsToStages") or {}).items()}

    def delete(self, name: str, *, purge: bool) -> None:
        stored = encode_name(name)
        if purge:
            # ForceDeleteWithoutRecovery reports success for a missing secret; ask first.
            self.client.describe_secret(SecretId=stored)
            self.client.delete_secret(SecretId=stored, ForceDeleteWithoutRecovery=True)
            return
        request: dict[str, Any] = {"SecretId": stored}
        if self._recovery_window is not None:
            request["RecoveryWindowInDays"] = self._recovery_window
        self.client.delete_secret(**request)

    # -- errors, lifecycle -----------------------------------------------------------

    def classify(self, exc: BaseException) -> Classified | None:
        return classify(exc)

    def close(self) -> None:
        if self._owned:
            self.client.close()


def _timestamp(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return 0.0


def _datetime(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def to_record(response: Mapping[str, Any]) -> Record:
    """A GetSecretValue-shaped response as a Record."""
    return Record(
        value=decode_value(response),
        version=str(response["VersionId"]),
        created_at=_datetime(response.get("CreatedDate")),
        stages=_stages(response.get("VersionStages")),
    )


def _mask_sdk_logs() -> None:
    # botocore logs request and response bodies at DEBUG, i.e. the values this driver moves.
    # The filter sits on botocore's own loggers (never on the application's handlers) and
    # only runs for records that DEBUG logging actually emits.
    install_redaction(("botocore", "boto3"), handlers=())


def client_config(options: AwsOptions) -> Config:
    """botocore settings: one attempt per call, because the store's RetryPolicy owns retries."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
    )


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> AwsDriver:
    """Build the driver for ``aws-sm://?region=...``; ``client`` is a ready boto3 client."""
    if url.host or url.path.strip("/"):
        raise ConfigError("aws-sm:// takes no host or path; use aws-sm://?region=eu-west-1")
    opts = validate(AwsOptions, options, what="aws-sm store")
    if client is not None:
        _mask_sdk_logs()
        return AwsDriver(client, owned=False, recovery_window_days=opts.recovery_window_days)
    try:
        session = boto3.session.Session(profile_name=opts.profile, region_name=opts.region)
        made = session.client("secretsmanager", endpoint_url=opts.endpoint_url, config=client_config(opts))
    except (bx.NoRegionError, bx.ProfileNotFound, bx.InvalidRegionError, ValueError) as exc:
        hint = " (pass ?region=... or set AWS_REGION)" if isinstance(exc, bx.NoRegionError) else ""
        raise ConfigError(f"cannot configure the AWS Secrets Manager client: {exc}{hint}") from exc
    _mask_sdk_logs()
    return AwsDriver(made, owned=True, recovery_window_days=opts.recovery_window_days)

