"""An Entra ID (token service) outage on azure-kv:// reads as unavailable, not as bad credentials.

A store opened on a service principal asks the Key Vault double's Entra ID token service
(tests/doubles/entra_id.py) through azure-identity's real ``ClientSecretCredential``. The
service answers 503/429 for a number of token requests (``entra.unavailable``), or cannot be
reached at all: a ``FaultProxy`` (``http=False``) in front of the authority resets connections,
or the authority is a port nothing listens on. An outage shorter than the deadline is retried
by the store and the read succeeds; a longer one ends as ``UnavailableError`` within the
deadline (a cached value served stale meanwhile); a credential Entra ID refuses stays an
``AuthenticationError`` after one token request.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

import secretkit
from secretkit import AuditEvent, CachePolicy, RetryPolicy, SecretStore
from secretkit.cli import main
from secretkit.errors import AuthenticationError, ErrorCode, ThrottledError, UnavailableError
from secretkit.testing.faultproxy import Fault, FaultProxy
from tests.doubles.entra_id import CLIENT_ID, CLIENT_SECRET
from tests.reliability.test_deadlines import NO_CACHE, SLICE

#: Room for a few attempts; backoffs short so that an outage of two answers costs little.
RETRY = RetryPolicy(max_attempts=6, initial_backoff=0.05, max_backoff=0.2, deadline=1.5)


def _url(double: Any, authority: str | None = None, **query: str) -> str:
    params = {"tenant_id": double.tenant, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
              "authority": authority or double.authority, "ca_bundle": str(double.ca_path), **query}
    return f"azure-kv://127.0.0.1:{double.port}?{urlencode(params)}"


def _open(url: str, cache: CachePolicy = NO_CACHE) -> tuple[SecretStore, list[AuditEvent]]:
    store = secretkit.open(url, retry=RETRY, cache=cache)
    events: list[AuditEvent] = []
    store.add_audit_hook(events.append)
    return store, events


@pytest.fixture(autouse=True)
def no_azure_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AZURE_* variable of the machine running the tests reaches azure-identity."""
    import os

    for name in list(os.environ):
        if name.startswith(("AZURE_", "MSAL_")):
            monkeypatch.delenv(name)


@pytest.fixture
def authority_proxy(azure_kv: Any) -> Iterator[FaultProxy]:
    """The token service behind a per-connection fault proxy (the vault itself is reached directly)."""
    with FaultProxy(("127.0.0.1", azure_kv.port), http=False, seed=3) as proxy:
        yield proxy


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("fault", ["503", "500", "429", "reset"])
def test_an_outage_shorter_than_the_deadline_is_retried_and_the_read_succeeds(
    azure_kv: Any, authority_proxy: FaultProxy, fault: str
) -> None:
    azure_kv.client().set_secret("db-password", "s3cr3t")
    url = _url(azure_kv, f"https://127.0.0.1:{authority_proxy.port}")
    if fault == "reset":  # discovery's and the token request's connections: a service not reached
        authority_proxy.set(Fault.RESET, times=2)
    else:
        azure_kv.entra.unavailable(2, int(fault), retry_after=0.1 if fault == "429" else None)
    store, events = _open(url)
    with store:
        began = time.monotonic()
        assert store.get("db-password").text == "s3cr3t"
        elapsed = time.monotonic() - began
    assert events[-1].attempts == 3  # one store attempt per failed token request, no other retry layer
    # every attempt reached the token service: azure-core's retries are off and MSAL never
    # replayed a remembered 5xx/429 (it would for 5 s, failing the attempts after the outage)
    assert azure_kv.entra.token_requests == (1 if fault == "reset" else 3)
    assert elapsed < RETRY.deadline  # type: ignore[operator]


@pytest.mark.parametrize("fault", ["503", "refused"])
def test_a_longer_outage_ends_as_unavailable_within_the_deadline(
    azure_kv: Any, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = _url(azure_kv, f"https://127.0.0.1:{_closed_port()}" if fault == "refused" else None)
    azure_kv.entra.unavailable(1000)
    store, events = _open(url)
    with store, pytest.raises(UnavailableError) as info:
        began = time.monotonic()
        try:
            store.get("db-password")
        finally:
            elapsed = time.monotonic() - began
    assert elapsed < RETRY.deadline + SLICE, f"{elapsed:.2f} s"  # type: ignore[operator]
    attempts = events[-1].attempts
    assert attempts >= 2 and info.value.attempts == attempts
    if fault == "503":
        assert azure_kv.entra.token_requests == attempts
    text = str(info.value)
    assert "backend azure-kv" in text and "'db-password'" in text and "Microsoft Entra ID" in text
    assert CLIENT_SECRET not in text + repr(info.value) + caplog.text
    assert not any(c.authorized for c in azure_kv.log)  # no vault request was made without a token


def test_an_outage_serves_the_cached_value_stale(azure_kv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens that must be renewed on every request (azure-core renews one 5 minutes before it
    expires), so that the read after the cache entry expired needs the token service."""
    monkeypatch.setattr(azure_kv.entra, "lifetime", 60)
    azure_kv.client().set_secret("db-password", "s3cr3t")
    store, events = _open(_url(azure_kv), CachePolicy(ttl=0.2, jitter=0, max_stale=60, refresh_ahead=0.99))
    with store:
        assert store.get("db-password").text == "s3cr3t"
        azure_kv.entra.unavailable(1000)
        time.sleep(0.3)
        began = time.monotonic()
        served = store.get("db-password")
        elapsed = time.monotonic() - began
    assert served.text == "s3cr3t"
    assert elapsed < RETRY.deadline + SLICE  # type: ignore[operator]
    assert azure_kv.entra.token_requests >= 2  # the stale value came after the token service failed


@pytest.mark.parametrize("refusal", ["client_secret", "client_id", "tenant_id"])
def test_a_credential_entra_id_refuses_is_an_authentication_error_after_one_request(
    azure_kv: Any, refusal: str
) -> None:
    """invalid_client (wrong secret), unauthorized_client (unknown app), invalid_tenant."""
    wrong = {"client_secret": "Wr0ng-S3cret~not-this-one", "client_id": "11111111-2222-3333-4444-555555555555",
             "tenant_id": "99999999-8888-7777-6666-555555555555"}[refusal]
    store, events = _open(_url(azure_kv, **{refusal: wrong}))
    with store, pytest.raises(AuthenticationError):
        store.get("db-password")
    assert events[-1].attempts == 1
    token_posts = [c for c in azure_kv.log if c.path.endswith("/oauth2/v2.0/token")]
    assert len(token_posts) == (0 if refusal == "tenant_id" else 1)  # an unknown tenant ends at discovery


def test_throttling_by_the_token_service_waits_its_retry_after(azure_kv: Any) -> None:
    azure_kv.client().set_secret("db-password", "s3cr3t")
    azure_kv.entra.unavailable(1, 429, retry_after=0.5)
    store, events = _open(_url(azure_kv))
    with store:
        began = time.monotonic()
        assert store.get("db-password").text == "s3cr3t"
        assert time.monotonic() - began >= 0.5  # the policy alone would have waited at most 0.05 s
    assert events[-1].attempts == 2


def test_throttling_beyond_the_deadline_gives_up_at_once(azure_kv: Any) -> None:
    azure_kv.entra.unavailable(1, 429, retry_after=30)
    store, _ = _open(_url(azure_kv))
    with store, pytest.raises(ThrottledError) as info:
        store.get("db-password")
    assert info.value.retry_after == 30 and azure_kv.entra.token_requests == 1


def test_cli_exit_code_is_5_for_a_token_service_outage(azure_kv: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """(A Retry-After beyond the CLI's 30 s deadline ends the command at the first answer.)"""
    azure_kv.entra.unavailable(1, 503, retry_after=120)
    assert main(["--url", _url(azure_kv), "-q", "get", "db-password"]) == 5
    err = capsys.readouterr().err
    assert "backend azure-kv" in err and "Microsoft Entra ID" in err and "503" in err
    assert CLIENT_SECRET not in err
    assert azure_kv.entra.token_requests == 1


def test_the_double_s_outage_is_what_azure_identity_sees_as_an_authentication_failure(azure_kv: Any) -> None:
    """Without the driver's hook, azure-identity raises ClientAuthenticationError for a 503 too:
    the case the driver tells apart."""
    from azure.core.exceptions import ClientAuthenticationError

    azure_kv.entra.unavailable(1)
    with azure_kv.secret_credential(retry_total=0) as credential, pytest.raises(ClientAuthenticationError):
        credential.get_token("https://vault.azure.net/.default")
    posts = [c.status for c in azure_kv.log if c.path.endswith("/oauth2/v2.0/token")]
    assert posts == [503]



@pytest.mark.parametrize(("raised", "code"), [
    ("HTTP Error: 503", ErrorCode.UNAVAILABLE),
    ("HTTP Error: 400", ErrorCode.UNAUTHENTICATED),
])
def test_a_credential_without_the_hook_is_told_apart_by_msal_s_error(raised: str, code: ErrorCode) -> None:
    """DefaultAzureCredential's sources keep their own pipelines (no hook; their own retries,
    which at a 5 s backoff outlast a short deadline, so this is the exception chain alone):
    MSAL's ``MsalServiceError("HTTP Error: 503")`` under azure-identity's wrapper is an outage."""
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity._internal.decorators import wrap_exceptions
    from msal.exceptions import MsalServiceError

    from secretkit.drivers.azure.errors import classify

    @wrap_exceptions
    def token() -> None:
        raise MsalServiceError(raised, error=None, error_description=None)

    with pytest.raises(ClientAuthenticationError) as info:
        token()
    found = classify(info.value)
    assert found is not None and found.code is code
