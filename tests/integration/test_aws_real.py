"""The conformance suites and the native-name check against real AWS Secrets Manager.

Runs only with ``SECRETKIT_TEST_AWS=1`` and working AWS credentials (boto3's normal chain)
and a region (``AWS_REGION``); otherwise every test is skipped, with the reason shown.
Every secret it writes is under a random ``sk-conf-`` prefix and is force-deleted afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.rotation import RotationConformance
from tests.integration import aws_account

pytestmark = pytest.mark.integration


@pytest.fixture
def real_store() -> Iterator[SecretStore]:
    with aws_account.real_store("aws-sm", "SECRETKIT_TEST_AWS", "real AWS test") as store:
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
