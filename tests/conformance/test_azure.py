"""The conformance suites against azure-kv://, through the real azure-keyvault-secrets client and
the Key Vault wire double (HTTPS on loopback, bearer challenge, soft delete; tests/doubles/azure_kv.py).

The store is opened as a user opens it (``azure-kv://127.0.0.1:PORT``), with the double's CA as
``ca_bundle`` and a static-token credential; the loopback host turns the SDK's challenge-resource
check off by itself. Key Vault has no conditional write: the rotation suite runs with the
pending value in a companion kept as a first-writer-wins log (``drivers/azure/claims.py``),
concurrent rotators included.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.readers import ReaderAgreement
from secretkit.testing.rotation import RotationConformance


def open_double(double: Any, **options: Any) -> SecretStore:
    """A store on the double, opened as a user opens one on a vault by host and port."""
    return secretkit.open(
        f"azure-kv://127.0.0.1:{double.port}", ca_bundle=str(double.ca_path), credential=double.credential(),
        **options,
    )


class TestAzure(StoreConformance):
    @pytest.fixture
    def store(self, azure_kv: Any) -> Iterator[SecretStore]:
        with open_double(azure_kv) as store:
            yield store


class TestAzureRotation(RotationConformance):
    store = TestAzure.store


class TestAzureReaders(ReaderAgreement):
    store = TestAzure.store

    @pytest.fixture
    def cli_url(self, azure_kv: Any) -> str:
        pytest.skip(
            "the CLI opens stores from a URL and config, and a credential object is a keyword argument only; the "
            "credentials the CLI could use (DefaultAzureCredential: environment, managed identity, az CLI) all ask "
            "Microsoft Entra ID for a token, which the Key Vault double does not serve")
