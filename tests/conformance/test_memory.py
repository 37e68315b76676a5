"""The conformance suite against memory://, the users' unit-test fake."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.readers import ReaderAgreement


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


class TestMemoryReaders(ReaderAgreement):
    """A named memory store, so the command line run in this process opens the same one."""

    @pytest.fixture
    def cli_url(self) -> str:
        return f"memory://readers-{uuid.uuid4().hex}"

    @pytest.fixture
    def store(self, cli_url: str) -> Iterator[SecretStore]:
        with secretkit.open(cli_url) as store:
            yield store
