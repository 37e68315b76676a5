"""The conformance and rotation suites through the async facade on OpenBao (KV v2), the GCP
double (gRPC) and the Kubernetes API double — opened exactly as tests/conformance/ opens them,
so every backend's real SDK runs under the async path too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import secretkit
from tests.aio.blocking import BlockingFacade, ThroughAsync, ThroughAsyncRotation, through_async
from tests.doubles import gcp_sm, k8s_api, openbao


@pytest.fixture(autouse=True)
def _no_shell_vault_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    openbao.clean_env(monkeypatch)


class TestVaultThroughAsync(ThroughAsync):
    @pytest.fixture
    def store(self, bao: openbao.OpenBaoServer) -> Iterator[BlockingFacade]:
        with secretkit.open(bao.url("secret"), token=bao.root_token) as sync, through_async(sync) as store:
            yield store


class TestVaultRotationThroughAsync(ThroughAsyncRotation):
    store = TestVaultThroughAsync.store


class TestGcpThroughAsync(ThroughAsync):
    @pytest.fixture
    def store(self) -> Iterator[BlockingFacade]:
        double = gcp_sm.shared()
        with secretkit.open("gcp-sm://test-project", endpoint=double.grpc_target, insecure=True) as sync, \
                through_async(sync) as store:
            yield store


class TestGcpRotationThroughAsync(ThroughAsyncRotation):
    store = TestGcpThroughAsync.store


class TestKubernetesThroughAsync(ThroughAsync):
    @pytest.fixture
    def store(self) -> Iterator[BlockingFacade]:
        api = k8s_api.shared()
        with secretkit.open(
            "k8s://conformance-async", host=api.url, token=k8s_api.ADMIN_TOKEN, **{"retry.initial_backoff": 0.01}
        ) as sync, through_async(sync) as store:
            yield store


class TestKubernetesRotationThroughAsync(ThroughAsyncRotation):
    store = TestKubernetesThroughAsync.store
