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
from secretkit.testing.readers import ReaderAgreement
from secretkit.testing.rotation import RotationConformance
from secretkit.drivers.aws.moto import REGION, aws_faithful_moto, fake_aws_env
from tests.doubles.aws import aws_http_endpoint

moto = pytest.importorskip("moto")
__all__ = ["aws_http_endpoint"]  # the session fixture, shared with tests/aws


@pytest.fixture(scope="module")
def mocked() -> Iterator[None]:
    """moto in-process, shared by the store and rotation suites of this module."""
    with fake_aws_env(), aws_faithful_moto(), moto.mock_aws():
        yield


class TestAwsInProcess(StoreConformance):
    tells_current_version = True

    @pytest.fixture
    def store(self, mocked: None) -> Iterator[SecretStore]:
        with secretkit.open(f"aws-sm://?region={REGION}") as store:
            yield store


class TestAwsOverHttp(StoreConformance):
    @pytest.fixture
    def store(self, aws_http_endpoint: str) -> Iterator[SecretStore]:
        with fake_aws_env(), secretkit.open(f"aws-sm://?region={REGION}&endpoint_url={aws_http_endpoint}") as store:
            yield store


class TestAwsRotationInProcess(RotationConformance):
    """Rotation on AWS's own staging labels (AWSPENDING/AWSCURRENT/AWSPREVIOUS)."""

    store = TestAwsInProcess.store


class TestAwsRotationOverHttp(RotationConformance):
    store = TestAwsOverHttp.store


class TestAwsReaders(ReaderAgreement):
    """moto in-process: the command line run in this process reaches the same mock."""

    store = TestAwsInProcess.store
