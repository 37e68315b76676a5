"""azure-kv:// and Azure's own readers and writers agree: the raw ``SecretClient`` reads what
secretkit writes (value, content type, tags) and secretkit reads what it writes, and
pydantic-settings' ``AzureKeyVaultSettingsSource`` reads secretkit's secrets. All on the Key
Vault double, over HTTPS, with the real SDK on both sides.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from secretkit.drivers.azure import codec
from tests.conformance.test_azure import open_double


def test_text_is_the_value_as_written(azure_kv: Any) -> None:
    with open_double(azure_kv) as store:
        info = store.put("db-password", "s3cret wörd")
    got = azure_kv.client().get_secret("db-password")
    assert got.value == "s3cret wörd"
    assert got.properties.version == info.version
    assert got.properties.content_type is None
    assert codec.ENCODING_TAG not in (got.properties.tags or {})


def test_bytes_are_base64_with_the_content_type_and_the_cli_tag(azure_kv: Any) -> None:
    octets = bytes(range(256))
    with open_double(azure_kv) as store:
        store.put("tls-key", octets)
    got = azure_kv.client().get_secret("tls-key")
    assert base64.b64decode(got.value) == octets
    assert got.properties.content_type == "application/octet-stream"
    assert got.properties.tags["file-encoding"] == "base64"


def test_fields_are_a_json_object_with_content_type_json(azure_kv: Any) -> None:
    with open_double(azure_kv) as store:
        store.put("db", {"user": "app", "password": "pw"})
    got = azure_kv.client().get_secret("db")
    assert json.loads(got.value) == {"user": "app", "password": "pw"}
    assert got.properties.content_type == "application/json"


def test_mapped_names_record_the_name_as_written(azure_kv: Any) -> None:
    with open_double(azure_kv) as store:
        store.put("payments/db.password", "x")
        assert list(store.list("payments/")) == ["payments/db.password"]
    [props] = list(azure_kv.client().list_properties_of_secrets())
    assert props.name == codec.mapped_name("payments/db.password")
    assert props.name.startswith("payments--db-password-")
    assert props.tags[codec.NAME_TAG] == "payments/db.password"


def test_secretkit_reads_what_the_sdk_wrote(azure_kv: Any) -> None:
    client = azure_kv.client()
    client.set_secret("plain", "hello")
    client.set_secret("json", '{"a": "1"}', content_type="application/json")
    client.set_secret("blob", base64.b64encode(b"\x00\xff").decode(), tags={"file-encoding": "base64"})
    with open_double(azure_kv) as store:
        assert store.get("plain").text == "hello"
        assert store.get("json").fields == {"a": "1"}
        assert store.get("blob").bytes == b"\x00\xff"
        assert sorted(store.list()) == ["blob", "json", "plain"]


def test_put_keeps_the_users_tags_content_type_and_dates(azure_kv: Any) -> None:
    client = azure_kv.client()
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=30)
    not_before = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=1)
    client.set_secret("cert", "-----BEGIN-----", content_type="application/x-pem-file", tags={"team": "pay"},
                      expires_on=expires, not_before=not_before)
    with open_double(azure_kv) as store:
        store.put("cert", "-----BEGIN NEW-----")
    props = client.get_secret("cert").properties
    assert props.content_type == "application/x-pem-file"
    assert props.tags["team"] == "pay"
    assert (props.expires_on, props.not_before) == (expires, not_before)


def test_put_then_get_previous_versions_are_the_sdks(azure_kv: Any) -> None:
    with open_double(azure_kv) as store:
        first = store.put("rolling", "one").version
        second = store.put("rolling", "two").version
        assert [v.version for v in store.versions("rolling")] == [second, first]
    assert azure_kv.client().get_secret("rolling", first).value == "one"


class _Db(BaseModel):
    user: str
    password: str


class _Settings(BaseSettings):
    api_key: str
    db: _Db


def test_pydantic_settings_azure_source_reads_what_secretkit_wrote(azure_kv: Any) -> None:
    """pydantic-settings maps field ``api_key`` to secret ``api-key`` (dash_to_underscore) and
    parses a JSON value into a nested model: what secretkit writes for text and fields."""
    from pydantic_settings import AzureKeyVaultSettingsSource
    from azure.keyvault.secrets import SecretClient

    with open_double(azure_kv) as store:
        store.put("api-key", "k-123")
        store.put("db", {"user": "app", "password": "pw"})

    real_client = SecretClient

    def client_for_double(vault_url: str, credential: Any, **kwargs: Any) -> Any:
        return real_client(vault_url, credential, **{**azure_kv.client_kwargs(), **kwargs})

    class Settings(_Settings):
        @classmethod
        def settings_customise_sources(cls, settings_cls: type[BaseSettings], *args: Any,
                                       **kwargs: Any) -> tuple[PydanticBaseSettingsSource, ...]:
            return (AzureKeyVaultSettingsSource(settings_cls, azure_kv.vault_url, azure_kv.credential(),
                                                dash_to_underscore=True),)

    # The source builds its own SecretClient from (url, credential) only; the double's CA and
    # loopback challenge need two client options, given here without changing what it reads.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("azure.keyvault.secrets.SecretClient", client_for_double)  # the source imports it late
        settings = Settings()  # type: ignore[call-arg]
    assert settings.api_key == "k-123"
    assert settings.db == _Db(user="app", password="pw")
