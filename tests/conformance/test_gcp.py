"""The conformance suite against gcp-sm://, through the real client and a loopback wire double.

Both transports of google-cloud-secret-manager run the suite: gRPC (the default) and REST.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.readers import ReaderAgreement
from secretkit.testing.rotation import RotationConformance
from tests.doubles import gcp_sm


@pytest.fixture(scope="session")
def gcp_double() -> gcp_sm.RunningDouble:
    return gcp_sm.shared()


class TestGcpGrpc(StoreConformance):
    @pytest.fixture
    def store(self, gcp_double: gcp_sm.RunningDouble) -> Iterator[SecretStore]:
        with secretkit.open("gcp-sm://test-project", endpoint=gcp_double.grpc_target, insecure=True) as store:
            yield store


class TestGcpRest(StoreConformance):
    @pytest.fixture
    def store(self, gcp_double: gcp_sm.RunningDouble) -> Iterator[SecretStore]:
        url = f"gcp-sm://123456789012?transport=rest&endpoint={gcp_double.rest_url}&insecure=true"
        with secretkit.open(url) as store:
            yield store


class TestGcpRotation(RotationConformance):
    """Rotation with companion stages: the pending value never becomes `latest` before promotion."""

    store = TestGcpGrpc.store


class TestGcpReaders(ReaderAgreement):
    store = TestGcpGrpc.store

    @pytest.fixture
    def cli_url(self, gcp_double: gcp_sm.RunningDouble) -> str:
        return f"gcp-sm://test-project?endpoint={gcp_double.grpc_target}&insecure=true"
