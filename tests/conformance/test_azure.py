"""The conformance suites against azure-kv://, through the real azure-keyvault-secrets client and
the Key Vault wire double (HTTPS on loopback, bearer challenge, soft delete; tests/doubles/azure_kv.py).

The store is opened as a user opens it (``azure-kv://127.0.0.1:PORT``), with the double's CA as
``ca_bundle`` and a static-token credential; the loopback host turns the SDK's challenge-resource
check off by itself. The CLI readers open the same vault from a URL alone, as a service principal
of the double's Entra ID token service (``service_principal_url``). Key Vault has no conditional write: the rotation suite runs with the
pending value in a companion kept as a first-writer-wins log (``drivers/azure/claims.py``),
concurrent rotators included.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.readers import ReaderAgreement
from secretkit.testing.rotation import RotationConformance
from tests.doubles.entra_id import CLIENT_ID, CLIENT_SECRET


def service_principal_url(double: Any, client_secret: str | None = CLIENT_SECRET) -> str:
    """``azure-kv://127.0.0.1:PORT?...``: the double's vault, its tenant's registered client
    (with ``client_secret``, unless None: then it comes from the environment), the double as
    the Entra ID authority, and its CA."""
    query = {"tenant_id": double.tenant, "client_id": CLIENT_ID, "authority": double.authority,
             "ca_bundle": str(double.ca_path)}
    if client_secret is not None:
        query["client_secret"] = client_secret
    return f"azure-kv://127.0.0.1:{double.port}?{urlencode(query)}"


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
        """The CLI opens the store from a URL alone: a service principal of the double's Entra ID
        (azure-identity's ClientSecretCredential, the token service on the same server)."""
        return service_principal_url(azure_kv)
