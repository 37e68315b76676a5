"""The conformance suites against ssm://, as aws-sm:// runs them: moto in-process and over HTTP.

Every run uses the real boto3 ``ssm`` client; the HTTP runs go through botocore's HTTP stack to
the session's ThreadedMotoServer on a loopback port (``endpoint_url``). Here too: the rotation
and reader-agreement suites, the async facade's suites, the fault-proxy suite
(tests/reliability/test_faults.py's backend-independent tests, given an ssm rig), the fork
tests of a remote store (tests/reliability/test_fork.py, given an ssm URL) and the deadline checks against a server that drips its answer and a dead port.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import secretkit
from secretkit import CachePolicy, RetryPolicy
from secretkit.errors import DeadlineExceededError, UnavailableError
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.faultproxy import Fault, http_response, proxy_for
from secretkit.testing.readers import ReaderAgreement
from secretkit.testing.rotation import RotationConformance
from secretkit.testing.slowdrip import SlowDrip, dead_port
from secretkit.drivers.aws.moto import REGION, fake_aws_env
from tests.aio.blocking import BlockingFacade, ThroughAsync, ThroughAsyncRotation, through_async
from tests.doubles.aws import aws_http_endpoint
from tests.reliability.test_fork import (
    test_a_remote_store_opened_after_the_fork_answers_in_the_child,
    test_a_remote_store_opened_before_the_fork_answers_its_first_read_in_the_child,
    test_the_async_facade_that_ran_calls_before_the_fork_answers_in_the_child,
)
from tests.reliability.test_faults import (
    FLAKY,
    NO_CACHE,
    HttpRig,
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
    with fake_aws_env(), proxy_for(aws_http_endpoint, seed=7) as proxy:

        def open_store(**options: Any) -> SecretStore:
            return secretkit.open(f"ssm://?region={REGION}&endpoint_url={proxy.url}",
                                  connect_timeout=0.5, read_timeout=1, **{"cache": NO_CACHE, **options})

        @contextlib.contextmanager
        def denied() -> Iterator[SecretStore]:
            # SSM denies with HTTP 400 and the JSON error body of its json-1.1 protocol.
            body = json.dumps({"__type": "AccessDeniedException", "message": "User is not authorized"}).encode()
            proxy.set(Fault.RESPOND, response=http_response(400, body, content_type="application/x-amz-json-1.1"))
            with open_store(retry=FLAKY) as store:
                yield store

        yield HttpRig("ssm", proxy, open_store, r"X-Amz-Target: AmazonSSM\.PutParameter", denied)


# -- fork (tests/reliability/test_fork.py's remote-store tests, on ssm) -------------------------


@pytest.fixture
def aws_url(aws_http_endpoint: str) -> Iterator[str]:
    """ssm on moto over HTTP (the fork tests' remote store): every call goes through the
    store's attempt workers."""
    with fake_aws_env():
        yield f"ssm://?region={REGION}&endpoint_url={aws_http_endpoint}"


# -- deadlines (as tests/reliability/test_deadlines.py checks every remote backend) -----------

SLICE = 1.0
QUICK = RetryPolicy(deadline=1.5, attempt_timeout=0.5, initial_backoff=0.05, max_backoff=0.2)
LONG_WAITS = RetryPolicy(max_attempts=50, initial_backoff=0.5, max_backoff=4, deadline=2)


def _open_at(target: str, policy: RetryPolicy) -> SecretStore:
    return secretkit.open(f"ssm://?region={REGION}&endpoint_url=http://{target}", connect_timeout=2, read_timeout=2,
                          retry=policy, cache=CachePolicy.off())


def _timed(fn: Any) -> tuple[float, BaseException | None]:
    began = time.monotonic()
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - the outcome is what the test inspects
        return time.monotonic() - began, exc
    return time.monotonic() - began, None


@pytest.fixture(scope="module")
def drip() -> Iterator[SlowDrip]:
    with SlowDrip() as server:  # one for the module: stopping one waits for its stuck connections
        yield server


@pytest.mark.parametrize("operation", ["get", "put", "list"])
def test_calls_end_within_the_deadline_against_a_slow_drip(operation: str, drip: SlowDrip) -> None:
    """A server answering one byte every 1.5 s never trips botocore's 2 s read timeout; the
    store's deadline still ends every call. A put (not idempotent on SSM) is never sent twice."""
    name = f"/slow/{uuid.uuid4().hex[:8]}"
    calls = {"get": lambda s: s.get(name), "put": lambda s: s.put(name, "value"), "list": lambda s: list(s.list("/"))}
    with fake_aws_env(), _open_at(drip.address, QUICK) as store:
        events: list[Any] = []
        store.add_audit_hook(events.append)
        elapsed, error = _timed(lambda: calls[operation](store))
    assert isinstance(error, (DeadlineExceededError, UnavailableError)), repr(error)
    assert elapsed < QUICK.deadline + SLICE  # type: ignore[operator]
    attempts = events[-1].attempts
    assert attempts == 1 if operation == "put" else attempts >= 2


def test_a_dead_port_is_retried_until_the_deadline_and_not_beyond() -> None:
    with fake_aws_env(), _open_at(f"127.0.0.1:{dead_port()}", LONG_WAITS) as store:
        elapsed, error = _timed(lambda: store.get("/down/x"))
    assert isinstance(error, UnavailableError) and error.attempts >= 2, repr(error)
    assert elapsed < 2 + SLICE
