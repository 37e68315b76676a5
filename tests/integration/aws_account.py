"""What the tests against a real AWS account share: the reason to skip them when none is set
up (shown by pytest), and a store on it that waits out AWS's own delays."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

import secretkit
from secretkit.store import SecretStore

#: AWS frees a force-deleted secret's name asynchronously, and throttles writes per account (SSM's
#: ``TooManyUpdates``, ``ThrottlingException``): re-creating or re-writing may need a few seconds.
PATIENT_RETRY = {"max_attempts": 8, "initial_backoff": 0.5, "max_backoff": 5.0, "deadline": 60.0}


def skip_reason(flag: str, what: str) -> str | None:
    """Why a ``what`` test (``real SSM test``) cannot run, or None: ``flag`` must be ``1``, and
    boto3's normal chain must find credentials and a region."""
    if os.environ.get(flag) != "1":
        return f"{what}: set {flag}=1 (with AWS credentials and AWS_REGION) to run it"
    boto3 = pytest.importorskip("boto3")
    session = boto3.session.Session()
    if session.get_credentials() is None:
        return f"{what}: {flag}=1 but boto3 finds no AWS credentials"
    if not session.region_name:
        return f"{what}: {flag}=1 but no region (set AWS_REGION)"
    return None


@contextlib.contextmanager
def real_store(scheme: str, flag: str, what: str) -> Iterator[SecretStore]:
    """A ``scheme://`` store on the real account in its region, or the test skipped (see
    ``skip_reason``)."""
    reason = skip_reason(flag, what)
    if reason:
        pytest.skip(reason)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    with secretkit.open(f"{scheme}://?region={region}", retry=PATIENT_RETRY) as store:
        yield store
