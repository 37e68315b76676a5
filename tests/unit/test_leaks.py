"""Values never escape through error chains or traceback locals (issue: hardening, item 8).

A driver whose SDK error quotes the value, and whose frames hold the encoded request, stands
in for any backend: what reaches the caller must not carry either.
"""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

import secretkit
from secretkit.config import StoreOptions
from secretkit.drivers.base import Classified
from secretkit.drivers.memory import MemoryDriver
from secretkit.errors import ErrorCode
from secretkit.retry import RetryPolicy
from secretkit.secret import Value, VersionInfo
from tests.doubles.aws import fake_aws_env

CANARY = "canary-value-7f3e1a"


class QuotingSdkError(Exception):
    """Like an AWS ValidationException that quotes the offending member's value."""


class QuotingDriver(MemoryDriver):
    def __init__(self, *, cause_safe: bool) -> None:
        super().__init__()
        self.cause_safe = cause_safe

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        request = {"SecretString": value.text}  # an encoded request, as a driver frame holds it
        raise QuotingSdkError(f"Value {request['SecretString']!r} at 'secretString' failed to satisfy constraint")

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Any:
        raise QuotingSdkError(f"Value {CANARY!r} at 'versionId' failed")

    def classify(self, exc: BaseException) -> Classified | None:
        if isinstance(exc, QuotingSdkError):
            return Classified(ErrorCode.INVALID_ARGUMENT, "ValidationException: Value *** at ...", self.cause_safe)
        return None


def _everything_shown(error: BaseException) -> str:
    shown = "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())
    return shown + repr(error) + str(error)


@pytest.mark.parametrize("cause_safe", [True, False])
def test_a_failed_write_carries_no_value_in_its_chain_or_locals(cause_safe: bool) -> None:
    store = secretkit.SecretStore(QuotingDriver(cause_safe=cause_safe))
    with pytest.raises(secretkit.InvalidArgumentError) as info:
        store.put("db/password", CANARY)
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert CANARY not in _everything_shown(info.value)


def test_a_read_error_keeps_its_sdk_cause_only_when_the_driver_says_it_is_safe() -> None:
    unsafe = secretkit.SecretStore(QuotingDriver(cause_safe=False))
    with pytest.raises(secretkit.InvalidArgumentError) as info:
        unsafe.get("db/password")
    assert info.value.__cause__ is None and CANARY not in _everything_shown(info.value)
    safe = secretkit.SecretStore(QuotingDriver(cause_safe=True))
    with pytest.raises(secretkit.InvalidArgumentError) as kept:
        safe.get("db/password")
    assert isinstance(kept.value.__cause__, QuotingSdkError)  # the escape hatch, where harmless


def test_logging_exception_of_a_failed_put_prints_no_value(caplog: pytest.LogCaptureFixture) -> None:
    store = secretkit.SecretStore(QuotingDriver(cause_safe=False))
    try:
        store.put("db/password", CANARY)
    except secretkit.SecretError:
        logging.getLogger("app").exception("put failed")
    assert "put failed" in caplog.text and CANARY not in caplog.text


# -- credentials inside URL-valued options --------------------------------------------------


@pytest.fixture
def dead_port() -> int:
    with socket.socket() as sock:  # bound, then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def aws_env() -> Iterator[None]:
    with fake_aws_env():
        yield


def _formatted(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error)


def test_an_endpoint_url_password_is_not_in_the_failure_of_an_aws_store(aws_env: None, dead_port: int) -> None:
    """botocore's EndpointConnectionError quotes the endpoint URL; it must not be the cause."""
    store = secretkit.open(
        "aws-sm://?region=us-east-1", endpoint_url=f"http://user:hunter2@127.0.0.1:{dead_port}",
        connect_timeout=1, retry={"max_attempts": 1},
    )
    with store, pytest.raises(secretkit.UnavailableError) as info:
        store.get("db/password")
    assert "hunter2" not in _formatted(info.value)
    assert info.value.name == "db/password" and info.value.backend == "aws-sm"


@pytest.mark.parametrize("endpoint", ["http://user:hunter2@ho st:5/", "user:hunter2@host:5", "htp:/user:hunter2@h"])
def test_an_endpoint_url_password_is_not_in_a_bad_aws_endpoint_error(aws_env: None, endpoint: str) -> None:
    """botocore refuses these at open with "Invalid endpoint: <the URL>"."""
    with pytest.raises(secretkit.ConfigError, match="endpoint") as info:
        secretkit.open("aws-sm://?region=us-east-1", endpoint_url=endpoint)
    assert "hunter2" not in _formatted(info.value)


def test_a_kubernetes_host_password_is_not_in_the_failure_of_a_k8s_store(dead_port: int) -> None:
    store = secretkit.open(
        "k8s://default", host=f"http://user:hunter2@127.0.0.1:{dead_port}", retry={"max_attempts": 1}
    )
    with store, pytest.raises(secretkit.UnavailableError) as info:
        store.get("db-password")
    shown = _formatted(info.value)
    assert "hunter2" not in shown and "http://***@127.0.0.1" in str(info.value)  # still says where


class UrlQuotingError(Exception):
    """Any SDK exception whose text quotes a URL with credentials."""


class UrlQuotingDriver(MemoryDriver):
    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Any:
        try:
            raise UrlQuotingError("GET http://admin:pa/ss@vault.example:8200/v1/x failed")
        except UrlQuotingError as exc:  # a driver's own portable error, chained to the SDK's
            raise secretkit.NotFoundError("no such secret at http://admin:pa/ss@vault.example:8200") from exc

    def list(self, prefix: str) -> list[str]:
        raise UrlQuotingError("GET http://admin:pa/ss@vault.example:8200/v1/x?list=true failed")

    def classify(self, exc: BaseException) -> Classified | None:
        return Classified(ErrorCode.UNAVAILABLE, f"unreachable: {exc}") if isinstance(exc, UrlQuotingError) else None


def test_the_store_drops_a_chain_showing_url_credentials_and_masks_the_message() -> None:
    store = secretkit.SecretStore(UrlQuotingDriver(), options=StoreOptions(retry=RetryPolicy.none()))
    with pytest.raises(secretkit.NotFoundError) as missing:
        store.get("a")
    with pytest.raises(secretkit.UnavailableError) as down:
        list(store.list())
    for error in (missing.value, down.value):
        assert error.__cause__ is None and "pa/ss" not in _formatted(error)
        assert "http://***@vault.example:8200" in str(error)
