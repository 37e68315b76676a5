"""The rotation suite on memory:// and file://, where stages are native."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from secretkit.store import SecretStore
from secretkit.rotation import ROTATION_METHODS
from secretkit.testing.rotation import RotationConformance


class TestMemoryRotation(RotationConformance):
    @pytest.fixture
    def store(self, memory_store: SecretStore) -> SecretStore:
        return memory_store


class TestFileRotation(RotationConformance):
    @pytest.fixture
    def store(self, file_store: SecretStore) -> SecretStore:
        return file_store


class WithoutNativeStages:
    """A driver wrapper hiding the native stage primitives, so rotation runs on companions."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.capabilities = dataclasses.replace(inner.capabilities, stages=False)

    def __getattr__(self, attr: str) -> Any:
        if attr in ROTATION_METHODS:
            raise AttributeError(attr)
        return getattr(self._inner, attr)


class TestEmulatedRotationOnMemory(RotationConformance):
    """The companion emulation that Vault, GCP and Kubernetes use, checked on the fake first."""

    @pytest.fixture
    def store(self, memory_store: SecretStore) -> SecretStore:
        return SecretStore(WithoutNativeStages(memory_store.driver))  # type: ignore[arg-type]


class TestEmulatedRotationOnFile(RotationConformance):
    @pytest.fixture
    def store(self, file_store: SecretStore) -> SecretStore:
        return SecretStore(WithoutNativeStages(file_store.driver))  # type: ignore[arg-type]
