"""The conformance suite against aws-sm://, twice: moto in-process, and moto over HTTP.

Both runs use the real boto3 client; the second goes through botocore's HTTP stack to a
ThreadedMotoServer on a loopback port (``endpoint_url``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from tests.doubles.aws import REGION, aws_faithful_moto, fake_aws_env, moto_http_server

moto = pytest.importorskip("moto")


@pytest.fixture(scope="session")
def aws_http_endpoint() -> Iterator[str]:
    """One moto server for the whole session, patched to AWS's behaviour."""
    with fake_aws_env(), aws_faithful_moto(), moto_http_server() as url:
        yield url


class TestAwsInProcess(StoreConformance):
    @pytest.fixture(scope="class")
    def mocked(self) -> Iterator[None]:
        with fake_aws_env(), aws_faithful_moto(), moto.mock_aws():
            yield

    @pytest.fixture
    def store(self, mocked: None) -> Iterator[SecretStore]:
        with secretkit.open(f"aws-sm://?region={REGION}") as store:
            yield store


class TestAwsOverHttp(StoreConformance):
    @pytest.fixture
    def store(self, aws_http_endpoint: str) -> Iterator[SecretStore]:
        with fake_aws_env(), secretkit.open(f"aws-sm://?region={REGION}&endpoint_url={aws_http_endpoint}") as store:
            yield store
