"""botocore at DEBUG logs request and response bodies; the RedactingFilter must mask the values."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest

import secretkit
from secretkit.drivers.aws.driver import AwsDriver
from secretkit.redact import install_redaction
from tests.doubles.aws import REGION, aws_faithful_moto, fake_aws_env, make_client, without_botocore_filters

moto = pytest.importorskip("moto")

# Quotes, backslashes and non-ASCII: botocore logs the body as a bytes repr of JSON, where
# JSON's escapes are escaped once more.
VALUE = 'S3cr3tPart1 "Quoted2" \\Back3\' slash4 ünï5 {"json6": "x"}'
FRAGMENTS = ["S3cr3tPart1", "Quoted2", "Back3", "slash4", "json6", "n\\\\u00fc", "ün"]
BINARY = b"\x00BinaryPart7\xff" * 3
BINARY_B64 = base64.b64encode(BINARY).decode()


def _without_logger_filters() -> None:
    # the shared filter, masking what an aws-sm store declares, off botocore's loggers
    without_botocore_filters(AwsDriver.sdk_value_keys)


@pytest.fixture
def mocked() -> Iterator[None]:
    with fake_aws_env(), aws_faithful_moto(), moto.mock_aws():
        yield
    install_redaction(("botocore", "boto3"), handlers=())  # as an open aws-sm store leaves it


def _leaks(text: str) -> list[str]:
    return [f for f in [*FRAGMENTS, BINARY_B64[:12]] if f in text]


def test_botocore_debug_log_shows_values_without_the_filter(mocked: None, caplog: pytest.LogCaptureFixture) -> None:
    """The hazard is real: the same log without the filter carries the value."""
    _without_logger_filters()
    client = make_client()
    client.create_secret(Name="plain", SecretString=VALUE)
    caplog.set_level(logging.DEBUG, logger="botocore")
    client.get_secret_value(SecretId="plain")
    bodies = [r.getMessage() for r in caplog.records if "Response body" in r.getMessage()]
    assert bodies and "S3cr3tPart1" in bodies[-1]


def test_filter_on_a_handler_redacts_get_secret_value_response(mocked: None, caplog: pytest.LogCaptureFixture) -> None:
    _without_logger_filters()  # only the handler's filter is in play here
    install_redaction((), handlers=[caplog.handler])
    client = make_client()
    caplog.set_level(logging.DEBUG, logger="botocore")
    client.create_secret(Name="text", SecretString=VALUE)
    client.create_secret(Name="binary", SecretBinary=BINARY)
    client.get_secret_value(SecretId="text")
    client.get_secret_value(SecretId="binary")
    messages = [r.getMessage() for r in caplog.records]
    bodies = [m for m in messages if "Response body" in m]
    requests = [m for m in messages if "Making request" in m and "SecretString" in m]
    assert len(bodies) >= 4 and requests  # botocore did log the bodies...
    assert any("'***'" in b for b in bodies)
    assert _leaks(caplog.text) == []  # ...with the values masked
    assert _leaks("\n".join(messages)) == []


def test_an_open_store_masks_botocore_debug_logs(mocked: None, caplog: pytest.LogCaptureFixture) -> None:
    _without_logger_filters()
    caplog.set_level(logging.DEBUG)
    with secretkit.open(f"aws-sm://?region={REGION}") as store:  # installs the filter on botocore's loggers
        store.put("via/store", VALUE)
        store.put("via/fields", {"password": VALUE})
        store.put("via/bytes", BINARY)
        assert store.get("via/store").text == VALUE
        assert store.get_many(["via/fields", "via/bytes"])["via/bytes"].bytes == BINARY
    assert any("Response body" in r.getMessage() for r in caplog.records)
    assert _leaks(caplog.text) == []


@pytest.mark.parametrize(
    ("line", "secret_words"),
    [
        # a value ending in a backslash: the mask runs on past it (over-masking is acceptable)
        ('b\'{"SecretString": "trailing backslash \\\\\\\\", "Next": "x"}\'', ["trailing", "backslash"]),
        ('{"SecretString": "never closed quote', ["never", "closed"]),
        ("{'SecretString': 'python \\' repr apostrophe', 'x': 1}", ["python", "repr", "apostrophe"]),
    ],
)
def test_redact_overmasks_rather_than_leaks(line: str, secret_words: list[str]) -> None:
    from secretkit.redact import redact

    cleaned = redact(line)
    assert cleaned.startswith(line[: line.index("SecretString")]) and "***" in cleaned
    assert [w for w in secret_words if w in cleaned] == []
