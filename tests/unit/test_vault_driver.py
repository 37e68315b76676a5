"""vault:// specifics against a real OpenBao dev server (and a recording loopback double where noted).

Covers what the conformance suite cannot: URL/options and credential sources, the codec's edge
cases, KV v2 soft delete/undelete/destroy/purge, AppRole and userpass logins, token renewal and
re-login, the Kubernetes login request, the mapping of every error family to portable errors,
and the ConfigError when hvac is missing. What the bao CLI and Agent see is in
tests/interop/test_vault_interop.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import pytest

import secretkit
from secretkit.audit import AuditEvent
from secretkit.drivers.vault.codec import decode_value, encode_value
from secretkit.drivers.vault.driver import KV2Driver
from secretkit.drivers.vault.errors import classify
from secretkit.drivers.vault.kv1 import KV1Driver
from secretkit.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    DeadlineExceededError,
    ErrorCode,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    PermissionDeniedError,
    SecretError,
    ThrottledError,
    UnavailableError,
)
from secretkit.retry import RetryPolicy
from secretkit.secret import Kind, Stage, Value
from secretkit.store import SecretStore
from secretkit.testing.spy import CountingDriver
from tests.doubles import openbao
from tests.doubles.vault_recorder import Reply, Request, envelope, serve

RW_POLICY = 'path "secret/*" { capabilities = ["create", "read", "update", "delete", "list"] }'
RO_POLICY = 'path "secret/data/allowed/*" { capabilities = ["read"] }'
SENTINEL = "SENTINEL-vault-value-7d21"
NO_RETRY = RetryPolicy.none()


@pytest.fixture(autouse=True)
def _no_shell_vault_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    openbao.clean_env(monkeypatch)  # a developer's VAULT_NAMESPACE etc. must not reach the local server


@pytest.fixture(scope="session")
def root(bao: openbao.OpenBaoServer) -> Any:
    return bao.client()


@pytest.fixture(scope="session")
def auth_setup(root: Any) -> dict[str, str]:
    """AppRole and userpass enabled on the dev server, both granting read/write on ``secret/``."""
    root.sys.create_or_update_policy("sk-rw", RW_POLICY)
    root.sys.create_or_update_policy("sk-ro", RO_POLICY)
    enabled = root.sys.list_auth_methods()["data"]
    if "approle/" not in enabled:
        root.sys.enable_auth_method("approle")
    if "userpass/" not in enabled:
        root.sys.enable_auth_method("userpass")
    root.adapter.post("/v1/auth/approle/role/sk-app",
                      json={"token_policies": ["sk-rw"], "token_ttl": "60s", "token_max_ttl": "10m"})
    role_id = root.adapter.get("/v1/auth/approle/role/sk-app/role-id")["data"]["role_id"]
    secret_id = root.adapter.post("/v1/auth/approle/role/sk-app/secret-id")["data"]["secret_id"]
    root.adapter.post("/v1/auth/approle/role/sk-batch",
                      json={"token_policies": ["sk-rw"], "token_ttl": "60s", "token_type": "batch"})
    batch_role_id = root.adapter.get("/v1/auth/approle/role/sk-batch/role-id")["data"]["role_id"]
    batch_secret_id = root.adapter.post("/v1/auth/approle/role/sk-batch/secret-id")["data"]["secret_id"]
    password = f"pw-{uuid.uuid4().hex}"
    root.adapter.post("/v1/auth/userpass/users/alice", json={"password": password, "token_policies": ["sk-rw"]})
    return {"role_id": role_id, "secret_id": secret_id, "password": password,
            "batch_role_id": batch_role_id, "batch_secret_id": batch_secret_id}


@pytest.fixture
def store(bao: openbao.OpenBaoServer) -> Iterator[SecretStore]:
    with secretkit.open(bao.url(), token=bao.root_token) as s:
        yield s


@pytest.fixture
def name() -> str:
    return f"sk-unit-{uuid.uuid4().hex[:10]}/item"


def bao_cli(bao: openbao.OpenBaoServer, *args: str) -> str:
    done = subprocess.run([bao.binary, *args], env=bao.cli_env(), capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


# -- URL, options, credentials ---------------------------------------------------------


WITHOUT_HVAC = textwrap.dedent("""
    import sys

    class NoHvac:  # as if the vault extra were not installed
        def find_spec(self, name, path=None, target=None):
            if name == "hvac" or name.startswith("hvac."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoHvac())
    import secretkit
    try:
        secretkit.open("vault://vault.example.com/secret", token="t", kv_version=2)
    except secretkit.ConfigError as exc:
        print("ConfigError:", exc)
""")


def test_without_hvac_open_is_a_config_error_naming_the_extra() -> None:
    done = subprocess.run([sys.executable, "-c", WITHOUT_HVAC], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ConfigError:")
    assert "pip install 'secretkit[vault]'" in done.stdout
    assert "hvac" in done.stdout


def test_tls_is_the_default_and_http_must_be_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    cases = {
        "vault://vault.example.com:8200/secret": "https://vault.example.com:8200",
        "openbao://vault.example.com/secret": "https://vault.example.com",
        "vault+http://127.0.0.1:8200/secret": "http://127.0.0.1:8200",
        "vault://127.0.0.1:8200/secret?tls=false": "http://127.0.0.1:8200",
        "vault://[::1]:8200/secret": "https://[::1]:8200",
    }
    for url, base in cases.items():
        with secretkit.open(url, token="t", kv_version=2) as s:  # explicit version: no I/O at open
            assert s.client.adapter.base_uri == base, url


def test_vault_addr_and_vault_token_are_honoured(bao: openbao.OpenBaoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", bao.address)
    monkeypatch.setenv("VAULT_TOKEN", bao.root_token)
    with secretkit.open("vault:///secret") as s:
        assert s.client.adapter.base_uri == bao.address
        assert isinstance(s.driver, KV2Driver)


def test_token_file_is_used_when_no_env(bao: openbao.OpenBaoServer, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".vault-token").write_text(bao.root_token + "\n")
    with secretkit.open(bao.url()) as s:
        assert s.client.token == bao.root_token
        assert isinstance(s.driver, KV2Driver)


def test_missing_token_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="VAULT_TOKEN"):
        secretkit.open("vault://127.0.0.1:1/secret", kv_version=2)


def test_tls_and_namespace_options_reach_the_http_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_CACERT", raising=False)
    monkeypatch.setenv("VAULT_NAMESPACE", "team-a/")
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    with secretkit.open("vault://vault.example.com/secret", token="t", kv_version=2,
                        ca_cert=str(ca), client_cert=str(cert), client_key=str(key)) as s:
        session = s.client.adapter.session
        assert session.verify == str(ca)
        assert session.cert == (str(cert), str(key))
        assert s.client.adapter.namespace == "team-a/"
    with secretkit.open("vault://h/secret", token="t", kv_version=2, namespace="ns1", tls_verify=False) as s:
        assert s.client.adapter.session.verify is False
        assert s.client.adapter.namespace == "ns1"
    with pytest.raises(ConfigError, match="client_key"):
        secretkit.open("vault://h/secret", token="t", kv_version=2, client_cert=str(cert))
    with pytest.raises(ConfigError, match="kv_versoin"):
        secretkit.open("vault://h/secret", token="t", kv_versoin=2)


def test_namespace_header_is_sent() -> None:
    def respond(req: Request) -> Reply:
        if req.path.endswith("lookup-self"):
            return Reply(200, envelope({"ttl": 0, "renewable": False}))
        return Reply(404, {"errors": []})

    with serve(respond) as rec, secretkit.open(f"vault+http://{rec.address}/secret", token="t",
                                               kv_version=2, namespace="ns1/ns2/") as s:
        with pytest.raises(NotFoundError):
            s.get("app/db")
    read = rec.requests[-1]
    assert read.path == "/v1/secret/data/app/db"
    assert read.headers["x-vault-namespace"] == "ns1/ns2/"
    assert read.headers["x-vault-token"] == "t"


def test_sdk_retries_are_off_so_only_the_store_retries() -> None:
    def respond(req: Request) -> Reply:
        if req.path.endswith("lookup-self"):
            return Reply(200, envelope({"ttl": 0, "renewable": False}))
        return Reply(503, {"errors": ["Vault is sealed"]})

    with serve(respond) as rec:
        url = f"vault+http://{rec.address}/secret"
        with secretkit.open(url, token="t", kv_version=2) as s:
            for adapter in s.client.adapter.session.adapters.values():
                assert adapter.max_retries.total == 0
            s.options = s.options.model_copy(update={"retry": RetryPolicy(max_attempts=3, initial_backoff=0)})
            with pytest.raises(UnavailableError) as info:
                s.get("app/db")
        assert info.value.attempts == 3
        reads = [r for r in rec.requests if "/data/" in r.path]
        assert len(reads) == 3  # one HTTP request per store attempt, never more


def test_kv_version_is_detected_and_mount_prefix_split(bao: openbao.OpenBaoServer) -> None:
    kv1 = openbao.enable_kv1(bao)
    with secretkit.open(bao.url("secret/team/app"), token=bao.root_token) as s:
        assert isinstance(s.driver, KV2Driver)
        assert (s.driver.mount, s.driver.prefix) == ("secret", "team/app/")
    with secretkit.open(bao.url(kv1), token=bao.root_token) as s:
        assert isinstance(s.driver, KV1Driver)
        assert s.capabilities.versions is False and s.capabilities.compare_and_set is False
    with pytest.raises(ConfigError, match="not kv"):
        secretkit.open(bao.url("cubbyhole"), token=bao.root_token)


def test_a_closed_port_says_it_cannot_connect_and_gives_no_kv_version_hint() -> None:
    """Nothing answered, so naming kv_version would send the user the wrong way."""
    port = openbao.free_port()
    with pytest.raises(UnavailableError) as info:
        secretkit.open(f"vault+http://127.0.0.1:{port}/secret", token="t")
    message = str(info.value)
    assert message.startswith(f"cannot connect to http://127.0.0.1:{port} (connection refused)"), message
    assert "kv_version" not in message


def test_tls_to_a_plain_http_server_leads_with_the_fix(bao: openbao.OpenBaoServer, name: str) -> None:
    """vault:// speaks TLS; the dev server listens on plain http. The first words say what to
    change, at open (KV version detection) and on a call of a store opened with kv_version."""
    with pytest.raises(ConfigError) as info:
        secretkit.open(f"vault://127.0.0.1:{bao.port}/secret", token=bao.root_token)
    message = str(info.value)
    assert message.startswith(f"use vault+http://127.0.0.1:{bao.port} (or tls=false):"), message
    assert "does not speak TLS" in message
    assert "kv_version" not in message
    with secretkit.open(f"vault://127.0.0.1:{bao.port}/secret", token=bao.root_token, kv_version=2,
                        retry=NO_RETRY) as s, pytest.raises(ConfigError) as info:
        s.get(name)
    assert str(info.value).startswith(f"use vault+http://127.0.0.1:{bao.port} (or tls=false):")


def test_kv_version_hint_only_when_the_server_will_not_tell(bao: openbao.OpenBaoServer, root: Any) -> None:
    """A token with no capability under the mount may not ask which KV version it is: that is
    when kv_version=1|2 is the fix, and the message leads with it."""
    root.sys.create_or_update_policy("sk-elsewhere", 'path "elsewhere/*" { capabilities = ["read"] }')
    token = root.auth.token.create(policies=["sk-elsewhere"], no_default_policy=True, ttl="10m")["auth"]["client_token"]
    with pytest.raises(PermissionDeniedError) as info:
        secretkit.open(bao.url(), token=token)
    message = str(info.value)
    assert message.startswith("pass kv_version=1 or 2"), message
    assert "sys/internal/ui/mounts/secret" in message and message.endswith("(backend vault)")
    with secretkit.open(bao.url(), token=token, kv_version=2) as s:  # the hint works: the store opens
        assert isinstance(s.driver, KV2Driver)


def test_a_client_passed_in_is_used_and_not_closed(bao: openbao.OpenBaoServer, name: str) -> None:
    client = hvac.Client(url=bao.address, token=bao.root_token)
    with secretkit.open(bao.url(), client=client) as s:
        assert s.client is client
        s.put(name, "x")
    assert client.secrets.kv.v2.read_secret_version(name, raise_on_deleted_version=True)["data"]["data"]
    client.secrets.kv.v2.delete_metadata_and_all_versions(name)


# -- values: the codec's edge cases (what native tools see: tests/interop) -----------------


def test_cli_written_secret_reads_as_fields(bao: openbao.OpenBaoServer, store: SecretStore, name: str) -> None:
    bao_cli(bao, "kv", "put", "-mount=secret", name, "user=x", "password=y")
    got = store.get(name)
    assert got.kind is Kind.FIELDS
    assert got.fields == {"user": "x", "password": "y"}
    assert got["password"] == "y"


def test_non_string_json_values_read_as_their_json_text(root: Any, store: SecretStore, name: str) -> None:
    root.secrets.kv.v2.create_or_update_secret(name, secret={"port": 5432, "tls": True, "opts": {"a": [1]}})
    got = store.get(name)
    assert got.value.map == {"port": 5432, "tls": True, "opts": {"a": [1]}}  # kept as Vault returned them
    assert got.fields == {"port": "5432", "tls": "true", "opts": '{"a":[1]}'}


def test_only_the_exact_bytes_form_reads_as_bytes() -> None:
    assert decode_value({"value": "AP8=", "encoding": "base64"}) == Value(Kind.BYTES, b"\x00\xff")
    assert decode_value({"value": "", "encoding": "base64"}) == Value(Kind.BYTES, b"")
    assert decode_value({"blob": "AP8=", "encoding": "base64"}, "blob").bytes == b"\x00\xff"
    for other in ({"value": "not base64!", "encoding": "base64"}, {"value": "AP8=", "encoding": "hex"},
                  {"value": "AP8=", "encoding": "base64", "x": "y"}, {"value": "AP8="}, {"value": 5, "encoding": "base64"},
                  {"blob": "AP8=", "encoding": "base64"}):
        assert decode_value(other) == Value(Kind.FIELDS, other), other
    assert decode_value(None) == Value(Kind.FIELDS, {})
    assert decode_value(encode_value(Value.of("t"))) == Value(Kind.FIELDS, {"value": "t"})  # text: a one-key map
    assert decode_value(encode_value(Value.of(""))).text == ""
    assert decode_value(encode_value(Value.of(b"\x00"))) == Value(Kind.BYTES, b"\x00")
    assert decode_value(encode_value(Value.of({"a": "b"}))).fields == {"a": "b"}
    assert decode_value(encode_value(Value.of({}))).fields == {}


def test_text_and_bytes_use_the_value_key_option(bao: openbao.OpenBaoServer, root: Any, name: str) -> None:
    with secretkit.open(bao.url(), token=bao.root_token, value_key="password") as s:
        s.put(name, "hunter2")
        assert root.secrets.kv.v2.read_secret_version(name, raise_on_deleted_version=True)["data"]["data"] == {
            "password": "hunter2"}
        assert s.get(name).text == "hunter2"
        s.put(name, b"\xff")
        assert root.secrets.kv.v2.read_secret_version(name, raise_on_deleted_version=True)["data"]["data"] == {
            "password": "/w==", "encoding": "base64"}
        assert s.get(name).bytes == b"\xff"
        s.delete(name, purge=True)
    with pytest.raises(ConfigError, match="value_key"):
        secretkit.open(bao.url(), token=bao.root_token, value_key="encoding")


def test_values_that_would_not_read_back_are_refused_before_io(bao: openbao.OpenBaoServer, name: str) -> None:
    kv1 = openbao.enable_kv1(bao)
    with secretkit.open(bao.url(), token=bao.root_token) as s:
        spy = CountingDriver(s.driver)
        counted = SecretStore(spy, options=s.options)
        with pytest.raises(InvalidArgumentError, match="read back as bytes"):
            counted.put(name, {"value": "AP8=", "encoding": "base64"})
        with pytest.raises(InvalidArgumentError, match="field 'key' holds octets that are not UTF-8"):
            counted.put(name, {"key": b"\xff\xfe"})
        assert spy.total == 0
        s.put(name, {"key": b"utf-8 \xc3\xa9"})  # octets that are UTF-8 text are kept as that text
        assert s.get(name).fields == {"key": "utf-8 é"}
        s.delete(name, purge=True)
    with secretkit.open(bao.url(kv1), token=bao.root_token) as s:
        with pytest.raises(InvalidArgumentError, match="without fields"):
            s.put(name, {})


# -- KV v2 semantics ---------------------------------------------------------------------


def test_delete_is_a_recoverable_soft_delete(root: Any, store: SecretStore, name: str) -> None:
    store.put(name, "one")
    store.put(name, "two")
    store.delete(name)
    with pytest.raises(NotFoundError, match="deleted.*recoverable"):
        store.get(name)
    states = {v.version: v.state for v in store.versions(name)}
    assert states == {"2": "deleted", "1": "deleted"}
    assert not any(v.is_current for v in store.versions(name))
    with pytest.raises(NotFoundError, match="already deleted"):
        store.delete(name)
    root.secrets.kv.v2.undelete_secret_versions(name, versions=[1, 2])
    assert store.get(name).text == "two"
    assert store.get(name, version="1").text == "one"
    store.delete(name, purge=True)


def test_purge_removes_every_version_and_the_metadata(root: Any, store: SecretStore, name: str) -> None:
    store.put(name, "one")
    store.delete(name)
    store.delete(name, purge=True)  # purging a soft-deleted secret is allowed
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_metadata(name)
    with pytest.raises(NotFoundError):
        store.versions(name)
    assert store.put(name, "fresh").version == "1"
    store.delete(name, purge=True)


def test_destroyed_version_reads_as_not_found_with_a_reason(root: Any, store: SecretStore, name: str) -> None:
    store.put(name, "one")
    store.put(name, "two")
    root.secrets.kv.v2.destroy_secret_versions(name, versions=[1])
    with pytest.raises(NotFoundError, match="version 1 was destroyed"):
        store.get(name, version="1")
    assert [v.state for v in store.versions(name)] == ["enabled", "destroyed"]
    for bad in ("0", "abc", "-1"):
        with pytest.raises(NotFoundError, match="numbers from 1"):
            store.get(name, version=bad)
    store.delete(name, purge=True)


def test_put_and_create_only_after_delete(store: SecretStore, name: str) -> None:
    store.put(name, "old")
    store.delete(name)
    info = store.put(name, "reborn", create_only=True)  # only deleted versions: counts as absent
    assert info.version == "2"
    with pytest.raises(AlreadyExistsError):
        store.put(name, "again", create_only=True)
    assert store.get(name).text == "reborn"
    store.delete(name, purge=True)


def test_if_version_must_be_the_current_number(store: SecretStore, name: str) -> None:
    v1 = store.put(name, "one").version
    for bad in ("abc", "0", "v1", "2"):
        with pytest.raises(ConflictError):
            store.put(name, "x", if_version=bad)
    assert store.put(name, "two", if_version=v1).version == "2"
    store.delete(name, purge=True)


@pytest.mark.parametrize("spelling", ["01", "001", "\uff11", "\u0661", "\u09e7", "1\u200b"], ids=repr)
def test_a_version_id_is_compared_exactly_as_the_store_returned_it(
    root: Any, store: SecretStore, name: str, spelling: str
) -> None:
    """``int()`` reads '01', fullwidth '１' and Arabic-Indic '١' as 1; Vault's cas would then
    match version 1. The store returned "1", and like every other backend an id that is not
    exactly a version id is a ConflictError for ``if_version`` (NotFoundError for a read),
    decided before any request."""
    assert store.put(name, "one").version == "1"
    sent: list[str] = []
    hooks = store.driver.client.adapter.session.hooks["response"]  # type: ignore[attr-defined]
    hooks.append(lambda response, *args, **kwargs: sent.append(response.request.method))
    with pytest.raises(ConflictError):
        store.put(name, "overwritten", if_version=spelling)
    with pytest.raises(NotFoundError):
        store.get(name, version=spelling)
    assert sent == []  # decided before any request
    hooks.pop()
    meta = root.secrets.kv.v2.read_secret_metadata(name)["data"]
    assert meta["current_version"] == 1 and store.get(name, refresh=True).text == "one"
    store.delete(name, purge=True)


def test_previous_is_the_version_before_the_current_one(root: Any, store: SecretStore, name: str) -> None:
    store.put(name, "one")
    with pytest.raises(NotFoundError, match="no previous version"):
        store.get(name, stage=Stage.PREVIOUS)
    assert [v.stages for v in store.versions(name)] == [frozenset({Stage.CURRENT})]
    store.put(name, "two")
    previous = store.get(name, stage=Stage.PREVIOUS, refresh=True)
    assert (previous.text, previous.version, previous.stages) == ("one", "1", frozenset({Stage.PREVIOUS}))
    assert [(v.version, v.stages) for v in store.versions(name)] == [
        ("2", frozenset({Stage.CURRENT})), ("1", frozenset({Stage.PREVIOUS}))]
    root.secrets.kv.v2.destroy_secret_versions(name, versions=[1])
    with pytest.raises(NotFoundError, match="version 1 was destroyed"):
        store.get(name, stage=Stage.PREVIOUS, refresh=True)
    # versions() marks previous exactly where get(stage="previous") finds it: not on a destroyed one
    assert [(v.version, v.stages, v.state) for v in store.versions(name)] == [
        ("2", frozenset({Stage.CURRENT}), "enabled"), ("1", frozenset(), "destroyed")]
    store.put(name, "three")
    store.delete(name)  # soft delete of the current version: no current, so no previous either
    assert [v.stages for v in store.versions(name)] == [frozenset(), frozenset(), frozenset()]
    with pytest.raises(NotFoundError):
        store.get(name, stage=Stage.PREVIOUS, refresh=True)
    store.delete(name, purge=True)


def test_a_live_token_without_the_default_policy_is_denied_not_dead(bao: openbao.OpenBaoServer, root: Any,
                                                                    name: str) -> None:
    """Such a token may not look itself up either; its 403 is the ACL's, not a dead token's."""
    root.sys.create_or_update_policy("sk-one-path", f'path "secret/data/{name}" {{ capabilities = ["read"] }}')
    root.secrets.kv.v2.create_or_update_secret(name, secret={"value": "one"})
    token = root.auth.token.create(policies=["sk-one-path"], no_default_policy=True, ttl="10m")["auth"]["client_token"]
    with secretkit.open(bao.url(), token=token) as s:
        assert s.get(name).text == "one"
        with pytest.raises(PermissionDeniedError):
            s.get(f"{name}-other")
        assert s.driver.current_version(name) == "1"  # type: ignore[attr-defined]  # metadata denied: data path
    root.secrets.kv.v2.delete_metadata_and_all_versions(name)


def test_current_version_reads_metadata_only(store: SecretStore, name: str) -> None:
    driver = store.driver
    assert isinstance(driver, KV2Driver)
    assert driver.current_version(store.put(name, "one").name) == "1"
    two = store.put(name, "two").version
    assert driver.current_version(name) == two == "2"
    store.delete(name)
    with pytest.raises(NotFoundError, match="current version 2 is deleted"):
        driver.current_version(name)
    store.delete(name, purge=True)


def test_list_recurses_skips_deleted_and_shows_native_names(root: Any, store: SecretStore) -> None:
    base = f"sk-list-{uuid.uuid4().hex[:8]}"
    names = [f"{base}/a", f"{base}/b/c", f"{base}/b/d/e", f"{base}/gone"]
    for n in names:
        store.put(n, "v")
    store.delete(f"{base}/gone")
    root.secrets.kv.v2.create_or_update_secret(f"{base}/has space", secret={"k": "v"})
    assert list(store.list(f"{base}/")) == [f"{base}/a", f"{base}/b/c", f"{base}/b/d/e", f"{base}/has space"]
    assert list(store.list(f"{base}/b/d")) == [f"{base}/b/d/e"]
    assert list(store.list(f"{base}-nothing/")) == []
    assert store.get(f"{base}/has space")["k"] == "v"
    for n in [*names, f"{base}/has space"]:
        root.secrets.kv.v2.delete_metadata_and_all_versions(n)


def test_max_value_bytes_is_an_option(bao: openbao.OpenBaoServer) -> None:
    with secretkit.open(bao.url(), token=bao.root_token, max_value_bytes=1000) as s:
        assert s.capabilities.max_value_bytes == 1000
        with pytest.raises(InvalidArgumentError):
            s.put("too/big", b"x" * 1001)


# -- KV v1 -------------------------------------------------------------------------------


def test_kv1_versions_are_content_digests_and_delete_is_permanent(bao: openbao.OpenBaoServer, root: Any,
                                                                  name: str) -> None:
    mount = openbao.enable_kv1(bao)
    with secretkit.open(bao.url(mount), token=bao.root_token) as s:
        a = s.put(name, "same").version
        assert s.put(name, "same").version == a == s.get(name).version
        assert s.put(name, "other").version != a
        with pytest.raises(NotSupportedError):
            s.versions(name)
        with pytest.raises(NotSupportedError):
            s.put(name, "x", if_version=a)
        s.delete(name)
        with pytest.raises(hvac.exceptions.InvalidPath):
            root.secrets.kv.v1.read_secret(name, mount_point=mount)


# -- authentication ----------------------------------------------------------------------


def token_info(root: Any, token: str) -> dict[str, Any]:
    data: dict[str, Any] = root.auth.token.lookup(token)["data"]
    return data


def test_approle_login(bao: openbao.OpenBaoServer, root: Any, auth_setup: dict[str, str], name: str) -> None:
    with secretkit.open(bao.url(), auth="approle", role_id=auth_setup["role_id"],
                        secret_id=auth_setup["secret_id"]) as s:
        s.put(name, "via approle")
        assert s.get(name).text == "via approle"
        assert s.client.token != bao.root_token
        info = token_info(root, s.client.token)
        assert "sk-rw" in info["policies"] and info["meta"]["role_name"] == "sk-app"
        s.delete(name, purge=True)


def test_approle_credentials_from_the_environment(bao: openbao.OpenBaoServer, auth_setup: dict[str, str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ROLE_ID", auth_setup["role_id"])
    monkeypatch.setenv("VAULT_SECRET_ID", auth_setup["secret_id"])
    with secretkit.open(bao.url(), auth="approle") as s:
        assert isinstance(s.driver, KV2Driver)
    monkeypatch.delenv("VAULT_ROLE_ID")
    with pytest.raises(ConfigError, match="role_id"):
        secretkit.open(bao.url(), auth="approle")


def test_userpass_login_and_a_refused_login(bao: openbao.OpenBaoServer, auth_setup: dict[str, str],
                                            name: str) -> None:
    with secretkit.open(bao.url(), auth="userpass", username="alice", password=auth_setup["password"]) as s:
        s.put(name, "via userpass")
        assert s.get(name).text == "via userpass"
        s.delete(name, purge=True)
    with pytest.raises(AuthenticationError, match="userpass") as info:
        secretkit.open(bao.url(), auth="userpass", username="alice", password=SENTINEL)
    assert SENTINEL not in str(info.value)


def test_renewable_token_is_renewed_before_expiry(bao: openbao.OpenBaoServer, root: Any, name: str) -> None:
    token = root.auth.token.create(policies=["sk-rw"], ttl="60s", explicit_max_ttl="1h")["auth"]["client_token"]
    with secretkit.open(bao.url(), token=token) as s:
        s.put(name, "x")
        assert "last_renewal_time" not in token_info(root, token)
        keeper = s.driver._keeper  # type: ignore[union-attr]
        now = keeper._clock()
        keeper._clock = lambda: now + 45  # 15 s of 60 left: below the one-third mark
        assert s.get(name).text == "x"
        assert token_info(root, token).get("last_renewal_time")
        s.delete(name, purge=True)


def test_login_token_is_renewed_before_expiry(bao: openbao.OpenBaoServer, root: Any,
                                              auth_setup: dict[str, str], name: str) -> None:
    with secretkit.open(bao.url(), auth="approle", role_id=auth_setup["role_id"],
                        secret_id=auth_setup["secret_id"]) as s:
        s.put(name, "x")
        first = s.client.token
        keeper = s.driver._keeper  # type: ignore[union-attr]
        now = keeper._clock()
        keeper._clock = lambda: now + 50  # 10 s of 60 left
        assert s.get(name).text == "x"
        assert s.client.token == first and token_info(root, first).get("last_renewal_time")
        s.delete(name, purge=True)


def test_unrenewable_login_token_is_replaced_by_a_new_login(bao: openbao.OpenBaoServer, root: Any,
                                                            auth_setup: dict[str, str], name: str) -> None:
    with secretkit.open(bao.url(), auth="approle", role_id=auth_setup["batch_role_id"],
                        secret_id=auth_setup["batch_secret_id"]) as s:
        s.put(name, "x")
        first = s.client.token
        assert token_info(root, first)["renewable"] is False  # batch tokens cannot be renewed
        keeper = s.driver._keeper  # type: ignore[union-attr]
        now = keeper._clock()
        keeper._clock = lambda: now + 50
        assert s.get(name).text == "x"
        assert s.client.token != first
        s.delete(name, purge=True)


def test_revoked_login_token_triggers_one_relogin(bao: openbao.OpenBaoServer, root: Any,
                                                  auth_setup: dict[str, str], name: str) -> None:
    with secretkit.open(bao.url(), auth="userpass", username="alice", password=auth_setup["password"]) as s:
        s.put(name, "x")
        old = s.client.token
        root.auth.token.revoke(old)
        assert s.get(name).text == "x"
        assert s.client.token != old
        s.delete(name, purge=True)


def test_revoked_plain_token_is_unauthenticated(bao: openbao.OpenBaoServer, root: Any) -> None:
    token = root.auth.token.create(policies=["sk-rw"], ttl="10m")["auth"]["client_token"]
    with secretkit.open(bao.url(), token=token) as s:
        root.auth.token.revoke(token)
        with pytest.raises(AuthenticationError, match="revoked"):
            s.get("any/thing")


def test_kubernetes_login_request_shape(tmp_path: Path) -> None:
    """No TokenReview API is available here, so this checks the request Vault would receive."""
    jwt = tmp_path / "token"
    jwt.write_text("eyJhbGciOi.sa-jwt.sig\n")

    def respond(req: Request) -> Reply:
        if req.path.endswith("/login"):
            return Reply(200, envelope(auth={"client_token": "k8s-granted", "accessor": "a", "policies": ["default"],
                                             "metadata": {"role": "app"}, "lease_duration": 3600,
                                             "renewable": True, "entity_id": "", "token_type": "service",
                                             "orphan": True}))
        return Reply(404, {"errors": []})

    with serve(respond) as rec:
        with secretkit.open(f"vault+http://{rec.address}/secret", kv_version=2, auth="kubernetes", role="app",
                            jwt_path=str(jwt), auth_mount="k8s-prod") as s:
            with pytest.raises(NotFoundError):
                s.get("app/db")
        login, read = rec.requests
        assert (login.method, login.path) == ("POST", "/v1/auth/k8s-prod/login")
        assert login.body == {"role": "app", "jwt": "eyJhbGciOi.sa-jwt.sig"}
        assert "x-vault-token" not in login.headers
        assert read.headers["x-vault-token"] == "k8s-granted"
    with pytest.raises(ConfigError, match="service-account token"):
        secretkit.open("vault+http://127.0.0.1:1/secret", kv_version=2, auth="kubernetes", role="app",
                       jwt_path=str(tmp_path / "absent")).get("x")


# -- errors ------------------------------------------------------------------------------


def test_acl_denial_is_permission_denied_and_not_retried(bao: openbao.OpenBaoServer, root: Any,
                                                         auth_setup: dict[str, str]) -> None:
    token = root.auth.token.create(policies=["sk-ro"], ttl="10m")["auth"]["client_token"]
    events: list[AuditEvent] = []
    with secretkit.open(bao.url(), token=token) as s:
        s.add_audit_hook(events.append)
        with pytest.raises(PermissionDeniedError) as info:
            s.put("denied/item", SENTINEL)
        with pytest.raises(NotFoundError):
            s.get("allowed/missing")  # readable path: 404, not 403
    assert SENTINEL not in str(info.value) and SENTINEL not in repr(info.value.__cause__)
    assert not info.value.transient
    assert events[0].attempts == 1 and events[0].outcome == "permission_denied"


def test_closed_port_is_unavailable_and_retried(bao: openbao.OpenBaoServer) -> None:
    port = openbao.free_port()
    with secretkit.open(f"vault+http://127.0.0.1:{port}/secret", token="t", kv_version=2,
                        **{"retry.max_attempts": 2, "retry.initial_backoff": 0}) as s:
        with pytest.raises(UnavailableError) as info:
            s.get("x")
    assert info.value.attempts == 2 and info.value.transient


def test_sealed_server_and_rate_limit_quota(tmp_path: Path) -> None:
    binary = openbao.bao_binary()
    assert binary is not None
    server = openbao.OpenBaoServer(binary).start()  # its own server: sealing it must not hurt the others
    try:
        admin = server.client()
        admin.sys.create_or_update_quota("sk-slow", rate=1, path="secret/", interval="60s")
        with secretkit.open(server.url(), token=server.root_token, kv_version=2, retry=NO_RETRY) as s:
            s.put("quota/first", "ok")
            with pytest.raises(ThrottledError) as throttled:
                s.get("quota/first")
            assert throttled.value.transient
            admin.sys.delete_quota("sk-slow")
            admin.sys.seal()
            with pytest.raises(UnavailableError, match="sealed") as sealed:
                s.get("quota/first")
            assert sealed.value.transient
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("status", "errors", "expected"),
    [
        (400, ["invalid request"], InvalidArgumentError),
        (403, ["1 error occurred:\n\t* permission denied\n\n"], PermissionDeniedError),
        (405, ["unsupported operation"], NotSupportedError),
        (413, ["http: request body too large"], InvalidArgumentError),
        (429, ["rate limit quota exceeded"], ThrottledError),
        (500, ["internal error"], UnavailableError),
        (502, ["upstream failure"], UnavailableError),
        (503, ["Vault is in standby mode"], UnavailableError),
        (412, ["required index state not present"], UnavailableError),
        (415, ["unsupported content type"], InvalidArgumentError),
        (423, ["API access to this namespace has been locked by an administrator"], PermissionDeniedError),
        (418, ["teapot"], SecretError),
    ],
)
def test_status_codes_map_to_portable_errors(status: int, errors: list[str], expected: type[Exception]) -> None:
    def respond(req: Request) -> Reply:
        if req.path.endswith("lookup-self"):
            return Reply(200, envelope({"ttl": 0, "renewable": False}))
        return Reply(status, {"errors": errors})

    with serve(respond) as rec, secretkit.open(f"vault+http://{rec.address}/secret", token="t", kv_version=2,
                                               retry=NO_RETRY) as s:
        with pytest.raises(expected) as info:
            s.get("app/db")
    assert type(info.value) is expected
    assert info.value.transient == (status in (412, 429, 500, 502, 503))
    assert "/v1/secret/data/app/db" in str(info.value)


def test_read_timeout_is_deadline_exceeded() -> None:
    def respond(req: Request) -> Reply:
        if req.path.endswith("lookup-self"):
            return Reply(200, envelope({"ttl": 0, "renewable": False}))
        return Reply(200, envelope({}), delay=1.5)

    with serve(respond) as rec, secretkit.open(f"vault+http://{rec.address}/secret", token="t", kv_version=2,
                                               timeout=0.3, retry=NO_RETRY) as s:
        with pytest.raises(DeadlineExceededError):
            s.get("slow")


def test_classify_real_hvac_and_requests_exceptions(root: Any, name: str) -> None:
    with pytest.raises(hvac.exceptions.InvalidRequest) as bad_cas:
        root.secrets.kv.v2.create_or_update_secret(name, secret={"k": "v"}, cas="abc")
    assert classify(bad_cas.value) is not None and classify(bad_cas.value).code is ErrorCode.INVALID_ARGUMENT  # type: ignore[union-attr]
    with pytest.raises(hvac.exceptions.InvalidPath) as missing:
        root.secrets.kv.v2.read_secret_version(name, raise_on_deleted_version=True)
    assert classify(missing.value).code is ErrorCode.NOT_FOUND  # type: ignore[union-attr]
    assert classify(ValueError("not ours")) is None


def test_plain_put_works_on_a_mount_that_requires_cas(bao: openbao.OpenBaoServer, root: Any, name: str) -> None:
    if "cas-kv/" not in root.sys.list_mounted_secrets_engines()["data"]:
        root.sys.enable_secrets_engine("kv", path="cas-kv", options={"version": "2"})
        root.secrets.kv.v2.configure(cas_required=True, mount_point="cas-kv")
    with secretkit.open(bao.url("cas-kv"), token=bao.root_token) as s:
        assert s.put(name, "one").version == "1"
        assert s.put(name, "two").version == "2"
        with pytest.raises(ConflictError):
            s.put(name, "x", if_version="1")
        assert s.get(name).text == "two"


def test_explicit_mount_for_a_nested_mount(bao: openbao.OpenBaoServer, root: Any, name: str) -> None:
    if "team/kv/" not in root.sys.list_mounted_secrets_engines()["data"]:
        root.sys.enable_secrets_engine("kv", path="team/kv", options={"version": "2"})
    with secretkit.open(bao.url("team/kv/app"), token=bao.root_token, kv_version=2, mount="team/kv") as s:
        s.put(name, "nested")
    assert root.secrets.kv.v2.read_secret_version(f"app/{name}", mount_point="team/kv",
                                                  raise_on_deleted_version=True)["data"]["data"]
    with secretkit.open(bao.url("team/kv/app"), token=bao.root_token) as s:  # detected the same way
        assert (s.driver.mount, s.driver.prefix) == ("team/kv", "app/")  # type: ignore[union-attr]
        assert s.get(name).text == "nested"
    with pytest.raises(ConfigError, match="not inside mount"):
        secretkit.open(bao.url("other/app"), token="t", kv_version=2, mount="team/kv")


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")  # tls_verify=false warns, as it should
def test_tls_with_a_ca_bundle_and_refusals_without_it(bao: openbao.OpenBaoServer, name: str) -> None:
    binary = openbao.bao_binary()
    assert binary is not None
    server = openbao.OpenBaoServer(binary, tls=True).start()  # -dev-tls: its own CA and certificate
    try:
        with secretkit.open(server.url(), token=server.root_token, ca_cert=server.ca_cert) as s:
            assert s.client.adapter.base_uri.startswith("https://")
            s.put(name, "over tls")
            assert s.get(name).text == "over tls"
        with pytest.raises(ConfigError, match="untrusted certificate") as untrusted:
            secretkit.open(server.url(), token=server.root_token)  # system CAs do not know the dev CA
        assert str(untrusted.value).startswith("set ca_cert (or VAULT_CACERT)"), untrusted.value
        assert "kv_version" not in str(untrusted.value)
        with pytest.raises(ConfigError) as plain:  # plain http to a TLS server
            secretkit.open(f"vault+http://127.0.0.1:{server.port}/secret", token=server.root_token)
        assert str(plain.value).startswith(f"use vault://127.0.0.1:{server.port} (or tls=true):"), plain.value
        assert "kv_version" not in str(plain.value)
        with secretkit.open(server.url(), token=server.root_token, tls_verify=False) as s:
            assert s.get(name).text == "over tls"
    finally:
        server.stop()
    with pytest.raises(ConfigError, match="does not speak TLS"):
        secretkit.open(f"vault://127.0.0.1:{bao.port}/secret", token=bao.root_token)  # https to an http server


def test_concurrent_calls_on_a_revoked_token_share_one_relogin(bao: openbao.OpenBaoServer, root: Any,
                                                               auth_setup: dict[str, str], name: str) -> None:
    import threading

    with secretkit.open(bao.url(), auth="approle", role_id=auth_setup["role_id"],
                        secret_id=auth_setup["secret_id"]) as s:
        s.put(name, "x")
        keeper = s.driver._keeper  # type: ignore[union-attr]
        logins: list[str] = []
        real_login = keeper.login

        def counted_login() -> None:
            logins.append("login")
            real_login()

        keeper.login = counted_login
        root.auth.token.revoke(s.client.token)
        barrier = threading.Barrier(6)
        results: list[object] = []

        def reader() -> None:
            barrier.wait()
            try:
                results.append(s.get(name).text)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion
                results.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == ["x"] * 6
        assert logins == ["login"]
        s.delete(name, purge=True)
