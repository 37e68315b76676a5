"""The conformance and rotation suites against real AWS SSM Parameter Store.

Runs only with ``SECRETKIT_TEST_SSM=1`` and working AWS credentials (boto3's normal chain) and a
region (``AWS_REGION``); otherwise every test is skipped, with the reason shown. Every parameter
it writes is under a random ``/sk-conf-`` path and is deleted afterwards (Standard tier: no cost).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.rotation import RotationConformance
from tests.integration import aws_account

pytestmark = pytest.mark.integration


@pytest.fixture
def real_store() -> Iterator[SecretStore]:
    with aws_account.real_store("ssm", "SECRETKIT_TEST_SSM", "real SSM test") as store:
        yield store


class TestRealSsm(StoreConformance):
    @pytest.fixture
    def store(self, real_store: SecretStore) -> SecretStore:
        return real_store


class TestRealSsmRotation(RotationConformance):
    @pytest.fixture
    def store(self, real_store: SecretStore) -> SecretStore:
        return real_store
