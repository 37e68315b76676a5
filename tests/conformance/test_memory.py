"""The conformance suite against memory://, the users' unit-test fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        with secretkit.open("memory://") as store:
            yield store


class TestPluginFixture(StoreConformance):
    """The pytest plugin's fixture is the same fake, so it passes the same contract."""

    @pytest.fixture
    def store(self, secret_store: SecretStore) -> SecretStore:
        return secret_store
