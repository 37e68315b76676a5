"""The conformance suite against file://, the encrypted development store."""

from __future__ import annotations

import pytest

from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance


class TestFileStore(StoreConformance):
    tells_current_version = True

    @pytest.fixture
    def store(self, file_store: SecretStore) -> SecretStore:
        return file_store
