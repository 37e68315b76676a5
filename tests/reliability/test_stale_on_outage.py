"""The read cache during an outage, through the fault proxy, on aws-sm (moto) and the k8s double.

A warm secret keeps being served (stale) while the backend is down, until ``max_stale``
past its expiry; then ``UnavailableError``. A secret never read fails fast. A permission
error is raised at once even though a stale value exists (a denied caller must not keep
reading it), and that value is not served afterwards either.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

import secretkit
from secretkit import AuditEvent, CachePolicy, RetryPolicy, SecretStore
from tests.doubles import k8s_api
from tests.doubles.aws import REGION, aws_http_endpoint, fake_aws_env
from secretkit.testing.faultproxy import Fault, FaultProxy, http_response, proxy_for

__all__ = ["aws_http_endpoint"]

TTL = 0.2
MAX_STALE = 0.6
#: Short real-time windows; no jitter or refresh-ahead so expiry is exactly TTL after the read.
CACHE = CachePolicy(ttl=TTL, jitter=0, refresh_ahead=1, max_stale=MAX_STALE, negative_ttl=0, check_version=False)
DOWN = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05, deadline=2)


@dataclass
class Rig:
    proxy: FaultProxy
    open_store: Callable[[], SecretStore]
    forbidden: bytes  # the backend's own 403-style answer, served by the proxy



@pytest.fixture
def aws(aws_http_endpoint: str) -> Iterator[Rig]:
    with fake_aws_env(), proxy_for(aws_http_endpoint, seed=11) as proxy:
        body = json.dumps({"__type": "AccessDeniedException", "message": "User is not authorized"}).encode()
        yield Rig(
            proxy,
            lambda: secretkit.open(f"aws-sm://?region={REGION}&endpoint_url={proxy.url}", connect_timeout=0.5,
                                   read_timeout=1, retry=DOWN, cache=CACHE),
            http_response(400, body, content_type="application/x-amz-json-1.1"),
        )


@pytest.fixture
def k8s() -> Iterator[Rig]:
    api = k8s_api.shared()
    with proxy_for(api.url, seed=11) as proxy:
        status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
                  "message": 'secrets is forbidden: User "x" cannot get resource "secrets"'}
        yield Rig(
            proxy,
            lambda: secretkit.open("k8s://stale-outage", host=proxy.url, token=k8s_api.ADMIN_TOKEN, timeout=1,
                                   retry=DOWN, cache=CACHE),
            http_response(403, json.dumps(status).encode(), content_type="application/json"),
        )


@pytest.fixture(params=["aws", "k8s"])
def rig(request: pytest.FixtureRequest) -> Rig:
    value: Rig = request.getfixturevalue(request.param)
    return value


def _events(store: SecretStore) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    store.add_audit_hook(events.append)
    return events


def _sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()))


def test_stale_until_max_stale_then_unavailable(rig: Rig) -> None:
    warm, cold = f"warm-{uuid.uuid4().hex[:8]}", f"cold-{uuid.uuid4().hex[:8]}"
    with rig.open_store() as store:
        store.put(warm, "w")
        store.put(cold, "c")
        read_at = time.monotonic()
        assert store.get(warm).value.text == "w"
        events = _events(store)
        rig.proxy.reset_counts()
        rig.proxy.down()

        assert store.get(warm).value.text == "w"  # fresh hit: the outage is invisible
        assert rig.proxy.requests == 0

        began = time.perf_counter()
        with pytest.raises(secretkit.UnavailableError) as caught:
            store.get(cold)  # nothing cached: fails fast after the policy's attempts
        assert time.perf_counter() - began < 1.0
        assert caught.value.attempts == DOWN.max_attempts

        _sleep_until(read_at + TTL + 0.05)
        rig.proxy.reset_counts()
        assert store.get(warm).value.text == "w"  # expired: the backend is asked, the stale value served
        assert events[-1].cache == "stale"
        assert rig.proxy.requests == DOWN.max_attempts  # it really tried, with retries, before serving stale
        assert store.cache_stats().stale_served >= 1

        _sleep_until(read_at + TTL + MAX_STALE + 0.05)
        with pytest.raises(secretkit.UnavailableError):
            store.get(warm)  # past max_stale: no more stale answers

        rig.proxy.pass_through()
        assert store.get(warm).value.text == "w"  # and it recovers with the backend


def test_permission_denied_beats_a_stale_value(rig: Rig) -> None:
    name = f"denied-{uuid.uuid4().hex[:8]}"
    with rig.open_store() as store:
        store.put(name, "v")
        read_at = time.monotonic()
        store.get(name)
        events = _events(store)
        _sleep_until(read_at + TTL + 0.05)  # expired, well inside max_stale
        rig.proxy.reset_counts()
        rig.proxy.set(Fault.RESPOND, response=rig.forbidden)
        with pytest.raises(secretkit.PermissionDeniedError):
            store.get(name)
        assert events[-1].attempts == 1 and events[-1].outcome == "permission_denied"
        assert rig.proxy.requests == 1
        rig.proxy.down()  # now a transient failure: the denied value must not come back as stale
        with pytest.raises(secretkit.UnavailableError):
            store.get(name)
