"""The conformance and rotation suites through the async facade on aws-sm://, moto in-process
(made as tests/conformance/test_aws.py makes it). aws-sm:// caches by default, so every miss
goes through ``Cache.join``, the pool and the flight callbacks, on the real boto3 client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import secretkit
from tests.aio.blocking import BlockingFacade, ThroughAsync, ThroughAsyncRotation, through_async

moto = pytest.importorskip("moto")


@pytest.fixture(scope="module")
def mocked() -> Iterator[None]:
    """moto in-process (as tests/conformance/test_aws.py makes it)."""
    from tests.doubles.aws import aws_faithful_moto, fake_aws_env

    with fake_aws_env(), aws_faithful_moto(), moto.mock_aws():
        yield


class TestAwsThroughAsync(ThroughAsync):
    @pytest.fixture
    def store(self, mocked: None) -> Iterator[BlockingFacade]:
        from tests.doubles.aws import REGION

        with secretkit.open(f"aws-sm://?region={REGION}") as sync, through_async(sync) as store:
            assert store.cache_policy is not None
            yield store


class TestAwsRotationThroughAsync(ThroughAsyncRotation):
    store = TestAwsThroughAsync.store
