"""SSM Parameter Store errors → portable codes: the shared AWS table (``common``) plus this
service's own error codes. Details never carry a value (``common.safe_detail`` masks a quoted one)."""

from __future__ import annotations

from secretkit.drivers.aws import common
from secretkit.drivers.aws.common import code_of
from secretkit.drivers.base import ErrorCode

__all__ = ["TABLE", "classify", "code_of"]

TABLE = common.service_table(
    "AWS SSM Parameter Store",
    {
        "ParameterNotFound": ErrorCode.NOT_FOUND,
        "ParameterVersionNotFound": ErrorCode.NOT_FOUND,
        "ParameterAlreadyExists": ErrorCode.ALREADY_EXISTS,
        "ParameterPatternMismatchException": ErrorCode.INVALID_ARGUMENT,
        "UnsupportedParameterType": ErrorCode.INVALID_ARGUMENT,
        "HierarchyLevelLimitExceededException": ErrorCode.INVALID_ARGUMENT,
        "HierarchyTypeMismatchException": ErrorCode.INVALID_ARGUMENT,
        "InvalidAllowedPatternException": ErrorCode.INVALID_ARGUMENT,
        "InvalidFilterKey": ErrorCode.INVALID_ARGUMENT,
        "InvalidFilterOption": ErrorCode.INVALID_ARGUMENT,
        "InvalidFilterValue": ErrorCode.INVALID_ARGUMENT,
        "InvalidNextToken": ErrorCode.INVALID_ARGUMENT,
        "InvalidKeyId": ErrorCode.INVALID_ARGUMENT,
        "IncompatiblePolicyException": ErrorCode.INVALID_ARGUMENT,
        "InvalidPolicyTypeException": ErrorCode.INVALID_ARGUMENT,
        "InvalidPolicyAttributeException": ErrorCode.INVALID_ARGUMENT,
        "PoliciesLimitExceededException": ErrorCode.INVALID_ARGUMENT,
        "ParameterVersionLabelLimitExceeded": ErrorCode.INVALID_ARGUMENT,
        # Concurrent updates of one parameter: transient, the next attempt usually lands.
        "TooManyUpdates": ErrorCode.THROTTLED,
        "InternalServerError": ErrorCode.UNAVAILABLE,
        # Quotas (10 000 Standard parameters a region; 100 versions whose oldest is labelled):
        # backing off for seconds does not lift them, so they fail fast with their own detail.
        "ParameterLimitExceeded": ErrorCode.UNKNOWN,
        "ParameterMaxVersionLimitExceeded": ErrorCode.UNKNOWN,
    },
)

#: Map a botocore/boto3 exception to a portable code; the detail never holds a value.
classify = TABLE.classify
