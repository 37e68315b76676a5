"""Secrets Manager errors → portable codes: the shared AWS table (``common``) plus this
service's own error codes. Details never carry a value."""

from __future__ import annotations

import re

import botocore.exceptions as bx

from secretkit.drivers.aws import common
from secretkit.drivers.aws.common import code_of, message_of
from secretkit.drivers.base import Classified, ErrorCode

__all__ = ["TABLE", "classify", "classify_code", "code_of", "is_gone", "is_marked_for_deletion", "message_of"]

_DELETED = re.compile(r"marked (for )?delet|scheduled for delet", re.IGNORECASE)


def is_marked_for_deletion(code: str, message: str) -> bool:
    """AWS's answer for a secret in its recovery window (it exists, but is not readable)."""
    return code == "InvalidRequestException" and bool(_DELETED.search(message))


def is_gone(exc: bx.ClientError) -> bool:
    """No such secret, or one scheduled for deletion: both are 'not there' portably."""
    code = code_of(exc)
    return code == "ResourceNotFoundException" or is_marked_for_deletion(code, message_of(exc))


def classify_code(code: str, message: str, status: int | None = None) -> Classified:
    """The portable reading of an AWS error code (also used for BatchGetSecretValue's per-name errors)."""
    if is_marked_for_deletion(code, message):
        return Classified(ErrorCode.NOT_FOUND, f"secret is scheduled for deletion ({common.safe_detail(code, message)})")
    return common.classify_code(TABLE, code, message, status)


TABLE = common.service_table(
    "AWS Secrets Manager",
    {
        "ResourceNotFoundException": ErrorCode.NOT_FOUND,
        "ResourceExistsException": ErrorCode.ALREADY_EXISTS,
        "InvalidParameterException": ErrorCode.INVALID_ARGUMENT,
        "InvalidRequestException": ErrorCode.INVALID_ARGUMENT,
        "InvalidNextTokenException": ErrorCode.INVALID_ARGUMENT,
        "MalformedPolicyDocumentException": ErrorCode.INVALID_ARGUMENT,
        "PublicPolicyException": ErrorCode.INVALID_ARGUMENT,
        "PreconditionNotMetException": ErrorCode.INVALID_ARGUMENT,
        # KMS refused or could not use the key: a permission problem in practice, not transient.
        "DecryptionFailure": ErrorCode.PERMISSION_DENIED,
        "EncryptionFailure": ErrorCode.PERMISSION_DENIED,
        # botocore retries it as throttling, but on Secrets Manager it is a quota (e.g. too many
        # versions in 24 h) that backing off for seconds does not lift: fail fast.
        "LimitExceededException": ErrorCode.UNKNOWN,
    },
    classify_code,
)

#: Map a botocore/boto3 exception to a portable code; the detail never holds a value.
classify = TABLE.classify
