"""The Azure Key Vault double (tests/doubles/azure_kv.py) driven by the real azure-keyvault-secrets
clients: what azure-kv:// is tested against must be what the SDK expects of Key Vault."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets._shared import http_challenge_cache

from tests.doubles import azure_kv
from tests.doubles.azure_kv import AzureKeyVaultDouble
from tests.doubles.azure_kv_model import VaultModel

FAST = {"_polling_interval": 0.05}


@pytest.fixture
def kv(azure_kv: AzureKeyVaultDouble) -> AzureKeyVaultDouble:
    return azure_kv


@pytest.fixture
def client(kv: AzureKeyVaultDouble) -> Iterator[SecretClient]:
    with kv.client() as c:
        yield c


def raw(kv: AzureKeyVaultDouble, method: str, path: str, token: str | None = azure_kv.TOKEN,
        **kwargs: Any) -> requests.Response:
    """A request as the wire sees it, with the double's CA trusted."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, kv.vault_url + path, headers=headers, verify=str(kv.ca_path), timeout=10, **kwargs)


# -- TLS and the bearer challenge ----------------------------------------------------------------


def test_the_first_request_gets_the_key_vault_challenge_and_the_sdk_answers_it(kv: AzureKeyVaultDouble) -> None:
    http_challenge_cache.clear()  # the SDK caches a host's challenge process-wide
    credential = kv.credential()
    with kv.client(credential=credential) as c:
        c.set_secret("db-password", "s3cret")
    first, second = kv.log
    assert (first.method, first.path, first.status, first.authorized) == ("PUT", "/secrets/db-password", 401, False)
    assert (second.status, second.authorized) == (200, True)
    assert credential.requests == [(("https://vault.azure.net/.default",), azure_kv.TENANT)]

    answer = raw(kv, "GET", "/secrets?api-version=7.5", token=None)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == (
        f'Bearer authorization="https://login.microsoftonline.com/{azure_kv.TENANT}", resource="https://vault.azure.net"')
    assert answer.json() == {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}


def test_a_wrong_token_is_refused_with_401(kv: AzureKeyVaultDouble) -> None:
    with kv.client(credential=kv.credential("not-the-token")) as c, pytest.raises(ClientAuthenticationError):
        c.get_secret("anything")
    assert kv.log and all(call.status == 401 and not call.authorized for call in kv.log)
    assert "WWW-Authenticate" in raw(kv, "GET", "/secrets?api-version=7.5", token="wrong").headers


def test_by_default_the_sdk_refuses_a_challenge_resource_the_loopback_host_is_not_under(kv: AzureKeyVaultDouble) -> None:
    """Why client_kwargs() carries verify_challenge_resource=False (a driver under test must pass it)."""
    http_challenge_cache.clear()
    with SecretClient(kv.vault_url, kv.credential(), connection_verify=str(kv.ca_path)) as c:
        with pytest.raises(ValueError, match="does not match the requested domain"):
            c.get_secret("anything")
    http_challenge_cache.clear()


def test_the_certificate_is_trusted_only_through_its_ca_and_names_localhost(kv: AzureKeyVaultDouble) -> None:
    with SecretClient(kv.vault_url, kv.credential(), verify_challenge_resource=False, retry_total=0) as c:
        with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
            c.get_secret("anything")
    by_name = SecretClient(f"https://localhost:{kv.port}", kv.credential(), **kv.client_kwargs())
    with by_name:
        assert by_name.set_secret("n", "v").value == "v"


def test_api_version_is_required_and_must_be_known(kv: AzureKeyVaultDouble) -> None:
    missing = raw(kv, "GET", "/secrets")
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "BadParameter"
    unknown = raw(kv, "GET", "/secrets?api-version=9.9")
    assert unknown.status_code == 400 and "(9.9) is not recognized" in unknown.json()["error"]["message"]
    assert raw(kv, "GET", "/secrets?api-version=7.4").status_code == 200
    with kv.client(api_version="7.4") as old:
        old.set_secret("n", "v")
    assert kv.log[-1].query["api-version"] == "7.4"


# -- secrets -----------------------------------------------------------------------------------------


def test_set_and_get_return_key_vault_bundles(kv: AzureKeyVaultDouble, client: SecretClient) -> None:
    exp = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    nbf = datetime(2020, 1, 1, tzinfo=timezone.utc)
    made = client.set_secret("db-password", "s3cret", content_type="text/plain", tags={"owner": "team-a"},
                             expires_on=exp, not_before=nbf)
    assert re.fullmatch(rf"https://127\.0\.0\.1:{kv.port}/secrets/db-password/[0-9a-f]{{32}}", made.id)
    got = client.get_secret("db-password")
    assert (got.value, got.properties.version, got.properties.content_type) == ("s3cret", made.properties.version, "text/plain")
    assert got.properties.tags == {"owner": "team-a"}
    assert (got.properties.expires_on, got.properties.not_before, got.properties.enabled) == (exp, nbf, True)
    assert got.properties.recovery_level == "Recoverable+Purgeable" and got.properties.recoverable_days == 90

    wire = raw(kv, "GET", f"/secrets/db-password/{made.properties.version}?api-version=2026-04-01").json()
    attrs = wire["attributes"]
    assert isinstance(attrs["created"], int) and isinstance(attrs["updated"], int)  # unix seconds, not ISO strings
    assert (attrs["exp"], attrs["nbf"]) == (int(exp.timestamp()), int(nbf.timestamp()))
    assert set(wire) == {"value", "id", "contentType", "attributes", "tags"}


def test_each_put_is_a_new_version_and_old_versions_stay_readable(client: SecretClient) -> None:
    first = client.set_secret("api-key", "one", tags={"t": "1"})
    second = client.set_secret("api-key", "two")
    assert first.properties.version != second.properties.version
    assert client.get_secret("api-key").value == "two"
    assert client.get_secret("api-key").properties.tags is None  # a put does not inherit tags
    assert client.get_secret("api-key", first.properties.version).value == "one"
    listed = {p.version for p in client.list_properties_of_secret_versions("api-key")}
    assert listed == {first.properties.version, second.properties.version}


def test_names_are_case_insensitive(client: SecretClient) -> None:
    client.set_secret("Db-Password", "one")
    client.set_secret("db-password", "two")
    assert client.get_secret("DB-PASSWORD").value == "two"
    assert [p.name for p in client.list_properties_of_secrets()] == ["Db-Password"]


@pytest.mark.parametrize("name", ["under_score", "dot.ted", "x" * 128, "caf\u00e9"])
def test_names_outside_the_rule_are_400_bad_parameter(client: SecretClient, name: str) -> None:
    with pytest.raises(HttpResponseError) as caught:
        client.set_secret(name, "v")
    assert (caught.value.status_code, caught.value.error.code) == (400, "BadParameter")


def test_the_longest_name_is_127_characters(client: SecretClient) -> None:
    assert client.set_secret("a" * 127, "v").name == "a" * 127


def test_unknown_names_and_versions_are_404_secret_not_found(client: SecretClient) -> None:
    client.set_secret("known", "v")
    for call in (lambda: client.get_secret("unknown"), lambda: client.get_secret("known", "0" * 32),
                 lambda: client.get_secret("known", "not-a-version")):
        with pytest.raises(ResourceNotFoundError) as caught:
            call()
        assert caught.value.error.code == "SecretNotFound"


def test_a_disabled_version_is_403_secret_disabled_until_enabled(client: SecretClient) -> None:
    old = client.set_secret("token", "old")
    new = client.set_secret("token", "new")
    client.update_secret_properties("token", new.properties.version, enabled=False)
    with pytest.raises(HttpResponseError) as caught:
        client.get_secret("token")  # the latest is the disabled one
    assert (caught.value.status_code, caught.value.error.code, caught.value.error.innererror) == (
        403, "Forbidden", {"code": "SecretDisabled"})
    assert client.get_secret("token", old.properties.version).value == "old"
    assert [p.enabled for p in client.list_properties_of_secrets()] == [False]
    client.update_secret_properties("token", new.properties.version, enabled=True)
    assert client.get_secret("token").value == "new"


def test_update_properties_changes_only_what_it_is_given(client: SecretClient) -> None:
    made = client.set_secret("cfg", "v", content_type="text/plain", tags={"a": "1"})
    exp = datetime(2031, 5, 6, tzinfo=timezone.utc)
    updated = client.update_secret_properties("cfg", made.properties.version, expires_on=exp)
    assert (updated.content_type, updated.tags, updated.expires_on) == ("text/plain", {"a": "1"}, exp)
    updated = client.update_secret_properties("cfg", tags={"b": "2"}, content_type="application/json")  # the latest
    assert (updated.tags, updated.content_type) == ({"b": "2"}, "application/json")
    assert client.get_secret("cfg").value == "v"


def test_values_over_25_kib_are_refused(client: SecretClient) -> None:
    client.set_secret("big", "x" * 25 * 1024)
    with pytest.raises(HttpResponseError) as caught:
        client.set_secret("big", "x" * (25 * 1024 + 1))
    assert caught.value.status_code == 400


# -- paging ------------------------------------------------------------------------------------------


def test_lists_page_with_next_link_and_maxresults(kv: AzureKeyVaultDouble, client: SecretClient) -> None:
    for i in range(7):
        client.set_secret(f"s{i}", "v")
    pages = [[p.name for p in page] for page in client.list_properties_of_secrets(max_page_size=3).by_page()]
    assert pages == [["s0", "s1", "s2"], ["s3", "s4", "s5"], ["s6"]]
    listed = kv.calls("GET", "/secrets")
    assert [c.query.get("maxresults") for c in listed] == ["3", "3", "3"]
    assert "$skiptoken" not in listed[0].query and all("$skiptoken" in c.query for c in listed[1:])
    assert all(c.query["api-version"] == "2026-04-01" for c in listed)

    page = raw(kv, "GET", "/secrets?api-version=7.5&maxresults=7").json()
    assert page["nextLink"] is None and len(page["value"]) == 7
    assert set(page["value"][0]) == {"id", "attributes"}  # no value in lists
    assert page["value"][0]["id"] == f"{kv.vault_url}/secrets/s0"
    assert raw(kv, "GET", "/secrets?api-version=7.5&maxresults=26").status_code == 400


def test_versions_page_too(client: SecretClient) -> None:
    made = {client.set_secret("rotating", str(i)).properties.version for i in range(5)}
    pages = list(client.list_properties_of_secret_versions("rotating", max_page_size=2).by_page())
    assert [len(list(page)) for page in pages] == [2, 2, 1]
    assert {p.version for p in client.list_properties_of_secret_versions("rotating")} == made


# -- soft-delete, recover, purge ------------------------------------------------------------------------


def test_delete_is_soft_and_the_poller_waits_until_it_is_listed_as_deleted(kv: AzureKeyVaultDouble,
                                                                          client: SecretClient) -> None:
    client.set_secret("old", "v")
    kv.model.delete_delay = 0.3
    poller = client.begin_delete_secret("old", **FAST)
    deleted = poller.result()
    assert deleted.recovery_id == f"{kv.vault_url}/deletedsecrets/old"
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date is not None
    poller.wait()
    polls = [c.status for c in kv.calls("GET", "/deletedsecrets/old")]
    assert polls[-1] == 200 and 404 in polls  # still being deleted, then done
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("old")
    assert [d.name for d in client.list_deleted_secrets()] == ["old"]
    assert "value" not in raw(kv, "GET", "/deletedsecrets/old?api-version=7.5").json()


def test_a_put_on_a_soft_deleted_name_is_409_and_recover_brings_every_version_back(kv: AzureKeyVaultDouble,
                                                                                  client: SecretClient) -> None:
    first = client.set_secret("svc", "one")
    client.set_secret("svc", "two")
    client.begin_delete_secret("svc", **FAST).wait()
    with pytest.raises(ResourceExistsError) as caught:
        client.set_secret("svc", "three")
    assert caught.value.error.code == "Conflict"
    assert caught.value.error.innererror == {"code": "ObjectIsDeletedButRecoverable"}
    assert "can only be recovered or purged" in caught.value.error.message

    kv.model.recover_delay = 0.3
    poller = client.begin_recover_deleted_secret("svc", **FAST)
    with pytest.raises(ResourceExistsError) as recovering:
        client.set_secret("svc", "three")
    assert recovering.value.error.innererror == {"code": "ObjectIsBeingRecovered"}
    poller.wait()
    polls = [c.status for c in kv.calls("GET", "/secrets/svc/")]
    assert polls[-1] == 200 and 404 in polls
    assert client.get_secret("svc").value == "two"
    assert client.get_secret("svc", first.properties.version).value == "one"


def test_purge_is_final_and_frees_the_name(kv: AzureKeyVaultDouble, client: SecretClient) -> None:
    client.set_secret("gone", "v")
    client.begin_delete_secret("gone", **FAST).wait()
    client.purge_deleted_secret("gone")
    assert kv.log[-1].status == 204
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret("gone")
    with pytest.raises(ResourceNotFoundError):
        client.purge_deleted_secret("gone")
    assert client.set_secret("gone", "new").value == "new"
    assert len(list(client.list_properties_of_secret_versions("gone"))) == 1


def test_purge_protection_refuses_purge_and_an_old_vault_deletes_for_good() -> None:
    with azure_kv.start(VaultModel(recovery_level="Recoverable")) as protected, protected.client() as c:
        c.set_secret("kept", "v")
        c.begin_delete_secret("kept", **FAST).wait()
        with pytest.raises(HttpResponseError) as caught:
            c.purge_deleted_secret("kept")
        assert caught.value.status_code == 403
    with azure_kv.start(VaultModel(soft_delete=False)) as old, old.client() as c:
        c.set_secret("x", "v")
        poller = c.begin_delete_secret("x", **FAST)
        assert poller.result().recovery_id is None and poller.done()
        assert old.calls("GET", "/deletedsecrets/x") == []
        assert c.set_secret("x", "again").value == "again"  # nothing left to conflict with


# -- throttling, outages, the log -------------------------------------------------------------------------


def test_429_with_retry_after_is_waited_out_by_the_sdk(kv: AzureKeyVaultDouble, client: SecretClient) -> None:
    client.set_secret("warm", "v")  # challenge done
    kv.throttle(2, retry_after=0.25)
    started = time.monotonic()
    assert client.set_secret("hot", "v").value == "v"
    assert time.monotonic() - started >= 0.5
    assert [c.status for c in kv.calls("PUT", "/secrets/hot")] == [429, 429, 200]
    kv.throttle(1, retry_after=2)
    answer = raw(kv, "GET", "/secrets?api-version=7.5")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "2"
    assert answer.json()["error"]["code"] == "Throttled"


def test_injected_errors_and_delays(kv: AzureKeyVaultDouble) -> None:
    with kv.client(retry_total=0) as c:
        c.set_secret("n", "v")
        kv.fail_next(500, "InternalServerError", "boom")
        with pytest.raises(HttpResponseError) as caught:
            c.get_secret("n")
        assert (caught.value.status_code, caught.value.error.code) == (500, "InternalServerError")
        kv.delay_next(0.3)
        started = time.monotonic()
        c.set_secret("n", "v2")
        assert time.monotonic() - started >= 0.3
    with kv.client(retry_total=0, connection_timeout=5, read_timeout=0.1) as c:
        kv.delay_next(0.5)
        with pytest.raises(ServiceResponseError, match="timed out"):
            c.set_secret("n", "v3")  # acted on, answer lost to the client's deadline
    assert kv.model.versions("n")[-1].value == "v3"


def test_503_until_available(kv: AzureKeyVaultDouble) -> None:
    with kv.client(retry_total=0) as c:
        c.set_secret("n", "v")
        kv.unavailable("503")
        with pytest.raises(HttpResponseError) as caught:
            c.get_secret("n")
        assert (caught.value.status_code, caught.value.error.code) == (503, "ServiceUnavailable")
        kv.available()
        assert c.get_secret("n").value == "v"


def test_refused_connections_even_for_a_pooled_one_until_available(kv: AzureKeyVaultDouble) -> None:
    with kv.client(retry_total=0) as c:
        c.set_secret("n", "v")  # leaves a keep-alive connection in the pool
        port = kv.port
        kv.unavailable("refuse")
        with pytest.raises(ServiceRequestError):
            c.get_secret("n")
        kv.available()
        assert kv.port == port and c.get_secret("n").value == "v"


def test_the_log_is_complete_under_concurrent_clients(kv: AzureKeyVaultDouble, client: SecretClient) -> None:
    client.set_secret("warm", "v")
    before = len(kv.log)

    def work(i: int) -> None:
        for j in range(5):
            client.set_secret(f"t{i}-{j}", "v")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    puts = kv.log[before:]
    assert len(puts) == 30 and all(c.method == "PUT" and c.status == 200 for c in puts)
    assert len(kv.model.names()) == 31


def test_reset_empties_the_vault_the_log_and_the_switches(kv: AzureKeyVaultDouble, client: SecretClient) -> None:
    client.set_secret("n", "v")
    kv.throttle(5)
    kv.reset()
    assert kv.log == [] and kv.model.names() == []
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("n")


# -- the aio client -----------------------------------------------------------------------------------------


def test_the_aio_client_works_against_the_double(kv: AzureKeyVaultDouble) -> None:
    async def scenario() -> tuple[str, list[str], Any]:
        async with kv.aio_client() as c:
            await c.set_secret("async-one", "v1", content_type="text/plain")
            got = await c.get_secret("async-one")
            names = [p.name async for p in c.list_properties_of_secrets(max_page_size=1)]
            deleted = await c.delete_secret("async-one", _polling_interval=0.05)
            return got.value, names, deleted

    value, names, deleted = asyncio.run(scenario())
    assert (value, names) == ("v1", ["async-one"])
    assert deleted.recovery_id == f"{kv.vault_url}/deletedsecrets/async-one"
    assert kv.model.deleted_names() == ["async-one"]


def test_error_bodies_have_key_vault_shape(kv: AzureKeyVaultDouble) -> None:
    body = raw(kv, "GET", "/secrets/missing?api-version=7.5").json()
    assert set(body) == {"error"} and body["error"]["code"] == "SecretNotFound"
    assert "missing" in body["error"]["message"]
    assert json.loads(raw(kv, "PUT", "/secrets/x?api-version=7.5", data=b"{").text)["error"]["code"] == "BadParameter"
