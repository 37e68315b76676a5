"""The conformance suite against k8s://, through the real kubernetes client and the API double."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import secretkit
from secretkit.errors import NotFoundError
from secretkit.secret import Stage
from secretkit.store import SecretStore
from secretkit.testing.conformance import NameFactory, StoreConformance
from secretkit.testing.readers import ReaderAgreement
from secretkit.testing.rotation import RotationConformance
from tests.doubles import k8s_api


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

    def test_previous_moves_only_at_a_promotion(self, store: SecretStore, new_name: NameFactory) -> None:
        """Kubernetes keeps no history, so only a promotion moves ``previous``, a plain put does
        not."""
        assert not store.capabilities.versions and store.stages == "native"
        name = new_name("staged")
        store.put(name, "old")
        store.put(name, "new")
        assert store.get(name, stage=Stage.CURRENT).text == "new"
        with pytest.raises(NotFoundError):
            store.get(name, stage=Stage.PREVIOUS)
        store.rotate(name, generate=lambda current: "newer")
        assert store.get(name, stage=Stage.PREVIOUS).text == "new"
        assert Stage.CURRENT in store.get(name).stages


class TestKubernetesRotation(RotationConformance):
    """Rotation with companion Secrets: `pending` while a rotation runs, `previous` after it."""

    store = TestKubernetesStore.store


class TestKubernetesReaders(ReaderAgreement):
    """Kubernetes holds text as the one data key `value`: every reader must still give the text."""

    store = TestKubernetesStore.store

    @pytest.fixture
    def cli_url(self, kube_api: k8s_api.FakeKubeAPI) -> str:
        return f"k8s://conformance?host={kube_api.url}&token={k8s_api.ADMIN_TOKEN}"
