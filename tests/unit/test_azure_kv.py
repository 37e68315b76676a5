"""azure-kv:// without a server: names, values, URLs, options and the error table."""

from __future__ import annotations

import re

import pytest
from azure.identity import CredentialUnavailableError

from secretkit.drivers.azure import codec
from secretkit.drivers.azure.client import vault_url
from secretkit.drivers.azure.errors import classify
from secretkit.drivers.azure.options import Options
from secretkit.drivers.base import ConfigError, ErrorCode, StoreURL, Value
from secretkit.errors import InvalidArgumentError


def test_native_names_unchanged_and_portable_ones_mapped_within_127() -> None:
    assert codec.NAMES.storage_name("Db-Password-1") == "Db-Password-1"
    mapped = codec.NAMES.storage_name("payments/db.pass_word")
    assert mapped.startswith("payments--db-pass-word-") and codec.NAMES.native(mapped)
    assert codec.NAMES.storage_name("a/b") != codec.NAMES.storage_name("a.b")
    assert len(codec.NAMES.storage_name("x" * 150 + "/y")) == 127
    assert codec.listed_name(mapped, {codec.NAME_TAG: "payments/db.pass_word"}) == "payments/db.pass_word"
    assert codec.listed_name("copied", {codec.NAME_TAG: "payments/db.pass_word"}) == "copied"


def test_values_encode_as_azure_tools_do_and_decode_back() -> None:
    for raw in ("text", b"\x00\xff", {"a": "1"}):
        value = Value.of(raw)
        text, content_type, tags = codec.encode_value(value)
        assert codec.decode_value(text, content_type, tags).bytes == value.bytes
    assert codec.next_properties(Value.of("t"), "n", "n", "application/json", {"file-encoding": "base64",
                                                                              "team": "x"}) == \
        ("t", None, {"team": "x", codec.SEQUENCE_TAG: "1"})


def test_a_value_over_25_kb_as_stored_is_refused() -> None:
    codec.check_value(Value.of(b"x" * codec.MAX_PORTABLE_VALUE))
    with pytest.raises(InvalidArgumentError, match="25600"):
        codec.check_value(Value.of(b"x" * (codec.MAX_PORTABLE_VALUE + 3)))


@pytest.mark.parametrize(("url", "vault"), [
    ("azure-kv://myvault", "https://myvault.vault.azure.net"),
    ("azure-kv://myvault.vault.azure.cn", "https://myvault.vault.azure.cn"),
    ("azure-kv://127.0.0.1:8443", "https://127.0.0.1:8443"),
])
def test_vault_urls(url: str, vault: str) -> None:
    assert vault_url(StoreURL.parse(url)[0], Options()) == vault


def test_bad_urls_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        vault_url(StoreURL.parse("azure-kv://")[0], Options())
    with pytest.raises(ConfigError):
        vault_url(StoreURL.parse("azure-kv://")[0], Options(vault_url="http://plain"))


def test_missing_credentials_are_authentication_errors() -> None:
    found = classify(CredentialUnavailableError("DefaultAzureCredential failed to retrieve a token"))
    assert found is not None and found.code is ErrorCode.UNAUTHENTICATED


@pytest.mark.parametrize(("options", "says"), [
    ({"tenant_id": "t"}, "give client_id too"),
    ({"client_secret": "s", "client_id": "c"}, "missing: ['tenant_id']"),
    ({"tenant_id": "t", "client_id": "c"}, "AZURE_CLIENT_SECRET"),
    ({"authority": "http://login.example"}, "https://"),
])
def test_incomplete_credentials_are_config_errors_without_the_secret(
    options: dict[str, str], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secretkit.drivers.azure.credentials import credential

    monkeypatch.delenv("AZURE_CLIENT_SECRET", raising=False)
    with pytest.raises(ConfigError, match=re.escape(says)) as info:
        credential(Options(**options))  # type: ignore[arg-type]
    assert "'s'" not in str(info.value)
