"""The conformance and rotation suites against real AWS SSM Parameter Store.

Runs only with ``SECRETKIT_TEST_SSM=1`` and working AWS credentials (boto3's normal chain) and a
region (``AWS_REGION``); otherwise every test is skipped, with the reason shown. Every parameter
it writes is under a random ``/sk-conf-`` path and is deleted afterwards (Standard tier: no cost).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.rotation import RotationConformance

pytestmark = pytest.mark.integration

#: SSM throttles PutParameter per account (``TooManyUpdates``, ``ThrottlingException``).
PATIENT_RETRY = {"max_attempts": 8, "initial_backoff": 0.5, "max_backoff": 5.0, "deadline": 60.0}


def _skip_reason() -> str | None:
    if os.environ.get("SECRETKIT_TEST_SSM") != "1":
        return "real SSM test: set SECRETKIT_TEST_SSM=1 (with AWS credentials and AWS_REGION) to run it"
    boto3 = pytest.importorskip("boto3")
    session = boto3.session.Session()
    if session.get_credentials() is None:
        return "real SSM test: SECRETKIT_TEST_SSM=1 but boto3 finds no AWS credentials"
    if not session.region_name:
        return "real SSM test: SECRETKIT_TEST_SSM=1 but no region (set AWS_REGION)"
    return None


@pytest.fixture
def real_store() -> Iterator[SecretStore]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    with secretkit.open(f"ssm://?region={region}", retry=PATIENT_RETRY) as store:
        yield store


class TestRealSsm(StoreConformance):
    @pytest.fixture
    def store(self, real_store: SecretStore) -> SecretStore:
        return real_store


class TestRealSsmRotation(RotationConformance):
    @pytest.fixture
    def store(self, real_store: SecretStore) -> SecretStore:
        return real_store
