"""The conformance suite against k8s://, through the real kubernetes client and the API double."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import secretkit
from tests.doubles import k8s_api
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.rotation import RotationConformance


@pytest.fixture(scope="session")
def kube_api() -> k8s_api.FakeKubeAPI:
    return k8s_api.shared()


class TestKubernetesStore(StoreConformance):
    @pytest.fixture
    def store(self, kube_api: k8s_api.FakeKubeAPI) -> Iterator[SecretStore]:
        with secretkit.open(
            "k8s://conformance", host=kube_api.url, token=k8s_api.ADMIN_TOKEN, **{"retry.initial_backoff": 0.01}
        ) as store:
            yield store


class TestKubernetesRotation(RotationConformance):
    """Rotation with companion objects; `previous` survives in one though Kubernetes keeps no history."""

    store = TestKubernetesStore.store
