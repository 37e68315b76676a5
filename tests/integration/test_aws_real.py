"""The conformance suites and the native-name check against real AWS Secrets Manager.

Runs only with ``SECRETKIT_TEST_AWS=1`` and working AWS credentials (boto3's normal chain)
and a region (``AWS_REGION``); otherwise every test is skipped, with the reason shown.
Every secret it writes is under a random ``sk-conf-`` prefix and is force-deleted afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.rotation import RotationConformance

pytestmark = pytest.mark.integration

# AWS frees a force-deleted name asynchronously, so re-creating it may need a few seconds.
PATIENT_RETRY = {"max_attempts": 8, "initial_backoff": 0.5, "max_backoff": 5.0, "deadline": 60.0}


def _skip_reason() -> str | None:
    if os.environ.get("SECRETKIT_TEST_AWS") != "1":
        return "real AWS test: set SECRETKIT_TEST_AWS=1 (with AWS credentials and AWS_REGION) to run it"
    boto3 = pytest.importorskip("boto3")
    session = boto3.session.Session()
    if session.get_credentials() is None:
        return "real AWS test: SECRETKIT_TEST_AWS=1 but boto3 finds no AWS credentials"
    if not session.region_name:
        return "real AWS test: SECRETKIT_TEST_AWS=1 but no region (set AWS_REGION)"
    return None


@pytest.fixture
def real_store() -> Iterator[SecretStore]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    with secretkit.open(f"aws-sm://?region={region}", retry=PATIENT_RETRY) as store:
        yield store


class TestRealAws(StoreConformance):
    @pytest.fixture
    def store(self, real_store: SecretStore) -> SecretStore:
        return real_store


class TestRealAwsRotation(RotationConformance):
    @pytest.fixture
    def store(self, real_store: SecretStore) -> SecretStore:
        return real_store


def test_a_terraform_style_name_is_one_secret(real_store: SecretStore) -> None:
    """A name ending in '-' plus six characters (AWS's ARN-suffix shape) is reached as written."""
    name = f"sk-conf-{uuid.uuid4().hex[:10]}/rds/db-master"
    client = real_store.client
    arn = client.create_secret(Name=name, SecretString='{"username":"app","password":"pw","port":5432}')["ARN"]
    try:
        assert real_store.get(name)["port"] == "5432"
        real_store.put(name, {"username": "app", "password": "new"})
        assert '"password":"new"' in client.get_secret_value(SecretId=arn)["SecretString"]
        assert list(real_store.list(name.rsplit("/", 2)[0] + "/")) == [name]
    finally:
        client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
