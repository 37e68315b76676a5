"""The conformance and rotation suites, run through the async facade (``tests/aio/blocking.py``):
memory (cache off, as by default, and on) and file; aws-sm:// on moto is in
``test_aio_conformance_aws.py``.

OpenBao, GCP and Kubernetes join the same way (see the docstring of ``blocking.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import secretkit
from secretkit.cache import CachePolicy
from secretkit.store import SecretStore
from secretkit.testing.rotation import WithoutNativeStages
from tests.aio.blocking import BlockingFacade, ThroughAsync, ThroughAsyncRotation, through_async


class TestMemoryThroughAsync(ThroughAsync):
    @pytest.fixture
    def store(self, memory_store: SecretStore) -> Iterator[BlockingFacade]:
        with through_async(memory_store) as store:
            yield store


class TestMemoryRotationThroughAsync(ThroughAsyncRotation):
    store = TestMemoryThroughAsync.store


def _cached() -> Iterator[SecretStore]:
    with secretkit.open("memory://", cache=CachePolicy(enabled=True, negative_ttl=30)) as store:
        yield store


class TestMemoryCachedThroughAsync(ThroughAsync):
    """With the cache on, misses go through ``Cache.join`` and the flight callbacks."""

    @pytest.fixture
    def store(self) -> Iterator[BlockingFacade]:
        for cached in _cached():
            with through_async(cached, max_workers=4) as store:
                yield store


class TestMemoryCachedRotationThroughAsync(ThroughAsyncRotation):
    store = TestMemoryCachedThroughAsync.store


class TestCompanionRotationThroughAsync(ThroughAsyncRotation):
    """The emulated pending stage (Vault, GCP, Kubernetes) through the facade, cache on."""

    @pytest.fixture
    def store(self) -> Iterator[BlockingFacade]:
        for cached in _cached():
            emulated = SecretStore(WithoutNativeStages(cached.driver), options=cached.options)  # type: ignore[arg-type]
            with emulated, through_async(emulated) as store:
                yield store


class TestFileThroughAsync(ThroughAsync):
    @pytest.fixture
    def store(self, file_store: SecretStore) -> Iterator[BlockingFacade]:
        with through_async(file_store) as store:
            yield store


class TestFileRotationThroughAsync(ThroughAsyncRotation):
    store = TestFileThroughAsync.store
