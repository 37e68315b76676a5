"""The AWS layer every AWS driver shares (Secrets Manager now, SSM Parameter Store next).

What is the same for any AWS service reached through boto3: the client options (region,
endpoint, profile, timeouts), the client built from them with botocore's retries off and the
late-request guard on, the SDK's loggers and the error table of botocore's own exceptions and of
the error codes every AWS service shares (credentials, throttling, outages). A service's driver
adds its own error codes (``service_table``) and options on top.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import boto3
import botocore.exceptions as bx
from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field

from secretkit.drivers.base import Classified, ConfigError, ErrorCode, ErrorTable, On, redact_url, request_timeout

#: boto3 and botocore log whole request and response bodies at DEBUG; urllib3 the connections.
SDK_LOGGERS = ("botocore", "boto3", "urllib3")


class ClientOptions(BaseModel):
    """The options of any AWS driver's boto3 client (URL query parameters or keyword arguments)."""

    model_config = ConfigDict(extra="forbid")

    region: str | None = Field(None, description="AWS region; default: boto3's chain (AWS_REGION, profile)")
    endpoint_url: str | None = Field(None, description="another endpoint, e.g. a VPC endpoint or a local double")
    profile: str | None = Field(None, description="a named profile from ~/.aws/config")
    connect_timeout: float = Field(10.0, gt=0, description="seconds to open a connection")
    read_timeout: float = Field(30.0, gt=0, description="seconds to wait for a response")


def client_config(options: ClientOptions) -> Config:
    """botocore settings: one attempt per call, because the store's RetryPolicy owns retries.

    botocore fixes its timeouts per client, and they bound each socket read, not a call: the
    store bounds each attempt as a whole (``RetryPolicy.attempt_timeout`` and ``deadline``), and
    ``refuse_late_requests`` keeps an attempt the store gave up on from sending another request.
    """
    return Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
    )


def refuse_late_requests(request: Any = None, **_: Any) -> None:
    """botocore ``before-send`` handler: ``DeadlineExceededError`` instead of a request once the
    store's attempt is out of time (an abandoned attempt of a multi-request call stops there)."""
    request_timeout(None)  # raises once the running attempt's time is spent


def make_client(service: str, options: ClientOptions, *, title: str) -> Any:
    """A boto3 client of ``service`` configured from ``options``, with the late-request guard.
    ``title`` names the service in a ``ConfigError`` (``AWS Secrets Manager``)."""
    try:
        session = boto3.session.Session(profile_name=options.profile, region_name=options.region)
        made = session.client(service, endpoint_url=options.endpoint_url, config=client_config(options))
        made.meta.events.register(f"before-send.{made.meta.service_model.service_id.hyphenize()}",
                                  refuse_late_requests)
    except ValueError:
        # botocore's "Invalid endpoint: ..." quotes the option, which may carry user info
        shown = redact_url(options.endpoint_url or "")
        raise ConfigError(f"cannot configure the {title} client: endpoint_url {shown!r} is not a "
                          "valid endpoint URL (scheme://host[:port])") from None
    except (bx.NoRegionError, bx.ProfileNotFound, bx.InvalidRegionError) as exc:
        hint = " (pass ?region=... or set AWS_REGION)" if isinstance(exc, bx.NoRegionError) else ""
        raise ConfigError(f"cannot configure the {title} client: {exc}{hint}") from exc
    return made


def as_datetime(value: Any) -> datetime | None:
    """A botocore timestamp in UTC: botocore gives each one its own ``tzlocal()`` object (hundreds
    of bytes a cached secret); ``timezone.utc`` is one shared object."""
    if not isinstance(value, datetime):
        return None
    return value.astimezone(timezone.utc) if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


# -- errors ----------------------------------------------------------------------------------

#: Error codes every AWS service answers with the same meaning.
CODES: Mapping[str, ErrorCode] = {
    "ValidationException": ErrorCode.INVALID_ARGUMENT,
    "AccessDeniedException": ErrorCode.PERMISSION_DENIED,
    "AccessDenied": ErrorCode.PERMISSION_DENIED,
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
    "InternalServiceError": ErrorCode.UNAVAILABLE,
    "InternalFailure": ErrorCode.UNAVAILABLE,
    "ServiceUnavailable": ErrorCode.UNAVAILABLE,
    "ServiceUnavailableException": ErrorCode.UNAVAILABLE,
    "RequestTimeout": ErrorCode.DEADLINE_EXCEEDED,
    "RequestTimeoutException": ErrorCode.DEADLINE_EXCEEDED,
}

#: AWS answers 400 to every client error, throttling and quotas included: only the error code
#: tells them apart, so an unknown code with 400 (or another 4xx than these) stays UNKNOWN
#: rather than being read as the default table's INVALID_ARGUMENT or CONFLICT. Its 504 is a
#: gateway's outage like any 5xx.
STATUSES: Mapping[int, ErrorCode | None] = {
    400: None, 405: None, 409: None, 413: None, 415: None, 422: None, 504: ErrorCode.UNAVAILABLE,
}

# AWS validation messages may quote the offending member's value: never pass that on.
_QUOTED_VALUE = re.compile(r"Value .* at '", re.DOTALL)


def code_of(exc: bx.ClientError) -> str:
    """The AWS error code of a ClientError (``ResourceNotFoundException``, ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def message_of(exc: bx.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def status_of(exc: bx.ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def safe_detail(code: str, message: str) -> str:
    """``code: message`` with any quoted member value masked, at most 300 characters of it."""
    safe = _QUOTED_VALUE.sub("Value *** at '", message)[:300]
    return f"{code}: {safe}" if safe else code


def classify_code(table: ErrorTable, code: str, message: str, status: int | None = None) -> Classified:
    """The portable reading of an AWS error code by ``table``; the detail masks a quoted value."""
    return Classified(table.code(code, status), safe_detail(code, message))


#: How a service reads a ClientError's code, message and HTTP status (``classify_code`` by its table
#: unless it knows more, as Secrets Manager does of a secret in its recovery window).
CodeReader = Callable[[str, str, int | None], Classified]


def service_table(service: str, codes: Mapping[str, ErrorCode], read: CodeReader | None = None) -> ErrorTable:
    """The error table of one AWS service: its own ``codes`` over ``CODES`` (and ``STATUSES``) for
    a ClientError, then botocore's own exceptions (``sdk_rows``); ``service`` names it in a detail."""

    def client_error(exc: bx.ClientError) -> Classified:
        code, message, status = code_of(exc), message_of(exc), status_of(exc)
        return read(code, message, status) if read is not None else classify_code(table, code, message, status)

    table = ErrorTable(exceptions=(On(bx.ClientError, client_error), *sdk_rows(service)),
                       codes={**CODES, **codes}, statuses=STATUSES)
    return table


def _param_validation(exc: bx.ParamValidationError) -> Classified:
    # botocore's report quotes parameter values; name the parameters only.
    params = sorted(set(re.findall(r"parameter (\w+)", str(exc))))
    return Classified(ErrorCode.INVALID_ARGUMENT, f"request failed botocore validation ({', '.join(params)})")


def sdk_rows(service: str) -> tuple[On, ...]:
    """The rows for botocore's own exceptions (no answer from ``service``, or none sent)."""
    return (
        On(bx.ParamValidationError, _param_validation),
        On((bx.NoCredentialsError, bx.PartialCredentialsError, bx.CredentialRetrievalError,
            bx.NoAuthTokenError, bx.TokenRetrievalError, bx.SSOError),
           ErrorCode.UNAUTHENTICATED, "no usable AWS credentials ({kind})"),
        On((bx.NoRegionError, bx.ProfileNotFound, bx.InvalidRegionError, bx.InvalidConfigError),
           ErrorCode.CONFIG, "{kind}: {exc}"),
        On(bx.ReadTimeoutError, ErrorCode.DEADLINE_EXCEEDED, "no response in time ({kind})"),
        # Covers EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError, SSLError, proxies.
        On((bx.ConnectionError, bx.HTTPClientError), ErrorCode.UNAVAILABLE, f"cannot reach {service} ({{kind}})"),
        On(bx.BotoCoreError, ErrorCode.UNKNOWN),
    )
