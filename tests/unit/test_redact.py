"""The logging filter masks values in SDK-style log lines."""

from __future__ import annotations

import logging

import pytest

import secretkit
from secretkit.drivers.aws.driver import AwsDriver
from secretkit.drivers.base import Capabilities
from secretkit.drivers.gcp.driver import GcpDriver
from secretkit.drivers.kubernetes.driver import KubernetesDriver
from secretkit.drivers.memory import MemoryDriver
from secretkit.drivers.vault.kv import VaultDriverBase
from secretkit.redact import RedactingFilter, install_redaction, mask_value_keys, redact


@pytest.fixture(autouse=True)
def _declared_keys() -> None:
    """The value keys the built-in drivers declare, masked as opening their stores does."""
    for driver in (AwsDriver, GcpDriver, KubernetesDriver, VaultDriverBase):
        mask_value_keys(driver.sdk_value_keys)


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
    # pytest keeps one capture handler for the whole session: the filter must not outlive this
    # test, or a later test that shows the unfiltered hazard would see it masked
    try:
        assert isinstance(flt, RedactingFilter)
        caplog.set_level(logging.DEBUG)
        logging.getLogger("sdkdemo.endpoint.child").debug("body %s", '{"SecretString":"hunter2"}')
        assert "hunter2" not in caplog.text and "SecretString" in caplog.text
    finally:
        caplog.handler.removeFilter(flt)


def test_redaction_names_no_backend() -> None:
    """Which keys carry values is each driver's declaration, not a list in secretkit.redact."""
    import ast
    import inspect

    import secretkit.redact as module

    tree = ast.parse(inspect.getsource(module))
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    literals = " ".join(node.value for node in ast.walk(tree)
                        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings)
    for key in ("SecretString", "SecretBinary", "stringData", "X-Vault-Token", "botocore", "hvac", "kubernetes"):
        assert key not in literals, key


class ThirdPartyDriver(MemoryDriver):
    """A driver from another package: its SDK logs under ``acme.sdk`` and carries values as
    "AcmeValue" (a key no built-in driver declares: declared keys are masked process-wide, so
    a key a built-in driver also uses, such as SSM's "Value", would be masked already)."""

    backend = "acme"
    capabilities = Capabilities(remote=False)
    sdk_loggers = ("acme.sdk",)
    sdk_value_keys = ("AcmeValue",)


def test_a_third_party_drivers_declared_value_key_is_masked_in_its_sdk_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    line = '{"Parameter": {"Name": "db", "AcmeValue": "hunter2-acme", "Version": 3}}'
    assert "hunter2-acme" in redact(line)  # nothing masks "AcmeValue" until a driver declares it
    sdk_logger = logging.getLogger("acme.sdk.client")  # as the SDK makes it, at import
    secretkit.SecretStore(ThirdPartyDriver())
    caplog.set_level(logging.DEBUG, logger="acme.sdk")
    sdk_logger.debug("Response body: %s", line)
    shown = caplog.text
    assert "hunter2-acme" not in shown and '"Name": "db"' in shown and '"Version": 3' in shown
