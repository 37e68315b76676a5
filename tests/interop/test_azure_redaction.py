"""azure-core's NetworkTraceLoggingPolicy (``logging_enable=True``) logs whole request and
response bodies and headers at DEBUG: the value (``"value": ...``) and the bearer token. An
azure-kv:// store masks both in the azure loggers' lines."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import secretkit
from secretkit.drivers.azure.driver import AzureKeyVaultDriver
from secretkit.redact import install_redaction

VALUE = 'AzS3cr3t1 "Quoted2" ünï3'
FRAGMENTS = ["AzS3cr3t1", "Quoted2", "ünï3", "\\u00fcn"]


def _traffic(store: Any) -> None:
    store.put("logged", VALUE)
    store.get("logged", refresh=True)
    store.put("logged-fields", {"password": VALUE})
    store.get("logged-fields", refresh=True)


def test_the_sdk_debug_log_carries_values_without_a_store(azure_kv: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The hazard is real: the same client, used directly, logs the value and the token."""
    shared = install_redaction((), handlers=(), value_keys=AzureKeyVaultDriver.sdk_value_keys)
    for name in ["azure", *logging.root.manager.loggerDict]:  # as if no store had been opened yet
        if name.split(".")[0] == "azure":
            logging.getLogger(name).removeFilter(shared)
    caplog.handler.removeFilter(shared)
    client = azure_kv.client(logging_enable=True)
    caplog.set_level(logging.DEBUG, logger="azure")
    client.set_secret("raw", VALUE)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "AzS3cr3t1" in text
    assert azure_kv.token in text


def test_store_masks_values_and_tokens_in_azure_core_debug_logs(azure_kv: Any,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    client = azure_kv.client(logging_enable=True)
    caplog.set_level(logging.DEBUG)
    with secretkit.open(f"azure-kv://127.0.0.1:{azure_kv.port}", client=client) as store:
        _traffic(store)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Request body" in text and "Response content" in text  # the policy did log the bodies
    assert [f for f in FRAGMENTS if f in text] == []
    assert azure_kv.token not in text
