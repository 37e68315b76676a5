"""azure-kv:// credentials end to end: azure-identity's real credentials (ClientSecretCredential,
DefaultAzureCredential) asking the Key Vault double's Entra ID token service
(tests/doubles/entra_id.py) for tokens the vault then accepts, opened from a URL alone as the
CLI opens stores."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError

import secretkit
from secretkit.cli import main
from secretkit.drivers.azure.credentials import SECRET_VARIABLE
from secretkit.errors import AuthenticationError, ConfigError
from tests.conformance.test_azure import service_principal_url
from tests.doubles.entra_id import CLIENT_ID, CLIENT_SECRET

WRONG_SECRET = "Wr0ng-S3cret~not-this-one"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_azure_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AZURE_* variable of the machine running the tests reaches azure-identity."""
    for name in list(os.environ):
        if name.startswith(("AZURE_", "MSAL_")):
            monkeypatch.delenv(name)


def _token_posts(double: Any) -> list[Any]:
    return [c for c in double.calls("POST") if c.path.endswith("/oauth2/v2.0/token")]


def test_a_url_alone_opens_the_store_and_the_sdk_asks_for_one_token(azure_kv: Any, no_azure_environment: None) -> None:
    with secretkit.open(service_principal_url(azure_kv)) as store:
        store.put("db-password", "p1")
        store.put("db-password", "p2")
        assert store.get("db-password", refresh=True).text == "p2"
        assert [v.version for v in store.versions("db-password")] != []
        assert "db-password" in list(store.list(""))
        assert CLIENT_SECRET not in repr(store) and CLIENT_SECRET not in store.url
    # one discovery and one token for the whole store: azure-core keeps the token it was given
    assert len(azure_kv.calls("GET", f"/{azure_kv.tenant}/v2.0/.well-known/openid-configuration")) == 1
    assert azure_kv.entra.token_requests == 1
    data = [c for c in azure_kv.log if c.path.startswith("/secrets") and c.status < 400]
    assert len(data) >= 5 and all(c.authorized for c in data)


def test_a_wrong_client_secret_is_an_authentication_error_naming_the_backend_not_the_secret(
    azure_kv: Any, no_azure_environment: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with secretkit.open(service_principal_url(azure_kv, WRONG_SECRET)) as store:
        with pytest.raises(AuthenticationError) as info:
            store.get("db-password")
    text = str(info.value)
    assert "backend azure-kv" in text and "'db-password'" in text
    assert "AADSTS7000215" in text  # Entra ID's own reason reaches the user
    shown = "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert WRONG_SECRET not in shown and WRONG_SECRET not in caplog.text
    assert azure_kv.entra.token_requests == 1  # refused by the token service (not before), and not retried
    assert not any(c.authorized for c in azure_kv.log)


def test_the_double_answers_a_wrong_secret_as_entra_id_does(azure_kv: Any) -> None:
    """401 invalid_client / AADSTS7000215 → azure-identity's ClientAuthenticationError."""
    with azure_kv.secret_credential(WRONG_SECRET) as credential, pytest.raises(ClientAuthenticationError) as info:
        credential.get_token("https://vault.azure.net/.default", tenant_id=azure_kv.tenant)
    assert "AADSTS7000215: Invalid client secret provided" in str(info.value)
    assert [c.status for c in _token_posts(azure_kv)] == [401]


def test_the_vault_accepts_a_token_only_for_its_own_resource(azure_kv: Any) -> None:
    with azure_kv.secret_credential() as credential:
        other = credential.get_token("https://storage.azure.com/.default").token
    client = azure_kv.client(credential=azure_kv.credential(other))
    with client, pytest.raises(ClientAuthenticationError):
        client.get_secret("x")
    assert azure_kv.entra.token_requests == 1 and not any(c.authorized for c in azure_kv.log)


def test_the_client_secret_may_come_from_the_environment(azure_kv: Any, no_azure_environment: None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    url = service_principal_url(azure_kv, client_secret=None)
    with pytest.raises(ConfigError, match=SECRET_VARIABLE):  # named principal, no secret: before any I/O
        secretkit.open(url)
    assert azure_kv.log == []
    monkeypatch.setenv(SECRET_VARIABLE, CLIENT_SECRET)
    with secretkit.open(url) as store:
        store.put("from-env", "v")
        assert store.get("from-env", refresh=True).text == "v"
    assert azure_kv.entra.token_requests == 1


def test_the_default_chain_reads_the_environment_with_the_store_s_authority_and_ca(
    azure_kv: Any, no_azure_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No credential option: DefaultAzureCredential, whose EnvironmentCredential takes the service
    principal from AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, and the URL's authority
    and ca_bundle reach it."""
    for name, value in (("AZURE_TENANT_ID", azure_kv.tenant), ("AZURE_CLIENT_ID", CLIENT_ID),
                        (SECRET_VARIABLE, CLIENT_SECRET)):
        monkeypatch.setenv(name, value)
    url = f"azure-kv://127.0.0.1:{azure_kv.port}?authority={azure_kv.authority}&ca_bundle={azure_kv.ca_path}"
    with secretkit.open(url) as store:
        store.put("chained", "v")
        assert store.get("chained", refresh=True).text == "v"
    assert azure_kv.entra.token_requests == 1


def test_no_credentials_at_all_is_cli_exit_4(azure_kv: Any, no_azure_environment: None,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """DefaultAzureCredential finding nothing (here limited to its environment source, so no
    managed-identity endpoint or developer tool of the machine is asked)."""
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    url = f"azure-kv://127.0.0.1:{azure_kv.port}?ca_bundle={azure_kv.ca_path}"
    assert main(["--url", url, "-q", "get", "db-password"]) == 4
    err = capsys.readouterr().err
    assert "secretkit: error:" in err and "backend azure-kv" in err
    assert "EnvironmentCredential authentication unavailable" in err  # what azure-identity tried
    assert not any(c.authorized for c in azure_kv.log)


def _cli(url: str, *args: str, secret: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "MSAL_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if secret is not None:
        env[SECRET_VARIABLE] = secret
    return subprocess.run([sys.executable, "-m", "secretkit", "--url", url, "-q", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_get_through_a_service_principal_and_exit_4_on_a_wrong_secret(azure_kv: Any) -> None:
    """``secretkit get`` in a process of its own, the secret in AZURE_CLIENT_SECRET."""
    azure_kv.client().set_secret("db-password", "s3cr3t-value")
    url = service_principal_url(azure_kv, client_secret=None)
    good = _cli(url, "get", "db-password", secret=CLIENT_SECRET)
    assert (good.returncode, good.stdout) == (0, "s3cr3t-value\n"), good.stderr
    bad = _cli(url, "get", "db-password", secret=WRONG_SECRET)
    assert bad.returncode == 4 and bad.stdout == ""
    assert "azure-kv" in bad.stderr and "AADSTS7000215" in bad.stderr
    assert WRONG_SECRET not in bad.stderr and "s3cr3t-value" not in bad.stderr


@pytest.mark.parametrize(("authority", "expected"), [
    ("login.microsoftonline.us", "https://login.microsoftonline.us"),
    ("https://login.chinacloudapi.cn/", "https://login.chinacloudapi.cn"),
    ("https://adfs.contoso.local/adfs", "https://adfs.contoso.local/adfs"),
])
def test_authority_is_a_host_or_an_https_url(authority: str, expected: str) -> None:
    from secretkit.drivers.azure.credentials import authority_url

    assert authority_url(authority) == expected


def test_a_plain_http_authority_is_refused_before_any_io(azure_kv: Any) -> None:
    with pytest.raises(ConfigError, match="authority"):
        secretkit.open(service_principal_url(azure_kv).replace("authority=https", "authority=http"))
    assert azure_kv.log == []
