"""The conformance suite against a real HashiCorp Vault (or OpenBao) you point it at.

Runs when ``VAULT_ADDR`` and ``VAULT_TOKEN`` are set, e.g. with the dev server of
``examples/vault-dev/compose.yaml``::

    docker compose -f examples/vault-dev/compose.yaml up -d
    VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=dev-root pytest tests/integration/test_vault_real.py

``VAULT_KV_MOUNT`` (default ``secret``) names a KV v2 mount; ``VAULT_KV1_MOUNT``, if set, a KV
v1 mount to test as well. Every test writes under a random prefix and purges what it wrote.
Otherwise each test is skipped with the reason shown.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import secretkit
from secretkit.drivers.vault.driver import KV2Driver
from secretkit.drivers.vault.kv1 import KV1Driver
from secretkit.errors import InvalidArgumentError
from secretkit.store import SecretStore
from secretkit.testing.conformance import NameFactory, StoreConformance

pytestmark = pytest.mark.integration


def _real_store(mount: str) -> SecretStore:
    if not (os.environ.get("VAULT_ADDR") and os.environ.get("VAULT_TOKEN")):
        pytest.skip("real Vault tests need VAULT_ADDR and VAULT_TOKEN (see examples/vault-dev/compose.yaml)")
    return secretkit.open(f"vault:///{mount}")  # host, TLS and token from VAULT_ADDR / VAULT_TOKEN


class TestRealVaultKV2(StoreConformance):
    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        with _real_store(os.environ.get("VAULT_KV_MOUNT", "secret")) as store:
            assert isinstance(store.driver, KV2Driver), "VAULT_KV_MOUNT must be a KV v2 mount"
            yield store


class TestRealVaultKV1(StoreConformance):
    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        mount = os.environ.get("VAULT_KV1_MOUNT")
        if not mount:
            pytest.skip("set VAULT_KV1_MOUNT to a KV v1 mount to run the KV v1 suite against a real Vault")
        with _real_store(mount) as store:
            assert isinstance(store.driver, KV1Driver), "VAULT_KV1_MOUNT must be a KV v1 mount"
            yield store

    def test_empty_fields_round_trip(self, store: SecretStore, new_name: NameFactory) -> None:
        """KV v1 refuses a map without fields: ``put({})`` is refused before any request."""
        counted, spy = self.counting(store)
        with pytest.raises(InvalidArgumentError, match="KV v1 mount refuses a secret without fields"):
            counted.put(new_name("nofields"), {})
        assert spy.total == 0
