"""The conformance suite against a real Azure Key Vault.

Runs only when ``SECRETKIT_TEST_AZURE_VAULT`` is set (a vault name or URL; credentials from
``DefaultAzureCredential``, e.g. ``az login`` or ``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``/
``AZURE_CLIENT_SECRET``). Every secret it writes is under a random ``sk-conf-...`` prefix;
deleted secrets stay soft-deleted for the vault's retention period unless the suite purges them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance

VAULT = os.environ.get("SECRETKIT_TEST_AZURE_VAULT", "")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not VAULT, reason="set SECRETKIT_TEST_AZURE_VAULT to run against a real Azure Key Vault"),
]


def _open() -> SecretStore:
    if VAULT.startswith("https://"):
        return secretkit.open("azure-kv://", vault_url=VAULT)
    return secretkit.open(f"azure-kv://{VAULT}")


class TestAzureKeyVaultReal(StoreConformance):
    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        with _open() as store:
            yield store
