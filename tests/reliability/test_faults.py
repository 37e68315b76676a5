"""Retries and the cache under network faults, through the real SDKs and a fault proxy.

Every backend server runs as in the other suites (moto's HTTP server, the OpenBao dev server,
the Kubernetes double, the GCP REST double); a ``FaultProxy`` sits between the SDK and it and
resets connections or answers with the backend's own error shapes. The GCP gRPC transport
gets the same treatment from the double's server-side fault queue.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest

import secretkit
from secretkit import CachePolicy
from secretkit.audit import AuditEvent
from secretkit.errors import PermissionDeniedError, UnavailableError
from secretkit.store import SecretStore
from tests.doubles import gcp_sm, k8s_api, openbao
from tests.doubles.aws import REGION, acquire_http_endpoint, fake_aws_env, release_http_endpoint
from tests.doubles.faultproxy import FaultProxy, canned_http

#: Enough attempts that 30 % transient faults never exhaust them (0.3**8 < 1e-4), tiny waits.
PATIENT = {"max_attempts": 8, "initial_backoff": 0.005, "max_backoff": 0.02, "deadline": 10}
BRIEF = {"max_attempts": 3, "initial_backoff": 0.005, "max_backoff": 0.02, "deadline": 5}
NO_CACHE = CachePolicy.off()


@dataclass
class Backend:
    """One backend behind a fault proxy: how to open a store through it, and its error shapes."""

    name: str
    proxy: FaultProxy
    open_through: Callable[..., SecretStore]  # (**store options) -> store via the proxy
    direct: SecretStore  # the same backend without the proxy, to set up data
    forbidden: bytes
    unavailable: bytes


def _aws(stack: list[Callable[[], None]]) -> Backend:
    endpoint = acquire_http_endpoint()
    stack.append(release_http_endpoint)
    env = fake_aws_env()
    env.__enter__()
    stack.append(lambda: env.__exit__(None, None, None))
    host, port = endpoint.rsplit("//", 1)[1].split(":")
    proxy = FaultProxy((host, int(port)), seed=1).start()
    return Backend(
        "aws-sm", proxy,
        lambda **o: secretkit.open(f"aws-sm://?region={REGION}&endpoint_url={proxy.url}", **o),
        secretkit.open(f"aws-sm://?region={REGION}&endpoint_url={endpoint}", cache=NO_CACHE),
        canned_http(400, {"__type": "AccessDeniedException", "message": "not authorized"},
                    content_type="application/x-amz-json-1.1"),
        canned_http(503, {"__type": "ServiceUnavailableException", "message": "busy"},
                    content_type="application/x-amz-json-1.1", reason="Service Unavailable"),
    )


def _k8s(stack: list[Callable[[], None]]) -> Backend:
    api = k8s_api.shared()
    host, port = api.url.rsplit("//", 1)[1].split(":")
    proxy = FaultProxy((host, int(port)), seed=2).start()
    ns = "reliability"
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    return Backend(
        "k8s", proxy,
        lambda **o: secretkit.open(f"k8s://{ns}?host={proxy.url}&token={k8s_api.ADMIN_TOKEN}", **o),
        secretkit.open(f"k8s://{ns}?host={api.url}&token={k8s_api.ADMIN_TOKEN}", cache=NO_CACHE),
        canned_http(403, {**status, "reason": "Forbidden", "code": 403, "message": "secrets is forbidden"}),
        canned_http(503, {**status, "reason": "ServiceUnavailable", "code": 503, "message": "busy"},
                    reason="Service Unavailable"),
    )


def _vault(stack: list[Callable[[], None]], bao: openbao.OpenBaoServer) -> Backend:
    proxy = FaultProxy(("127.0.0.1", bao.port), seed=3).start()
    return Backend(
        "vault", proxy,
        lambda **o: secretkit.open(f"vault+http://127.0.0.1:{proxy.port}/secret", token=bao.root_token, **o),
        secretkit.open(bao.url("secret"), token=bao.root_token, cache=NO_CACHE),
        canned_http(403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}, reason="Forbidden"),
        canned_http(503, {"errors": ["Vault is sealed"]}, reason="Service Unavailable"),
    )


def _gcp_rest(stack: list[Callable[[], None]]) -> Backend:
    double = gcp_sm.shared()
    host, port = double.rest_url.rsplit("//", 1)[1].split(":")
    proxy = FaultProxy((host, int(port)), seed=4).start()
    url = "gcp-sm://123456789012?transport=rest&insecure=true&endpoint="
    error = {"error": {"code": 403, "message": "Permission denied on resource", "status": "PERMISSION_DENIED"}}
    busy = {"error": {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"}}
    return Backend(
        "gcp-sm", proxy,
        lambda **o: secretkit.open(url + proxy.url, **o),
        secretkit.open(url + double.rest_url, cache=NO_CACHE),
        canned_http(403, error, reason="Forbidden"),
        canned_http(503, busy, reason="Service Unavailable"),
    )


@pytest.fixture(scope="module", params=["aws-sm", "vault", "k8s", "gcp-sm"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    cleanup: list[Callable[[], None]] = []
    if request.param == "vault":
        made = _vault(cleanup, request.getfixturevalue("bao"))
    else:
        made = {"aws-sm": _aws, "k8s": _k8s, "gcp-sm": _gcp_rest}[request.param](cleanup)
    try:
        yield made
    finally:
        made.proxy.stop()
        made.direct.close()
        for undo in reversed(cleanup):
            undo()


@pytest.fixture(autouse=True)
def _clean_vault_env(monkeypatch: pytest.MonkeyPatch) -> None:
    openbao.clean_env(monkeypatch)


@pytest.fixture
def healed(backend: Backend) -> Iterator[Backend]:
    backend.proxy.heal()
    backend.proxy.reset_counts()
    yield backend
    backend.proxy.heal()


class Events:
    def __init__(self, store: SecretStore) -> None:
        self.seen: list[AuditEvent] = []
        store.add_audit_hook(self.seen.append)

    def of(self, operation: str) -> list[AuditEvent]:
        return [e for e in self.seen if e.operation == operation]


def name(prefix: str) -> str:
    return f"reliability/{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("fault", ["reset", "unavailable"])
def test_reads_survive_thirty_percent_transient_faults(healed: Backend, fault: str) -> None:
    key = name("flaky")
    healed.direct.put(key, "steady")
    with healed.open_through(retry=PATIENT, cache=NO_CACHE) as store:
        events = Events(store)
        if fault == "reset":
            healed.proxy.set("reset", rate=0.3)
        else:
            healed.proxy.set("respond", rate=0.3, response=healed.unavailable)
        started = time.monotonic()
        assert all(store.get(key).text == "steady" for _ in range(30))
        elapsed = time.monotonic() - started
    assert healed.proxy.faults[fault if fault == "reset" else "respond"] >= 3
    assert sum(e.attempts for e in events.of("get")) > 30  # the faults were retried, not dodged
    assert elapsed < PATIENT["deadline"]


def test_backend_down_fails_fast_with_our_attempts_only(healed: Backend) -> None:
    key = name("down")
    healed.direct.put(key, "unreachable")
    with healed.open_through(retry=BRIEF, cache=NO_CACHE) as store:
        healed.proxy.reset_counts()
        healed.proxy.set("reset")
        started = time.monotonic()
        with pytest.raises(UnavailableError) as info:
            store.get(key)
        elapsed = time.monotonic() - started
    assert info.value.attempts == BRIEF["max_attempts"]
    # one request per attempt reached the wire: no SDK-level retry multiplied ours
    assert healed.proxy.requests == BRIEF["max_attempts"]
    assert elapsed < 2
    assert "unreachable" not in str(info.value)


def test_permission_denied_is_raised_at_once(healed: Backend) -> None:
    key = name("denied")
    healed.direct.put(key, "private")
    with healed.open_through(retry=PATIENT, cache=NO_CACHE) as store:
        events = Events(store)
        healed.proxy.reset_counts()
        # once: Vault's driver then asks whether its token is still valid (it is: a permission
        # problem, not an authentication one)
        healed.proxy.set("respond", response=healed.forbidden, limit=1)
        with pytest.raises(PermissionDeniedError):
            store.get(key)
    assert [e.attempts for e in events.of("get")] == [1]
    assert healed.proxy.faults["respond"] == 1
    assert healed.proxy.requests == (2 if healed.name == "vault" else 1)


def test_writes_are_retried_only_where_idempotent(healed: Backend) -> None:
    key = name("write")
    healed.direct.put(key, "v1")
    with healed.open_through(retry=BRIEF, cache=NO_CACHE) as store:
        events = Events(store)
        healed.proxy.set("respond", response=healed.unavailable)
        with pytest.raises(UnavailableError):
            store.put(key, "v2")
        idempotent = store.capabilities.idempotent_put
    attempts = [e.attempts for e in events.of("put")]
    assert attempts == [BRIEF["max_attempts"] if idempotent else 1]
    assert healed.direct.get(key).text == "v1"


def test_cache_serves_stale_through_an_outage_until_max_stale(healed: Backend) -> None:
    warm, cold = name("warm"), name("cold")
    healed.direct.put(warm, "cached-value")
    healed.direct.put(cold, "never-read")
    policy = CachePolicy(ttl=0.3, jitter=0, refresh_ahead=1, max_stale=1.2, check_version=False)
    with healed.open_through(retry=BRIEF, cache=policy) as store:
        assert store.get(warm).text == "cached-value"
        healed.proxy.set("reset")
        time.sleep(0.4)  # past the TTL: the entry is stale, the backend is down
        assert store.get(warm).text == "cached-value"
        assert store.cache_stats().stale_served >= 1
        started = time.monotonic()
        with pytest.raises(UnavailableError):
            store.get(cold)  # nothing cached: fail fast, no stale value to hide behind
        assert time.monotonic() - started < 2
        time.sleep(1.3)  # past max_stale
        with pytest.raises(UnavailableError):
            store.get(warm)


def test_permission_denied_is_not_hidden_behind_a_stale_value(healed: Backend) -> None:
    key = name("revoked")
    healed.direct.put(key, "cached-value")
    policy = CachePolicy(ttl=0.2, jitter=0, refresh_ahead=1, max_stale=3600, check_version=False)
    with healed.open_through(retry=BRIEF, cache=policy) as store:
        assert store.get(key).text == "cached-value"
        healed.proxy.set("respond", response=healed.forbidden, limit=1)
        time.sleep(0.3)
        with pytest.raises(PermissionDeniedError):
            store.get(key)


# -- GCP over gRPC: the double's own fault queue (HTTP/2 is not proxied per request) ----------


@pytest.fixture(scope="module")
def gcp_grpc() -> Iterator[tuple[gcp_sm.RunningDouble, SecretStore]]:
    double = gcp_sm.shared()
    with secretkit.open("gcp-sm://test-project", endpoint=double.grpc_target, insecure=True,
                        retry=PATIENT, cache=NO_CACHE) as store:
        yield double, store


def test_grpc_reads_survive_transient_status_codes(gcp_grpc: tuple[gcp_sm.RunningDouble, SecretStore]) -> None:
    import random

    double, store = gcp_grpc
    key = name("grpc")
    store.put(key, "steady")
    rng = random.Random(5)
    events = Events(store)
    injected = 0
    for _ in range(30):
        if rng.random() < 0.3:
            code = rng.choice([grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED])
            double.model.fail("AccessSecretVersion", code, times=rng.randint(1, 3))
            injected += 1
        assert store.get(key).text == "steady"
    assert injected >= 3 and sum(e.attempts for e in events.of("get")) > 30


def test_grpc_permission_denied_is_not_retried(gcp_grpc: tuple[gcp_sm.RunningDouble, SecretStore]) -> None:
    double, store = gcp_grpc
    key = name("grpc-denied")
    store.put(key, "x")
    events = Events(store)
    double.model.fail("AccessSecretVersion", grpc.StatusCode.PERMISSION_DENIED, times=1)
    with pytest.raises(PermissionDeniedError):
        store.get(key)
    assert [e.attempts for e in events.of("get")] == [1]
    assert store.get(key).text == "x"


def test_grpc_proxy_reset_is_unavailable(gcp_grpc: tuple[gcp_sm.RunningDouble, SecretStore]) -> None:
    double, _ = gcp_grpc
    host, port = double.grpc_target.split(":")
    with FaultProxy((host, int(port)), http=False, seed=6) as proxy:
        proxy.set("reset")
        with secretkit.open("gcp-sm://test-project", endpoint=proxy.address, insecure=True,
                            retry=BRIEF, cache=NO_CACHE) as store:
            started = time.monotonic()
            with pytest.raises(UnavailableError) as info:
                store.get(name("grpc-down"))
            assert info.value.attempts == BRIEF["max_attempts"]
            assert time.monotonic() - started < 5
