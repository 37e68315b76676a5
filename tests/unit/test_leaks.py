"""Values never escape through error chains or traceback locals (issue: hardening, item 8).

A driver whose SDK error quotes the value, and whose frames hold the encoded request, stands
in for any backend: what reaches the caller must not carry either.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import pytest

import secretkit
from secretkit.drivers.base import Classified
from secretkit.drivers.memory import MemoryDriver
from secretkit.errors import ErrorCode
from secretkit.secret import Value, VersionInfo

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
