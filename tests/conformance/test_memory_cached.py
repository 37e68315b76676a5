"""The conformance suite against memory:// with the cache on: caching must not change the contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import secretkit
from secretkit.cache import CachePolicy
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.rotation import RotationConformance, WithoutNativeStages


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


class TestMemoryCachedCompanionRotation(RotationConformance):
    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        for cached in _cached():
            with SecretStore(WithoutNativeStages(cached.driver), options=cached.options) as store:  # type: ignore[arg-type]
                yield store
