"""Retry under faults (issue 7): each backend's real SDK, with faults injected on the wire.

HTTP backends (moto's server for aws-sm, the Kubernetes API double, an OpenBao dev server)
sit behind ``FaultProxy`` in per-request mode, so keep-alive connections need no special
client setup. The GCP double is gRPC: its calls share one HTTP/2 connection, so transient
faults are answered by the double itself (``fail``/``fail_randomly``) and the proxy, in
per-connection mode, plays the backend that is down.

What must hold everywhere: transient faults are retried until the read succeeds, and each
injected fault costs exactly one attempt (so no SDK retries hide below ours); a dead backend
fails fast with ``UnavailableError`` carrying the attempts made; a permission error is
never retried; a put is retried only where the driver declares it idempotent.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

import secretkit
from secretkit import AuditEvent, CachePolicy, RetryPolicy, SecretStore
from tests.doubles import gcp_sm, k8s_api, openbao
from tests.doubles.aws import REGION, aws_http_endpoint, fake_aws_env
from secretkit.testing.faultproxy import SERVICE_UNAVAILABLE, Fault, FaultProxy, http_response, proxy_for

__all__ = ["aws_http_endpoint"]  # the shared moto server fixture, used below by name

#: Enough attempts that 30% faults never exhaust them (0.3**8 per read), tiny waits.
FLAKY = RetryPolicy(max_attempts=8, initial_backoff=0.005, max_backoff=0.02, deadline=5)
#: The issue's policy for a dead backend: three quick attempts, two seconds at most.
DOWN = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05, deadline=2)
#: A put that fails once must be retried once where that is safe.
TWICE = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01, deadline=2)
READS = 30
#: Every read here must reach the backend: these tests are about retries, not the cache
#: (tests/reliability/test_stale_on_outage.py covers the cache during outages).
NO_CACHE = CachePolicy.off()


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Audit:
    """Collects a store's audit events (one per operation, with its attempt count)."""

    events: list[AuditEvent] = field(default_factory=list)

    def __call__(self, event: AuditEvent) -> None:
        self.events.append(event)

    def last(self, operation: str) -> AuditEvent:
        return [e for e in self.events if e.operation == operation][-1]

    def retries(self, operation: str) -> int:
        return sum(e.attempts - 1 for e in self.events if e.operation == operation)


def _count(proxy: FaultProxy, pattern: str) -> int:
    """Requests seen by the proxy whose request line matches ``pattern``."""
    return sum(1 for line in proxy.heads if re.search(pattern, line))


def _audited(store: SecretStore) -> Audit:
    audit = Audit()
    store.add_audit_hook(audit)
    return audit


# -- HTTP backends behind the proxy ---------------------------------------------------


@dataclass
class HttpRig:
    """One backend behind a proxy: how to open a store through it and how to provoke a 403."""

    backend: str
    proxy: FaultProxy
    open_store: Callable[..., SecretStore]
    #: regex matching the request head of a put's write request
    write_request: str
    #: a context in which reads are refused with 403 (a store opened inside it, or canned answers)
    denied: Callable[[], contextlib.AbstractContextManager[SecretStore]]



@contextlib.contextmanager
def aws_json_rig(endpoint: str, scheme: str, write_request: str) -> Iterator[HttpRig]:
    """A ``scheme://`` store of an AWS service speaking awsJson1_1 (Secrets Manager, SSM) on moto
    at ``endpoint``, behind a proxy."""
    with fake_aws_env(), proxy_for(endpoint, seed=7) as proxy:

        def open_store(**options: Any) -> SecretStore:
            return secretkit.open(f"{scheme}://?region={REGION}&endpoint_url={proxy.url}",
                                  connect_timeout=0.5, read_timeout=1, **{"cache": NO_CACHE, **options})

        @contextlib.contextmanager
        def denied() -> Iterator[SecretStore]:
            # AWS denies with HTTP 400 and the JSON error body of the awsJson1_1 protocol.
            body = json.dumps({"__type": "AccessDeniedException", "message": "User is not authorized"}).encode()
            proxy.set(Fault.RESPOND, response=http_response(400, body, content_type="application/x-amz-json-1.1"))
            with open_store(retry=FLAKY) as store:
                yield store

        yield HttpRig(scheme, proxy, open_store, write_request, denied)


@pytest.fixture
def aws_rig(aws_http_endpoint: str) -> Iterator[HttpRig]:
    with aws_json_rig(aws_http_endpoint, "aws-sm", r"X-Amz-Target: secretsmanager\.PutSecretValue") as rig:
        yield rig


@pytest.fixture
def k8s_rig() -> Iterator[HttpRig]:
    api = k8s_api.shared()
    with proxy_for(api.url, seed=7) as proxy:

        def open_store(token: str = k8s_api.ADMIN_TOKEN, **options: Any) -> SecretStore:
            return secretkit.open("k8s://reliability", host=proxy.url, token=token, timeout=1,
                                  **{"cache": NO_CACHE, **options})

        @contextlib.contextmanager
        def denied() -> Iterator[SecretStore]:
            # the double's own RBAC: this token may use no verb at all
            with open_store(token=k8s_api.NOBODY_TOKEN, retry=FLAKY) as store:
                yield store

        yield HttpRig("k8s", proxy, open_store, r"^(PATCH|POST|PUT) /api/v1/namespaces/reliability/secrets", denied)


@pytest.fixture
def vault_rig(bao: openbao.OpenBaoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpRig]:
    openbao.clean_env(monkeypatch)  # a developer's VAULT_* settings must not reach the local server
    with proxy_for(bao.address, seed=7) as proxy:

        def open_store(mount: str = "secret", token: str = bao.root_token, **options: Any) -> SecretStore:
            return secretkit.open(f"vault+http://127.0.0.1:{proxy.port}/{mount}", token=token, timeout=1,
                                  **{"cache": NO_CACHE, **options})

        @contextlib.contextmanager
        def denied() -> Iterator[SecretStore]:
            # a live token whose only policy is "default": it may look itself up, not read KV
            limited = bao.client().auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
            # kv_version given: mount detection would already be refused at open
            with open_store(token=limited, retry=FLAKY, kv_version="2") as store:
                yield store

        yield HttpRig("vault", proxy, open_store, r"^(POST|PUT) /v1/secret/data/", denied)


@pytest.fixture(params=["aws-sm", "k8s", "vault"])
def rig(request: pytest.FixtureRequest) -> HttpRig:
    fixture = {"aws-sm": "aws_rig", "k8s": "k8s_rig", "vault": "vault_rig"}[request.param]
    value: HttpRig = request.getfixturevalue(fixture)
    return value


#: How a transient HTTP fault looks to the client: a reset, a close without answer, a 503.
TRANSIENT: dict[str, dict[str, Any]] = {
    "reset": {"fault": Fault.RESET},
    "close": {"fault": Fault.CLOSE},
    "503": {"fault": Fault.RESPOND, "response": SERVICE_UNAVAILABLE},
}


@pytest.mark.parametrize("kind", sorted(TRANSIENT))
def test_reads_survive_30_percent_transient_faults(rig: HttpRig, kind: str) -> None:
    names = [_unique("flaky") for _ in range(3)]
    with rig.open_store(retry=FLAKY) as store:
        for name in names:
            store.put(name, f"value of {name}")
        audit = _audited(store)
        rig.proxy.reset_counts()
        rig.proxy.set(probability=0.3, **TRANSIENT[kind])
        for i in range(READS):
            name = names[i % len(names)]
            began = time.perf_counter()
            assert store.get(name).value.text == f"value of {name}"
            assert time.perf_counter() - began < FLAKY.deadline  # type: ignore[operator]
        rig.proxy.pass_through()
    reads = [e for e in audit.events if e.operation == "get"]
    assert len(reads) == READS and all(e.outcome == "ok" for e in reads)
    assert rig.proxy.injected >= 5  # ~30% of 30+ requests: the faults really happened
    # Every fault cost exactly one attempt: no SDK retry below ours, none lost or doubled.
    assert audit.retries("get") == rig.proxy.injected
    assert rig.proxy.requests == READS + rig.proxy.injected


def test_dead_backend_fails_fast_with_attempt_count(rig: HttpRig) -> None:
    name = _unique("down")
    with rig.open_store(retry=DOWN) as store:
        store.put(name, "v")
        store.get(name)  # warm: token looked up, a keep-alive connection in the pool
        audit = _audited(store)
        rig.proxy.reset_counts()
        rig.proxy.down()  # also drops the pooled connection, as a backend restart does
        began = time.perf_counter()
        with pytest.raises(secretkit.UnavailableError) as caught:
            store.get(name)
        elapsed = time.perf_counter() - began
    assert caught.value.attempts == DOWN.max_attempts == audit.last("get").attempts
    assert audit.last("get").outcome == "unavailable"
    assert elapsed < 1.0  # three quick attempts, far inside the 2 s deadline and any SDK timeout
    # One connection and one request per attempt: the SDK added no attempts of its own.
    assert rig.proxy.connections == rig.proxy.requests == DOWN.max_attempts


def test_permission_denied_is_not_retried(rig: HttpRig) -> None:
    name = _unique("denied")
    with rig.open_store() as store:
        store.put(name, "v")
    with rig.denied() as store:
        audit = _audited(store)
        rig.proxy.reset_counts()
        began = time.perf_counter()
        with pytest.raises(secretkit.PermissionDeniedError) as caught:
            store.get(name)
        elapsed = time.perf_counter() - began
    assert not caught.value.transient
    assert audit.last("get").attempts == 1
    assert audit.last("get").outcome == "permission_denied"
    assert elapsed < 0.5
    reads = [line for line in rig.proxy.request_log if not line.startswith("GET /v1/auth/token/lookup-self")]
    assert len(reads) == 1, rig.proxy.request_log  # Vault's token checks aside, one request reached the backend


def test_put_is_retried_only_where_idempotent(rig: HttpRig) -> None:
    """The write reaches the backend but its answer is lost: the ambiguous case.

    An idempotent put (aws-sm: same ClientRequestToken) is retried and leaves one version;
    any other surfaces after one attempt, because a retry could write twice.
    """
    name = _unique("put")
    with rig.open_store(retry=TWICE) as store:
        store.put(name, "first")
        audit = _audited(store)
        rig.proxy.reset_counts()
        rig.proxy.set(Fault.LOSE_RESPONSE, match=rig.write_request, times=1)
        if store.capabilities.idempotent_put:
            store.put(name, "second")
            assert audit.last("put").attempts == 2
            assert _count(rig.proxy, rig.write_request) == 2
        else:
            with pytest.raises(secretkit.UnavailableError) as caught:
                store.put(name, "second")
            assert caught.value.attempts == 1 == audit.last("put").attempts
            assert _count(rig.proxy, rig.write_request) == 1  # the store did not send it again
        rig.proxy.pass_through()
        assert store.get(name).value.text == "second"  # the write landed either way
        if store.capabilities.versions:
            assert len(store.versions(name)) == 2  # "first" and exactly one "second"


# -- Vault KV v1: the idempotent side of the put rule on the same server ------------


def test_vault_kv1_put_is_retried(vault_rig: HttpRig, bao: openbao.OpenBaoServer) -> None:
    mount = openbao.enable_kv1(bao)
    name = _unique("kv1")
    with vault_rig.open_store(mount=mount, retry=TWICE) as store:
        assert store.capabilities.idempotent_put  # an overwrite with the same value: safe to repeat
        store.put(name, "first")
        audit = _audited(store)
        vault_rig.proxy.reset_counts()
        vault_rig.proxy.set(Fault.LOSE_RESPONSE, match=rf"^(POST|PUT) /v1/{mount}/", times=1)
        store.put(name, "second")
        assert audit.last("put").attempts == 2
        writes = [line for line in vault_rig.proxy.request_log if line.startswith(("POST", "PUT"))]
        assert len(writes) == 2
        assert store.get(name).value.text == "second"


def test_vault_bad_token_is_an_authentication_error(vault_rig: HttpRig) -> None:
    """Vault answers a dead token with 403 too; the driver tells it apart (one attempt, no retry)."""
    with vault_rig.open_store(token="not-a-token", retry=FLAKY, kv_version="2") as store:
        audit = _audited(store)
        with pytest.raises(secretkit.AuthenticationError):
            store.get(_unique("any"))
    assert audit.last("get").attempts == 1
    reads = [line for line in vault_rig.proxy.request_log if "/v1/secret/data/" in line]
    assert len(reads) == 1  # the token checks around it are the driver's, the read was sent once


# -- GCP: gRPC double, faults answered by the server, the proxy as a dead backend ------


@pytest.fixture(scope="module")
def gcp_double() -> Iterator[gcp_sm.RunningDouble]:
    double = gcp_sm.start()  # our own model, so its fault queue is ours alone
    yield double
    double.stop()


@pytest.fixture
def gcp(gcp_double: gcp_sm.RunningDouble) -> Iterator[tuple[gcp_sm.SecretManagerModel, FaultProxy]]:
    gcp_double.model.reset()
    host, port = gcp_double.grpc_target.rsplit(":", 1)
    with FaultProxy((host, int(port)), http=False, seed=7) as proxy:
        yield gcp_double.model, proxy


def _gcp_store(proxy: FaultProxy, **options: Any) -> SecretStore:
    return secretkit.open("gcp-sm://test-project", endpoint=proxy.address, insecure=True, timeout=1,
                          **{"cache": NO_CACHE, **options})


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED])
def test_gcp_reads_survive_30_percent_transient_faults(
    gcp: tuple[gcp_sm.SecretManagerModel, FaultProxy], code: grpc.StatusCode
) -> None:
    model, proxy = gcp
    names = [_unique("flaky") for _ in range(3)]
    with _gcp_store(proxy, retry=FLAKY) as store:
        for name in names:
            store.put(name, f"value of {name}")
        audit = _audited(store)
        model.fail_randomly(None, code, 0.3, seed=7)
        for i in range(READS):
            name = names[i % len(names)]
            assert store.get(name).value.text == f"value of {name}"
        model.fail_randomly(None, code, 0)
    assert sum(model.injected.values()) >= 5
    assert audit.retries("get") == sum(model.injected.values())
    assert proxy.connections == 1  # one HTTP/2 connection carried every call and retry


def test_gcp_dead_backend_fails_fast(gcp: tuple[gcp_sm.SecretManagerModel, FaultProxy]) -> None:
    _, proxy = gcp
    name = _unique("down")
    with _gcp_store(proxy, retry=DOWN) as store:
        store.put(name, "v")
        audit = _audited(store)
        proxy.reset_counts()
        proxy.down()
        began = time.perf_counter()
        with pytest.raises(secretkit.UnavailableError) as caught:
            store.get(name)
        elapsed = time.perf_counter() - began
    assert caught.value.attempts == DOWN.max_attempts == audit.last("get").attempts
    assert elapsed < 1.0
    # gRPC keeps one channel: after a failed connect it waits out its own reconnect backoff
    # and fails calls at once meanwhile, so it never opens more connections than we attempt.
    assert 1 <= proxy.connections <= DOWN.max_attempts


def test_gcp_permission_denied_is_not_retried(gcp: tuple[gcp_sm.SecretManagerModel, FaultProxy]) -> None:
    model, proxy = gcp
    name = _unique("denied")
    with _gcp_store(proxy, retry=FLAKY) as store:
        store.put(name, "v")
        audit = _audited(store)
        model.calls.clear()
        model.fail("AccessSecretVersion", grpc.StatusCode.PERMISSION_DENIED, times=3)
        with pytest.raises(secretkit.PermissionDeniedError):
            store.get(name)
    assert audit.last("get").attempts == 1
    assert model.calls["AccessSecretVersion"] == 1


def test_gcp_put_is_not_retried(gcp: tuple[gcp_sm.SecretManagerModel, FaultProxy]) -> None:
    model, proxy = gcp
    name = _unique("put")
    with _gcp_store(proxy, retry=TWICE) as store:
        assert not store.capabilities.idempotent_put  # AddSecretVersion twice adds two versions
        store.put(name, "first")
        audit = _audited(store)
        model.calls.clear()
        model.fail("AddSecretVersion", grpc.StatusCode.UNAVAILABLE)
        with pytest.raises(secretkit.UnavailableError) as caught:
            store.put(name, "second")
        assert caught.value.attempts == 1 == audit.last("put").attempts
        assert model.calls["AddSecretVersion"] == 1
        assert store.get(name).value.text == "first"


def test_gcp_recovered_backend_is_reached_within_the_retry_deadline(
    gcp: tuple[gcp_sm.SecretManagerModel, FaultProxy],
) -> None:
    """After an outage the channel must reconnect while the store still retries.

    gRPC's default reconnect backoff (1 s, growing to 120 s) fails calls at once without a
    connection attempt, so a sub-second retry deadline was spent before the channel tried the
    recovered backend again; the driver caps that backoff at 300 ms.
    """
    _, proxy = gcp
    name = _unique("recover")
    with _gcp_store(proxy, retry=DOWN) as store:
        store.put(name, "v")
        proxy.down()
        for _ in range(3):  # the outage: failed connects put the channel into its backoff
            with pytest.raises(secretkit.UnavailableError):
                store.get(name)
        proxy.pass_through()
        store.options = secretkit.StoreOptions(
            retry=RetryPolicy(max_attempts=100, initial_backoff=0.05, max_backoff=0.05, deadline=0.75)
        )
        audit = _audited(store)
        assert store.get(name).value.text == "v"
    assert audit.last("get").attempts > 1  # it did start inside the channel's backoff
