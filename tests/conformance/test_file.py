"""The conformance suite against file://, the encrypted development store."""

from __future__ import annotations

import pytest

from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.readers import ReaderAgreement


class TestFileStore(StoreConformance):
    tells_current_version = True

    @pytest.fixture
    def store(self, file_store: SecretStore) -> SecretStore:
        return file_store


class TestFileReaders(ReaderAgreement):
    """The command line opens the same file (its key in the key directory the fixture set up)."""

    @pytest.fixture
    def store(self, file_store: SecretStore) -> SecretStore:
        return file_store

    @pytest.fixture
    def cli_url(self, file_store: SecretStore) -> str:
        return f"{file_store.url}?keyring=false"
