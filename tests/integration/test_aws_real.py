"""The conformance suite against real AWS Secrets Manager.

Runs only with ``SECRETKIT_TEST_AWS=1`` and working AWS credentials (boto3's normal chain)
and a region (``AWS_REGION``); otherwise every test is skipped, with the reason shown.
Every secret it writes is under a random ``sk-conf-`` prefix and is force-deleted afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance

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


class TestRealAws(StoreConformance):
    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        reason = _skip_reason()
        if reason:
            pytest.skip(reason)
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
        with secretkit.open(f"aws-sm://?region={region}", retry=PATIENT_RETRY) as store:
            yield store
