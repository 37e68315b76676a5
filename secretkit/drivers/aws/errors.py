"""botocore/boto3 exceptions → portable error codes, with details that never carry a value."""

from __future__ import annotations

import re

import botocore.exceptions as bx

from secretkit.drivers.base import Classified, ErrorCode

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


def code_of(exc: bx.ClientError) -> str:
    """The AWS error code of a ClientError (``ResourceNotFoundException``, ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def message_of(exc: bx.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def is_marked_for_deletion(code: str, message: str) -> bool:
    """AWS's answer for a secret in its recovery window (it exists, but is not readable)."""
    return code == "InvalidRequestException" and bool(_DELETED.search(message))


def is_gone(exc: bx.ClientError) -> bool:
    """No such secret, or one scheduled for deletion: both are 'not there' portably."""
    code = code_of(exc)
    return code == "ResourceNotFoundException" or is_marked_for_deletion(code, message_of(exc))


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
        return classify_code(code_of(exc), message_of(exc), status if isinstance(status, int) else None)
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
