"""The conformance suite against memory:// with the cache on: caching must not change the contract."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

import secretkit
from secretkit.cache import CachePolicy
from secretkit.rotation import ROTATION_METHODS
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.rotation import RotationConformance


def _cached() -> Iterator[SecretStore]:
    with secretkit.open("memory://", cache=CachePolicy(enabled=True, negative_ttl=30)) as store:
        assert store.cache_policy is not None
        yield store


class TestMemoryCached(StoreConformance):
    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        yield from _cached()


class TestMemoryCachedRotation(RotationConformance):
    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        yield from _cached()


class _CompanionStagesOnly:
    """Hides memory's native stage primitives, so rotation runs on companions (as on Vault, GCP, k8s)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.capabilities = dataclasses.replace(inner.capabilities, stages=False)

    def __getattr__(self, attr: str) -> Any:
        if attr in ROTATION_METHODS:
            raise AttributeError(attr)
        return getattr(self._inner, attr)


class TestMemoryCachedCompanionRotation(RotationConformance):
    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        for cached in _cached():
            with SecretStore(_CompanionStagesOnly(cached.driver), options=cached.options) as store:  # type: ignore[arg-type]
                yield store
