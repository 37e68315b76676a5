"""The logging filter masks values in SDK-style log lines."""

from __future__ import annotations

import logging

import pytest

from secretkit.redact import RedactingFilter, install_redaction, redact


@pytest.mark.parametrize(
    "line, secret",
    [
        ('Response body:\nb\'{"ARN":"arn:x","Name":"db","SecretString":"hunter2","VersionId":"v"}\'', "hunter2"),
        ('{"request_id":"r","data":{"data":{"password":"hunter2"},"metadata":{"version":1}}}', "hunter2"),
        ("headers={'X-Vault-Token': 'hvs.hunter2', 'Accept': '*/*'}", "hvs.hunter2"),
        ('"data": {"password": "aHVudGVyMg=="}, "kind": "Secret"', "aHVudGVyMg=="),
        ("Authorization: Bearer eyJhunter2", "eyJhunter2"),
        ('{"payload": {"data": "aHVudGVyMg==", "dataCrc32c": "1"}}', "aHVudGVyMg=="),
    ],
)
def test_redact_masks_values(line: str, secret: str) -> None:
    assert secret not in redact(line)


def test_redact_keeps_harmless_lines() -> None:
    line = "GET /v1/secret/metadata/app 200 in 3 ms"
    assert redact(line) == line


def test_filter_on_handler_catches_child_loggers(caplog: pytest.LogCaptureFixture) -> None:
    flt = install_redaction(loggers=("sdkdemo",), handlers=[caplog.handler])
    assert isinstance(flt, RedactingFilter)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sdkdemo.endpoint.child").debug("body %s", '{"SecretString":"hunter2"}')
    assert "hunter2" not in caplog.text and "SecretString" in caplog.text
