"""ssm:// against AWS's own clients, both directions, on moto in-process and over HTTP.

On the other side: raw boto3 (what the AWS CLI, Terraform and the console see), AWS Lambda
Powertools' ``get_parameter`` (plain and ``transform="json"``), ``get_parameters`` (a path,
recursive) and ``get_parameters_by_name``, Powertools' ``set_parameter``, and pydantic-settings'
``AWSSystemsManagerSettingsSource``. Each test asserts exactly what the other side sees;
docs/backends/ssm.md's table "what a native reader sees" is this file.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import secretkit
from secretkit.store import SecretStore
from tests.doubles.aws import BACKENDS, REGION, aws_http_endpoint, make_client, moto_backend, powertools_parameters

moto = pytest.importorskip("moto")
__all__ = ["aws_http_endpoint"]

UNICODE_TEXT = "pässwörd 🔑 ключ 鍵\nsecond line\t\"quoted\""
JSON_TEXT = '{"username": "app",  "password": "s3cret", "port": 5432}'
NON_UTF8 = b"\x00\xff\xfe keystore \x80\x81"
FIELDS = {"username": "app", "password": "p@ss wörd"}


@dataclass
class Env:
    endpoint: str | None

    def open(self, query: str = "") -> SecretStore:
        extra = f"&endpoint_url={self.endpoint}" if self.endpoint else ""
        return secretkit.open(f"ssm://?region={REGION}{extra}{query}")

    def raw(self) -> Any:
        """A boto3 ``ssm`` client configured as the driver configures its own."""
        return make_client(self.endpoint, "ssm")


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    with moto_backend(request) as endpoint:
        yield Env(endpoint)


@pytest.fixture
def store(env: Env) -> Iterator[SecretStore]:
    with env.open() as s:
        yield s


def unique(leaf: str = "p") -> str:
    return f"/interop-{uuid.uuid4().hex[:8]}/{leaf}"


# -- secretkit writes, raw boto3 reads --------------------------------------------------------

BASE64_FORM = json.dumps({"encoding": "base64", "value": base64.b64encode(NON_UTF8).decode()})


@pytest.mark.parametrize(
    ("value", "seen"),
    [
        ("plain text", "plain text"),
        (UNICODE_TEXT, UNICODE_TEXT),
        (JSON_TEXT, JSON_TEXT),
        (FIELDS, '{"password":"p@ss wörd","username":"app"}'),
        (b"utf-8 bytes", "utf-8 bytes"),
        (NON_UTF8, BASE64_FORM),
        ("", "\x00"),
    ],
    ids=["text", "unicode", "json-text", "fields", "utf8-bytes", "non-utf8-bytes", "empty"],
)
def test_boto3_sees_what_secretkit_wrote(env: Env, store: SecretStore, value: Any, seen: str) -> None:
    name = unique()
    store.put(name, value)
    parameter = env.raw().get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert parameter["Value"] == seen
    assert parameter["Type"] == "SecureString" and parameter["Version"] == 1
    assert parameter["DataType"] == "text"


def test_a_portable_name_is_the_hierarchy_ssm_tools_use(env: Env, store: SecretStore) -> None:
    leaf = f"interop-{uuid.uuid4().hex[:8]}/db/password"
    store.put(leaf, "pw")
    assert env.raw().get_parameter(Name="/" + leaf, WithDecryption=True)["Parameter"]["Value"] == "pw"
    assert store.get("/" + leaf).text == "pw"  # SSM's own spelling reaches the same parameter
    assert leaf in store.list("")  # listed as written
    assert "/" + leaf in store.list("/" + leaf.split("/")[0] + "/")  # and in SSM's spelling under a path


def test_a_flat_name_stays_flat(env: Env, store: SecretStore) -> None:
    name = f"interop-flat-{uuid.uuid4().hex[:8]}"
    store.put(name, "v")
    assert [p["Name"] for p in env.raw().get_parameters(Names=[name])["Parameters"]] == [name]
    assert name in store.list("")


def test_parameter_type_and_kms_key_options(env: Env) -> None:
    name = unique()
    with env.open("&parameter_type=String") as plain:
        plain.put(name, "not a secret")
    with env.open("&kms_key_id=alias/app-key") as keyed:
        keyed.put(name + "-k", "secret")
    raw = env.raw()
    assert raw.get_parameter(Name=name)["Parameter"]["Type"] == "String"
    described = raw.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name + "-k"]}])["Parameters"]
    assert described[0]["Type"] == "SecureString" and described[0]["KeyId"] == "alias/app-key"


def test_an_update_keeps_type_description_tags_tier_data_type_key_and_policies(env: Env, store: SecretStore) -> None:
    raw = env.raw()
    name = unique()
    policy = [{"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": "2099-01-01T00:00:00.000Z"}}]
    raw.put_parameter(Name=name, Value="one", Type="String", Description="the db password", Tier="Advanced",
                      Tags=[{"Key": "team", "Value": "payments"}], Policies=json.dumps(policy))
    keyed = unique("keyed")
    raw.put_parameter(Name=keyed, Value="one", Type="SecureString", KeyId="alias/app-key")
    typed = unique("typed")
    raw.put_parameter(Name=typed, Value="1", Type="String", DataType="text")
    before = {n: _metadata(raw, n) for n in (name, keyed, typed)}
    store.put(name, "two")
    store.put(keyed, {"password": "two"})
    store.put(typed, "2")
    assert raw.get_parameter(Name=name)["Parameter"]["Value"] == "two"
    for n in (name, keyed, typed):
        after = _metadata(raw, n)
        assert after.pop("Version") == 2
        before[n].pop("Version")
        assert after == before[n], n
    assert raw.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"] == [
        {"Key": "team", "Value": "payments"}]


def _metadata(raw: Any, name: str) -> dict[str, Any]:
    found = raw.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"][0]
    return {k: v for k, v in found.items() if k not in ("LastModifiedDate", "LastModifiedUser")}


# -- raw boto3 writes, secretkit reads --------------------------------------------------------


@pytest.mark.parametrize("parameter_type", ["String", "StringList", "SecureString"])
def test_every_parameter_type_reads_as_its_text(env: Env, store: SecretStore, parameter_type: str) -> None:
    name = unique()
    text = "a,b,c" if parameter_type == "StringList" else UNICODE_TEXT
    env.raw().put_parameter(Name=name, Value=text, Type=parameter_type)
    assert store.get(name).text == text
    store.put(name, "next")  # the type stays the parameter's own
    assert env.raw().get_parameter(Name=name)["Parameter"]["Type"] == parameter_type


def test_json_written_by_boto3_reads_as_fields_like_aws_sm(env: Env, store: SecretStore) -> None:
    name = unique()
    env.raw().put_parameter(Name=name, Value=JSON_TEXT, Type="SecureString")
    got = store.get(name)
    assert got.text == JSON_TEXT  # exactly as stored
    assert got.fields == {"username": "app", "password": "s3cret", "port": "5432"}
    assert store.get(name)["port"] == "5432"


def test_versions_labels_and_previous_written_by_boto3(env: Env, store: SecretStore) -> None:
    raw = env.raw()
    name = unique()
    for value in ("v1", "v2", "v3"):
        raw.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=value != "v1")
    raw.label_parameter_version(Name=name, ParameterVersion=1, Labels=["golden"])
    infos = store.versions(name)
    assert [i.version for i in infos] == ["3", "2", "1"]
    assert "current" in infos[0].stages and "previous" in infos[1].stages and "golden" in infos[2].stages
    assert store.get(name, stage="previous").text == "v2"
    assert store.get(name, version="1").text == "v1"


def test_delete_is_permanent(env: Env, store: SecretStore) -> None:
    name = unique()
    store.put(name, "v")
    store.delete(name)
    with pytest.raises(Exception) as info:
        env.raw().get_parameter(Name=name)
    assert "ParameterNotFound" in str(info.value)
    assert not store.capabilities.recoverable_delete


# -- Lambda Powertools ------------------------------------------------------------------------


@pytest.fixture
def powertools(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with powertools_parameters(env.endpoint, "AWS_ENDPOINT_URL_SSM", monkeypatch) as parameters:
        yield parameters


@pytest.mark.parametrize(
    ("value", "plain", "as_json"),
    [
        ("plain text", "plain text", "TransformParameterError"),
        (JSON_TEXT, JSON_TEXT, {"username": "app", "password": "s3cret", "port": 5432}),
        (FIELDS, '{"password":"p@ss wörd","username":"app"}', FIELDS),
        (b'{"k": "v"}', '{"k": "v"}', {"k": "v"}),
        (NON_UTF8, BASE64_FORM, {"encoding": "base64", "value": base64.b64encode(NON_UTF8).decode()}),
        ("", "\x00", "TransformParameterError"),
    ],
    ids=["text", "json-text", "fields", "utf8-json-bytes", "non-utf8-bytes", "empty"],
)
def test_powertools_get_parameter_reads_what_secretkit_wrote(
    store: SecretStore, powertools: Any, value: Any, plain: Any, as_json: Any
) -> None:
    name = unique()
    store.put(name, value)
    assert powertools.get_parameter(name, decrypt=True, force_fetch=True) == plain
    if isinstance(as_json, str):
        with pytest.raises(powertools.exceptions.TransformParameterError):
            powertools.get_parameter(name, decrypt=True, transform="json", force_fetch=True)
    else:
        assert powertools.get_parameter(name, decrypt=True, transform="json", force_fetch=True) == as_json


def test_powertools_get_parameters_reads_a_hierarchy_secretkit_wrote(store: SecretStore, powertools: Any) -> None:
    root = f"interop-{uuid.uuid4().hex[:8]}"
    store.put(f"{root}/db/user", "app")  # the portable spelling: SSM's /root/db/user
    store.put(f"/{root}/db/password", "pw")
    store.put(f"/{root}/api", {"key": "k"})
    got = powertools.get_parameters(f"/{root}", recursive=True, decrypt=True, force_fetch=True)
    assert got == {"db/user": "app", "db/password": "pw", "api": '{"key":"k"}'}


def test_powertools_get_parameters_by_name_reads_what_secretkit_wrote(store: SecretStore, powertools: Any) -> None:
    a, b = unique("a"), unique("b")
    store.put(a, "plain")
    store.put(b, {"user": "app"})
    got = powertools.get_parameters_by_name({a: {}, b: {"transform": "json"}}, decrypt=True, max_age=0)
    assert got == {a: "plain", b: {"user": "app"}}


def test_secretkit_reads_what_powertools_set_parameter_wrote(store: SecretStore, powertools: Any) -> None:
    name = unique()
    powertools.set_parameter(name, JSON_TEXT, parameter_type="SecureString")
    powertools.set_parameter(name, '{"password": "rotated"}', overwrite=True, parameter_type="SecureString")
    assert store.get(name)["password"] == "rotated"
    assert store.get(name, stage="previous").text == JSON_TEXT


# -- pydantic-settings ------------------------------------------------------------------------


def test_pydantic_settings_ssm_source_reads_what_secretkit_wrote(env: Env, store: SecretStore) -> None:
    settings = pytest.importorskip("pydantic_settings")
    source_class = getattr(settings, "AWSSystemsManagerSettingsSource", None)
    if source_class is None:
        pytest.skip("this pydantic-settings has no AWSSystemsManagerSettingsSource")
    root = f"/interop-{uuid.uuid4().hex[:8]}"
    store.put(f"{root}/db_password", "s3cret")
    store.put(f"{root[1:]}/api_key", "k")  # the portable spelling lands under the same path

    class AppSettings(settings.BaseSettings):  # type: ignore[misc, name-defined]
        db_password: str
        api_key: str

        @classmethod
        def settings_customise_sources(cls, settings_cls: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
            return (source_class(settings_cls, ssm_path=root, region_name=REGION, endpoint_url=env.endpoint),)

    loaded = AppSettings()
    assert (loaded.db_password, loaded.api_key) == ("s3cret", "k")
