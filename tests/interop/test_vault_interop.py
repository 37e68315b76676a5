"""vault:// against the backend's own clients: the real ``bao`` CLI, hvac and ``bao agent``, on a
real OpenBao dev server, KV v2 and KV v1, in both directions.

What each side sees is asserted exactly, so these tests are also the source of the "what a native
reader sees" table in docs/backends/vault.md. The reader and rotator policies of that page are
read from it and tried with real tokens.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import pytest

import secretkit
from secretkit.drivers.vault.codec import NAME_RULE
from secretkit.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    PermissionDeniedError,
)
from secretkit.secret import Kind, Stage
from secretkit.store import SecretStore
from secretkit.testing.spy import CountingDriver
from tests.doubles import openbao

DOCS = Path(__file__).resolve().parents[2] / "docs" / "backends" / "vault.md"
TEXT = "s3cret-Pa55"
JSON_TEXT = '{"user": "app", "port": 5432}'
UNICODE_TEXT = 'pässwörd 🔑 ключ 鍵\nsecond line\t"quoted"'
OCTETS = bytes(range(256))
CANARY = "CANARY-vault-interop-6b1e"


@pytest.fixture(autouse=True)
def _no_shell_vault_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    openbao.clean_env(monkeypatch)  # a developer's VAULT_NAMESPACE etc. must not reach the local server


@pytest.fixture(scope="module")
def root(bao: openbao.OpenBaoServer) -> Any:
    return bao.client()


@pytest.fixture(params=["2", "1"], ids=["kv2", "kv1"])
def mount(request: pytest.FixtureRequest, bao: openbao.OpenBaoServer) -> str:
    return "secret" if request.param == "2" else openbao.enable_kv1(bao)


@pytest.fixture
def store(bao: openbao.OpenBaoServer, mount: str) -> Iterator[SecretStore]:
    with secretkit.open(bao.url(mount), token=bao.root_token) as s:
        yield s


@pytest.fixture
def base(bao: openbao.OpenBaoServer, mount: str, root: Any) -> Iterator[str]:
    """A fresh folder; everything below it is removed afterwards."""
    folder = f"sk-interop-{uuid.uuid4().hex[:8]}"
    yield folder
    for path in walk(root, mount, folder + "/"):
        if mount == "secret":
            root.secrets.kv.v2.delete_metadata_and_all_versions(path)
        else:
            root.secrets.kv.v1.delete_secret(path, mount_point=mount)


def walk(root: Any, mount: str, folder: str) -> list[str]:
    """Every path below ``folder``, as the server holds it (hvac LIST, recursively)."""
    kv = root.secrets.kv.v2 if mount == "secret" else root.secrets.kv.v1
    try:
        keys = kv.list_secrets(folder, mount_point=mount)["data"]["keys"]
    except hvac.exceptions.InvalidPath:
        return []
    found: list[str] = []
    for key in keys:
        found += walk(root, mount, folder + key) if key.endswith("/") else [folder + key]
    return found


def bao_cli(bao: openbao.OpenBaoServer, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([bao.binary, *args], env=env or bao.cli_env(), input=stdin, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def cli_map(bao: openbao.OpenBaoServer, mount: str, name: str) -> Any:
    """``bao kv get -format=json MOUNT/NAME``: the KV map as the CLI shows it."""
    shown = json.loads(bao_cli(bao, "kv", "get", "-format=json", f"{mount}/{name}"))
    return shown["data"]["data"] if mount == "secret" else shown["data"]


def cli_field(bao: openbao.OpenBaoServer, mount: str, name: str, field: str = "value") -> str:
    return bao_cli(bao, "kv", "get", f"-field={field}", f"{mount}/{name}")


def hvac_map(root: Any, mount: str, name: str) -> Any:
    if mount == "secret":
        return root.secrets.kv.v2.read_secret_version(name, raise_on_deleted_version=True)["data"]["data"]
    return root.secrets.kv.v1.read_secret(name, mount_point=mount)["data"]


def hvac_put(root: Any, mount: str, name: str, data: dict[str, Any]) -> None:
    if mount == "secret":
        root.secrets.kv.v2.create_or_update_secret(name, secret=data)
    else:
        root.secrets.kv.v1.create_or_update_secret(name, secret=data, mount_point=mount, method="PUT")


# -- secretkit writes, the CLI and hvac read ------------------------------------------------


@pytest.mark.parametrize("text", [TEXT, JSON_TEXT, UNICODE_TEXT, ""], ids=["text", "json-text", "unicode", "empty"])
def test_text_written_here_is_the_value_field(bao: openbao.OpenBaoServer, root: Any, store: SecretStore,
                                              mount: str, base: str, text: str) -> None:
    name = f"{base}/text"
    store.put(name, text)
    assert cli_map(bao, mount, name) == {"value": text}
    assert cli_field(bao, mount, name) == text  # exactly: no newline added, JSON text not parsed
    assert hvac_map(root, mount, name) == {"value": text}


@pytest.mark.parametrize("octets", [OCTETS, "é".encode(), b""], ids=["non-utf8", "utf8", "empty"])
def test_bytes_written_here_are_base64_with_the_marker(bao: openbao.OpenBaoServer, root: Any, store: SecretStore,
                                                       mount: str, base: str, octets: bytes) -> None:
    name = f"{base}/bytes"
    store.put(name, octets)
    encoded = base64.b64encode(octets).decode("ascii")
    assert cli_map(bao, mount, name) == {"value": encoded, "encoding": "base64"}
    assert base64.b64decode(cli_field(bao, mount, name)) == octets
    assert cli_field(bao, mount, name, "encoding") == "base64"
    assert hvac_map(root, mount, name) == {"value": encoded, "encoding": "base64"}


def test_fields_written_here_are_the_kv_map(bao: openbao.OpenBaoServer, root: Any, store: SecretStore,
                                            mount: str, base: str) -> None:
    name = f"{base}/fields"
    fields = {"username": "app", "password": "p@ss wörd 🔑", "empty": "", "json": '{"a":1}'}
    store.put(name, fields)
    assert cli_map(bao, mount, name) == fields
    assert cli_field(bao, mount, name, "password") == fields["password"]
    assert hvac_map(root, mount, name) == fields
    if mount == "secret":  # KV v1 refuses a map without fields (test_vault_driver covers the refusal)
        store.put(name, {})
        assert cli_map(bao, mount, name) == {}


# -- the CLI and hvac write, secretkit reads ------------------------------------------------


@pytest.mark.parametrize("text", [TEXT, JSON_TEXT, UNICODE_TEXT], ids=["text", "json-text", "unicode"])
def test_cli_value_field_reads_as_text(bao: openbao.OpenBaoServer, store: SecretStore, mount: str, base: str,
                                       text: str) -> None:
    name = f"{base}/cli-text"
    bao_cli(bao, "kv", "put", f"{mount}/{name}", "value=-", stdin=text)
    got = store.get(name)
    assert got.kind is Kind.FIELDS and got.value.map == {"value": text}
    assert got.text == text
    assert got.bytes == text.encode("utf-8")
    if text == JSON_TEXT:  # its fields are the object's members, as the same text has on every backend
        assert got.fields == {"user": "app", "port": "5432"} and store.resolve(f"{name}#user") == "app"
    else:  # other text keeps the field it is stored in (Vault Agent's .Data.data.value)
        assert got.fields == {"value": text}
        assert got["value"] == text and store.resolve(f"{name}#value") == text
    assert store.resolve(name) == text


def test_cli_written_base64_with_the_marker_reads_as_bytes(bao: openbao.OpenBaoServer, store: SecretStore,
                                                           mount: str, base: str) -> None:
    name = f"{base}/cli-bytes"
    encoded = base64.b64encode(OCTETS).decode("ascii")
    bao_cli(bao, "kv", "put", f"{mount}/{name}", f"value={encoded}", "encoding=base64")
    got = store.get(name)
    assert got.kind is Kind.BYTES
    assert got.bytes == OCTETS
    with pytest.raises(InvalidArgumentError):
        got.text  # noqa: B018 - not UTF-8
    bao_cli(bao, "kv", "put", f"{mount}/{name}", f"value={encoded}")  # no marker: it is just text
    assert store.get(name, refresh=True).text == encoded


def test_cli_written_fields_read_every_view(bao: openbao.OpenBaoServer, store: SecretStore, mount: str,
                                            base: str) -> None:
    name = f"{base}/cli-fields"
    bao_cli(bao, "kv", "put", f"{mount}/{name}", "username=app", "password=pw 1", "port=5432")
    got = store.get(name)
    assert got.kind is Kind.FIELDS
    assert got.fields == {"username": "app", "password": "pw 1", "port": "5432"}  # key=value stores strings
    assert got["password"] == "pw 1"
    assert got.field_bytes("username") == b"app"
    assert got.text == '{"password":"pw 1","port":"5432","username":"app"}'
    assert got.bytes == got.text.encode("utf-8")


def test_cli_written_json_numbers_keep_their_type(bao: openbao.OpenBaoServer, root: Any, store: SecretStore,
                                                  mount: str, base: str, tmp_path: Path) -> None:
    name = f"{base}/cli-json"
    document = {"host": "db", "port": 5432, "tls": True, "replicas": ["a", "b"], "ratio": 0.5}
    (tmp_path / "data.json").write_text(json.dumps(document))
    bao_cli(bao, "kv", "put", f"{mount}/{name}", f"@{tmp_path / 'data.json'}")
    assert hvac_map(root, mount, name) == document  # a real number, unlike port=5432
    got = store.get(name)
    assert got.value.map == document  # as Vault returned it
    assert got.fields == {"host": "db", "port": "5432", "tls": "true", "replicas": '["a","b"]', "ratio": "0.5"}
    assert got["port"] == "5432"
    assert json.loads(got.text) == document


def test_hvac_written_maps_read_the_same(root: Any, store: SecretStore, mount: str, base: str) -> None:
    hvac_put(root, mount, f"{base}/h-text", {"value": UNICODE_TEXT})
    hvac_put(root, mount, f"{base}/h-bytes", {"value": base64.b64encode(OCTETS).decode(), "encoding": "base64"})
    hvac_put(root, mount, f"{base}/h-fields", {"username": "app", "port": 5432})
    assert store.get(f"{base}/h-text").text == UNICODE_TEXT
    assert store.get(f"{base}/h-bytes").bytes == OCTETS
    assert store.get(f"{base}/h-fields").fields == {"username": "app", "port": "5432"}


# -- names ----------------------------------------------------------------------------------

NATIVE_NAMES = ["has space/db pass", "ünïcödé/名前 🔑", "q?x=1#frag%41", "trailing.", ".hidden/x", "a+b=c@d",
                "-leading-dash", "...", " padded "]
#: Each refused name, and what the server or the HTTP layer would have done with it.
REFUSED_NAMES = {"a//b": "a/b", "/lead": "lead", "trail/": "trail", "a/./b": "a/b", "a/../b": "b",
                 "a/.": None, "no\u00a0break": None, "zero\u200bwidth": None, "\u3000ideographic": None}


def test_native_names_are_used_unchanged_both_ways(bao: openbao.OpenBaoServer, root: Any, store: SecretStore,
                                                   mount: str, base: str) -> None:
    for leaf in NATIVE_NAMES:
        name = f"{base}/{leaf}"
        store.put(name, f"from secretkit: {leaf}")
        assert cli_field(bao, mount, name) == f"from secretkit: {leaf}"
        bao_cli(bao, "kv", "put", f"{mount}/{name} cli", f"value=from cli: {leaf}")
        assert store.get(f"{name} cli").text == f"from cli: {leaf}"
    expected = sorted(f"{base}/{leaf}{suffix}" for leaf in NATIVE_NAMES for suffix in ("", " cli"))
    assert sorted(walk(root, mount, base + "/")) == expected  # the server holds exactly these paths
    assert list(store.list(base + "/")) == expected  # and lists them unchanged
    store.delete(f"{base}/{NATIVE_NAMES[0]}")
    assert not store.exists(f"{base}/{NATIVE_NAMES[0]}")


@pytest.mark.parametrize("leaf", list(REFUSED_NAMES), ids=[repr(n) for n in REFUSED_NAMES])
def test_names_the_server_refuses_or_rewrites_are_refused_before_io(
    root: Any, store: SecretStore, mount: str, base: str, leaf: str
) -> None:
    name = f"{base}/{leaf}" if not leaf.startswith("/") else f"/{base}{leaf}"
    spy = CountingDriver(store.driver)
    counted = SecretStore(spy, options=store.options)
    for call in (lambda: counted.put(name, "v"), lambda: counted.get(name), lambda: counted.delete(name)):
        with pytest.raises(InvalidArgumentError) as info:
            call()
        assert NAME_RULE in str(info.value)
    assert spy.total == 0
    # Why: written with hvac itself, the name is refused (400) or lands on another path.
    try:
        hvac_put(root, mount, name, {"value": "v"})
    except hvac.exceptions.InvalidRequest:
        assert REFUSED_NAMES[leaf] is None
    else:
        landed = REFUSED_NAMES[leaf]
        assert walk(root, mount, base + "/") == [f"{base}/{landed}"]


# -- rotation -------------------------------------------------------------------------------


def test_rotating_one_field_of_a_cli_written_secret_keeps_the_others(
    bao: openbao.OpenBaoServer, store: SecretStore, mount: str, base: str
) -> None:
    name = f"{base}/db"
    bao_cli(bao, "kv", "put", f"{mount}/{name}", "username=app", "password=old-password")
    if mount != "secret":
        with pytest.raises(NotSupportedError):
            store.rotate(name, field="password")
        assert cli_map(bao, mount, name) == {"username": "app", "password": "old-password"}
        return
    with pytest.raises(InvalidArgumentError, match="field="):
        store.rotate(name)  # two fields and no field=: nothing is replaced
    result = store.rotate(name, field="password")
    assert result is not None and (result.previous, result.version) == ("1", "2")
    shown = json.loads(bao_cli(bao, "kv", "get", "-format=json", f"{mount}/{name}"))["data"]
    assert shown["metadata"]["version"] == 2
    assert shown["data"]["username"] == "app"
    assert shown["data"]["password"] not in ("old-password", "") and set(shown["data"]) == {"username", "password"}
    assert store.get(name, stage=Stage.PREVIOUS)["password"] == "old-password"
    assert cli_field(bao, mount, name, "password") == store.get(name)["password"]
    pending = subprocess.run([bao.binary, "kv", "get", f"{mount}/secretkit-pending/{name}"], env=bao.cli_env(),
                             capture_output=True, text=True, timeout=60, check=False)
    assert pending.returncode == 2 and "No value found" in pending.stderr  # nothing left beside the secret


def test_generated_whole_value_keeps_the_kv_map(bao: openbao.OpenBaoServer, root: Any) -> None:
    """A custom generator for a map of several fields returns every field: text (which Vault
    would hold as ``{"value": ...}``) or a partial map is refused before any write, and a full
    map reaches the CLI with every key."""
    name = f"sk-interop-{uuid.uuid4().hex[:8]}/db"
    bao_cli(bao, "kv", "put", f"secret/{name}", "username=app", "password=old-password", "port=5432")
    try:
        with secretkit.open(bao.url("secret"), token=bao.root_token) as store:
            with pytest.raises(InvalidArgumentError, match="'password', 'port', 'username'"):
                store.rotate(name, generate=lambda c: "new-password")
            with pytest.raises(InvalidArgumentError, match="'port', 'username'"):
                store.rotate(name, generate=lambda c: {"password": "new-password"})
            shown = json.loads(bao_cli(bao, "kv", "get", "-format=json", f"secret/{name}"))["data"]
            assert shown["metadata"]["version"] == 1  # nothing written
            assert shown["data"] == {"username": "app", "password": "old-password", "port": "5432"}
            with pytest.raises(hvac.exceptions.InvalidPath):
                root.secrets.kv.v2.read_secret_metadata(f"secretkit-pending/{name}")
            store.rotate(name, generate=lambda c: {**c.fields, "password": "new-password"})
        assert cli_map(bao, "secret", name) == {"username": "app", "password": "new-password", "port": "5432"}
        assert hvac_map(root, "secret", name) == {"username": "app", "password": "new-password", "port": "5432"}
    finally:
        root.secrets.kv.v2.delete_metadata_and_all_versions(name)


# -- bao agent ------------------------------------------------------------------------------


def test_agent_template_renders_what_secretkit_wrote(bao: openbao.OpenBaoServer, base: str, mount: str,
                                                     tmp_path: Path) -> None:
    texts = {"text": TEXT, "json": JSON_TEXT, "unicode": UNICODE_TEXT}
    data_path = "secret/data/{}" if mount == "secret" else f"{mount}/{{}}"
    field = ".Data.data.value" if mount == "secret" else ".Data.value"
    stanzas = []
    with secretkit.open(bao.url(mount), token=bao.root_token) as store:
        for key, text in texts.items():
            store.put(f"{base}/{key}", text)
            template = f'{{{{ with secret "{data_path.format(f"{base}/{key}")}" }}}}{{{{ {field} }}}}{{{{ end }}}}'
            stanzas.append(f"template {{\n  contents = {json.dumps(template)}\n"
                           f"  destination = {json.dumps(str(tmp_path / key))}\n}}")
    token_file = tmp_path / "token"
    token_file.write_text(bao.root_token)
    config = tmp_path / "agent.hcl"
    config.write_text(f'vault {{\n  address = "{bao.address}"\n}}\n'
                      f'auto_auth {{\n  method "token_file" {{\n    config = {{\n'
                      f'      token_file_path = {json.dumps(str(token_file))}\n    }}\n  }}\n}}\n'
                      + "\n".join(stanzas) + "\nexit_after_auth = true\n")
    env = {k: v for k, v in bao.cli_env().items() if k != "VAULT_TOKEN"}  # the agent logs in from the file
    bao_cli(bao, "agent", f"-config={config}", env=env)
    for key, text in texts.items():
        assert (tmp_path / key).read_text(encoding="utf-8") == text


# -- policies from docs/backends/vault.md -----------------------------------------------------


def docs_policy(title: str, name: str) -> str:
    """The HCL block of docs/backends/vault.md that starts with ``# <title>``, for secret ``name``."""
    blocks = re.findall(r"```hcl\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    (block,) = [b for b in blocks if b.startswith(f"# {title}")]
    return block.replace("payments/db-password", name)


def token_with(root: Any, policy_name: str, hcl: str) -> str:
    root.sys.create_or_update_policy(policy_name, hcl)
    token: str = root.auth.token.create(policies=[policy_name], ttl="10m")["auth"]["client_token"]
    return token


def test_exact_path_reader_reads_current_and_previous(bao: openbao.OpenBaoServer, root: Any) -> None:
    name = f"sk-interop-{uuid.uuid4().hex[:8]}/db-password"
    root.secrets.kv.v2.create_or_update_secret(name, secret={"value": "one"})
    root.secrets.kv.v2.create_or_update_secret(name, secret={"value": "two"})
    reader = token_with(root, f"reader-{uuid.uuid4().hex[:6]}", docs_policy("reader", name))
    try:
        with secretkit.open(bao.url("secret"), token=reader) as s:  # mount detection works with it
            assert s.get(name).text == "two"
            assert s.get(name, stage=Stage.PREVIOUS).text == "one"
            assert s.get(name, version="1").text == "one"
            root.secrets.kv.v2.create_or_update_secret(name, secret={"value": "three"})
            assert s.get(name, max_age=0).text == "three"  # the cache's version probe: data path only
            assert s.get(name, stage=Stage.PREVIOUS, refresh=True).text == "two"
            with pytest.raises(PermissionDeniedError):
                s.versions(name)  # metadata: not granted
            with pytest.raises(PermissionDeniedError):
                s.get(name.replace("db-password", "other"))
    finally:
        root.secrets.kv.v2.delete_metadata_and_all_versions(name)


def test_minimal_rotator_policy_rotates(bao: openbao.OpenBaoServer, root: Any) -> None:
    name = f"sk-interop-{uuid.uuid4().hex[:8]}/db-password"
    root.secrets.kv.v2.create_or_update_secret(name, secret={"username": "app", "password": "old"})
    rotator = token_with(root, f"rotator-{uuid.uuid4().hex[:6]}", docs_policy("rotator", name))
    reader = token_with(root, f"reader-{uuid.uuid4().hex[:6]}", docs_policy("reader", name))
    try:
        with secretkit.open(bao.url("secret"), token=rotator) as s:
            seen: list[str] = []
            result = s.rotate(name, field="password", apply=lambda p: seen.append(p["password"]))
            assert result is not None and result.version == "2"
            with pytest.raises(PermissionDeniedError):
                s.put(f"{name}-elsewhere", "x")
        with secretkit.open(bao.url("secret"), token=reader) as s:
            assert s.get(name)["password"] == seen[0] and s.get(name)["username"] == "app"
            assert s.get(name, stage=Stage.PREVIOUS)["password"] == "old"
            with pytest.raises((NotFoundError, PermissionDeniedError)):
                s.get(f"secretkit-pending/{name}")  # the reader never sees a pending value
        assert root.secrets.kv.v2.read_secret_version(name, raise_on_deleted_version=True)["data"]["data"][
            "username"] == "app"
        with pytest.raises(hvac.exceptions.InvalidPath):
            root.secrets.kv.v2.read_secret_metadata(f"secretkit-pending/{name}")  # purged at promotion
    finally:
        root.secrets.kv.v2.delete_metadata_and_all_versions(name)


def _nothing_written(root: Any, name: str, mount: str = "secret") -> None:
    meta = root.secrets.kv.v2.read_secret_metadata(name, mount_point=mount)["data"]
    assert meta["current_version"] == 1 and sorted(meta["versions"]) == ["1"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_metadata(f"secretkit-pending/{name}", mount_point=mount)


def test_rotation_refused_where_max_versions_1_on_the_secret_would_prune_previous(
    bao: openbao.OpenBaoServer, root: Any
) -> None:
    """With max_versions=1 Vault prunes version N at the write of N+1: the promoted rotation
    would report a previous value nobody can read any more. Refused before anything is written,
    also under the documented rotator policy (which grants the reads the check needs)."""
    name = f"sk-interop-{uuid.uuid4().hex[:8]}/db-password"
    root.secrets.kv.v2.create_or_update_secret(name, secret={"value": "old"})
    root.secrets.kv.v2.update_metadata(name, max_versions=1)
    rotator = token_with(root, f"rotator-{uuid.uuid4().hex[:6]}", docs_policy("rotator", name))
    try:
        for token in (bao.root_token, rotator):
            with secretkit.open(bao.url("secret"), token=token) as s:
                with pytest.raises(NotSupportedError, match="max_versions=1 on the secret's metadata") as info:
                    s.rotate(name, generate=lambda c: "new")
                assert name in str(info.value) and "vault" in str(info.value) and "new" not in str(info.value)
            _nothing_written(root, name)
        root.secrets.kv.v2.update_metadata(name, max_versions=2)  # enough for current and previous
        with secretkit.open(bao.url("secret"), token=rotator) as s:
            result = s.rotate(name, generate=lambda c: "new")
            assert result is not None and result.previous == "1"
            assert s.get(name, stage=Stage.PREVIOUS).text == "old"
    finally:
        root.secrets.kv.v2.delete_metadata_and_all_versions(name)


def test_rotation_refused_where_the_mounts_max_versions_is_1(bao: openbao.OpenBaoServer, root: Any) -> None:
    mount = f"kv-{uuid.uuid4().hex[:8]}"
    root.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    try:
        bao_cli(bao, "write", f"{mount}/config", "max_versions=1")
        root.secrets.kv.v2.create_or_update_secret("db", secret={"value": "old"}, mount_point=mount)
        with secretkit.open(bao.url(mount), token=bao.root_token) as s:
            with pytest.raises(NotSupportedError, match=f"max_versions=1 in the config of mount '{mount}'"):
                s.rotate("db", generate=lambda c: "new")
            _nothing_written(root, "db", mount)
            # Vault keeps max(secret's, mount's): a secret that asks for more is rotated
            root.secrets.kv.v2.update_metadata("db", max_versions=3, mount_point=mount)
            s.rotate("db", generate=lambda c: "new")
            assert s.get("db", stage=Stage.PREVIOUS).text == "old"
    finally:
        root.sys.disable_secrets_engine(mount)


# -- secrecy --------------------------------------------------------------------------------


def test_debug_logs_of_every_logger_never_show_a_value(bao: openbao.OpenBaoServer, store: SecretStore, base: str,
                                                       mount: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for logger in ("hvac", "urllib3", "requests", "secretkit"):
        caplog.set_level(logging.DEBUG, logger=logger)
    name = f"{base}/canary"
    store.put(name, CANARY)
    assert store.get(name, refresh=True).text == CANARY
    store.put(name, {"password": CANARY, "username": "app"})
    assert store.get(name, refresh=True)["password"] == CANARY
    store.put(name, CANARY.encode())
    assert store.get(name, refresh=True).bytes == CANARY.encode()
    if mount == "secret":
        with pytest.raises(ConflictError):
            store.put(name, CANARY, if_version="1")
        store.rotate(name, generate=lambda current: CANARY + "-next")
        assert store.get(name, stage=Stage.PREVIOUS).bytes == CANARY.encode()
    assert caplog.records, "DEBUG logging captured nothing"
    assert any(r.name.startswith("urllib3") for r in caplog.records)  # the SDK below did log
    assert CANARY not in caplog.text
    assert base64.b64encode(CANARY.encode()).decode() not in caplog.text


# -- the page's own examples ----------------------------------------------------------------


def test_docs_examples_run(bao: openbao.OpenBaoServer, root: Any, tmp_path: Path) -> None:
    """The python and sh blocks of docs/backends/vault.md, in order, against the test server
    (its `bao server -dev` and docker blocks start a server, which the test has already)."""
    blocks = re.findall(r"```(python|sh)\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    runnable = [(lang, code) for lang, code in blocks if "server -dev" not in code and "docker" not in code]
    assert [lang for lang, _ in runnable] == ["python", "sh", "python"]
    env = bao.cli_env()
    env.update(PATH=f"{Path(bao.binary).parent}:{env.get('PATH', '')}", PYTHONPATH=str(DOCS.parents[2]))
    names = ["payments/db", "payments/api-key", "payments/db-password"]
    for name in names:
        root.secrets.kv.v2.delete_metadata_and_all_versions(name)
    try:
        outputs = []
        for lang, code in runnable:
            command = ["bash", "-euo", "pipefail", "-c", code] if lang == "sh" else [sys.executable, "-c", code]
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 0, done.stderr
            outputs.append(done.stdout)
        assert outputs[1] == "s3cretk-123"  # the CLI prints each field without a newline
    finally:
        for name in names:
            root.secrets.kv.v2.delete_metadata_and_all_versions(name)
