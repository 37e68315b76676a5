"""The rotation suite on memory:// and file://, where stages are native."""

from __future__ import annotations

import pytest

from secretkit.store import SecretStore
from secretkit.testing.rotation import RotationConformance, WithoutNativeStages


class TestMemoryRotation(RotationConformance):
    @pytest.fixture
    def store(self, memory_store: SecretStore) -> SecretStore:
        return memory_store


class TestFileRotation(RotationConformance):
    @pytest.fixture
    def store(self, file_store: SecretStore) -> SecretStore:
        return file_store


class TestEmulatedRotationOnMemory(RotationConformance):
    """The companion emulation that Vault, GCP and Kubernetes use, checked on the fake first."""

    @pytest.fixture
    def store(self, memory_store: SecretStore) -> SecretStore:
        return SecretStore(WithoutNativeStages(memory_store.driver))  # type: ignore[arg-type]


class TestEmulatedRotationOnFile(RotationConformance):
    @pytest.fixture
    def store(self, file_store: SecretStore) -> SecretStore:
        return SecretStore(WithoutNativeStages(file_store.driver))  # type: ignore[arg-type]
