"""The conformance suite against memory://, the users' unit-test fake."""

from __future__ import annotations

import pytest

from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance


class TestMemoryStore(StoreConformance):
    tells_current_version = True

    @pytest.fixture
    def store(self, memory_store: SecretStore) -> SecretStore:
        return memory_store


class TestPluginFixture(StoreConformance):
    """The pytest plugin's fixture is the same fake, so it passes the same contract."""

    @pytest.fixture
    def store(self, secret_store: SecretStore) -> SecretStore:
        return secret_store
