"""The conformance suites against ssm://, as aws-sm:// runs them: moto in-process and over HTTP.

Every run uses the real boto3 ``ssm`` client; the HTTP runs go through botocore's HTTP stack to
the session's ThreadedMotoServer on a loopback port (``endpoint_url``). Here too: the rotation
and reader-agreement suites, the async facade's suites, the fault-proxy suite
(tests/reliability/test_faults.py's backend-independent tests, given an ssm rig), the fork
tests of a remote store (tests/reliability/test_fork.py, given an ssm URL). The deadline checks
against a server that drips its answer and a dead port are tests/reliability/test_deadlines.py's,
which runs them on ssm:// too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.readers import ReaderAgreement
from secretkit.testing.rotation import RotationConformance
from secretkit.drivers.aws.moto import REGION, fake_aws_env
from tests.aio.blocking import BlockingFacade, ThroughAsync, ThroughAsyncRotation, through_async
from tests.doubles.aws import aws_http_endpoint
from tests.reliability.test_fork import (
    test_a_remote_store_opened_after_the_fork_answers_in_the_child,
    test_a_remote_store_opened_before_the_fork_answers_its_first_read_in_the_child,
    test_the_async_facade_that_ran_calls_before_the_fork_answers_in_the_child,
)
from tests.reliability.test_faults import (
    HttpRig,
    aws_json_rig,
    test_dead_backend_fails_fast_with_attempt_count,
    test_permission_denied_is_not_retried,
    test_put_is_retried_only_where_idempotent,
    test_reads_survive_30_percent_transient_faults,
)

moto = pytest.importorskip("moto")
# the session's moto server; the fault and fork suites' tests run here with the ssm rig and URL below
__all__ = [
    "aws_http_endpoint",
    "test_dead_backend_fails_fast_with_attempt_count",
    "test_permission_denied_is_not_retried",
    "test_put_is_retried_only_where_idempotent",
    "test_reads_survive_30_percent_transient_faults",
    "test_a_remote_store_opened_after_the_fork_answers_in_the_child",
    "test_a_remote_store_opened_before_the_fork_answers_its_first_read_in_the_child",
    "test_the_async_facade_that_ran_calls_before_the_fork_answers_in_the_child",
]


@pytest.fixture(scope="module")
def mocked() -> Iterator[None]:
    """moto in-process, shared by the suites of this module (moto's SSM needs no fidelity patch
    for what these suites use; docs/backends/ssm.md lists where it differs from SSM)."""
    with fake_aws_env(), moto.mock_aws():
        yield


class TestSsmInProcess(StoreConformance):
    @pytest.fixture
    def store(self, mocked: None) -> Iterator[SecretStore]:
        with secretkit.open(f"ssm://?region={REGION}") as store:
            yield store


class TestSsmOverHttp(StoreConformance):
    @pytest.fixture
    def store(self, aws_http_endpoint: str) -> Iterator[SecretStore]:
        with fake_aws_env(), secretkit.open(f"ssm://?region={REGION}&endpoint_url={aws_http_endpoint}") as store:
            yield store


class TestSsmRotationInProcess(RotationConformance):
    """Rotation: ``previous`` from SSM's history, pending in the store's companion parameter."""

    store = TestSsmInProcess.store


class TestSsmRotationOverHttp(RotationConformance):
    store = TestSsmOverHttp.store


class TestSsmReaders(ReaderAgreement):
    """moto in-process: the command line run in this process reaches the same mock."""

    store = TestSsmInProcess.store


class TestSsmThroughAsync(ThroughAsync):
    """The conformance suite through the async facade (ssm:// caches by default, so every miss
    goes through the cache's join, the pool and the flight callbacks)."""

    @pytest.fixture
    def store(self, mocked: None) -> Iterator[BlockingFacade]:
        with secretkit.open(f"ssm://?region={REGION}") as sync, through_async(sync) as store:
            assert store.cache_policy is not None
            yield store


class TestSsmRotationThroughAsync(ThroughAsyncRotation):
    store = TestSsmThroughAsync.store


# -- faults on the wire (tests/reliability/test_faults.py's suite, on ssm) --------------------


@pytest.fixture
def rig(aws_http_endpoint: str) -> Iterator[HttpRig]:
    with aws_json_rig(aws_http_endpoint, "ssm", r"X-Amz-Target: AmazonSSM\.PutParameter") as rig:
        yield rig


# -- fork (tests/reliability/test_fork.py's remote-store tests, on ssm) -------------------------


@pytest.fixture
def aws_url(aws_http_endpoint: str) -> Iterator[str]:
    """ssm on moto over HTTP (the fork tests' remote store): every call goes through the
    store's attempt workers."""
    with fake_aws_env():
        yield f"ssm://?region={REGION}&endpoint_url={aws_http_endpoint}"
