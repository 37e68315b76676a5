"""aws-sm:// against AWS's own clients, both directions, on moto in-process and over HTTP.

On the other side: raw boto3 (what the AWS CLI, Terraform, the console and RDS rotation see),
AWS Lambda Powertools' ``parameters.get_secret`` (plain and ``transform="json"``) and
pydantic-settings' ``AWSSecretsManagerSettingsSource``. Each test asserts exactly what the
other side sees; docs/backends/aws.md's table "what a native reader sees" is this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import secretkit
from secretkit.drivers.aws.codec import NAME_RULE
from secretkit.errors import InvalidArgumentError
from secretkit.secret import Stage
from secretkit.store import SecretStore
from secretkit.testing.spy import CountingDriver
from tests.doubles.aws import (
    BACKENDS,
    REGION,
    CallCounter,
    aws_http_endpoint,
    make_client,
    moto_backend,
    powertools_parameters,
)

moto = pytest.importorskip("moto")
__all__ = ["aws_http_endpoint"]

UNICODE_TEXT = "pässwörd 🔑 ключ 鍵\nsecond line\t\"quoted\""
JSON_TEXT = '{"username": "app",  "password": "s3cret", "port": 5432}'
RDS_JSON = '{"engine":"postgres","host":"h","port":5432,"username":"app","password":"old"}'
NON_UTF8 = b"\x00\xff\xfe keystore \x80\x81"
FIELDS = {"username": "app", "password": "p@ss wörd"}


@dataclass
class Env:
    endpoint: str | None

    def open(self) -> SecretStore:
        extra = f"&endpoint_url={self.endpoint}" if self.endpoint else ""
        return secretkit.open(f"aws-sm://?region={REGION}{extra}")

    def raw(self) -> Any:
        return make_client(self.endpoint)


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    with moto_backend(request) as endpoint:
        yield Env(endpoint)


@pytest.fixture
def store(env: Env) -> Iterator[SecretStore]:
    with env.open() as s:
        yield s


def unique(leaf: str) -> str:
    return f"interop-{uuid.uuid4().hex[:8]}/{leaf}"


# -- secretkit writes, raw boto3 reads ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seen"),
    [
        ("plain text", {"SecretString": "plain text"}),
        (JSON_TEXT, {"SecretString": JSON_TEXT}),
        (UNICODE_TEXT, {"SecretString": UNICODE_TEXT}),
        (NON_UTF8, {"SecretBinary": NON_UTF8}),
        (b"utf-8 octets", {"SecretBinary": b"utf-8 octets"}),
        (FIELDS, {"SecretString": '{"password":"p@ss wörd","username":"app"}'}),
        ({}, {"SecretString": "{}"}),
        ("", {"SecretString": "\x00"}),
        (b"", {"SecretBinary": b"\x00"}),
    ],
    ids=["text", "json-text", "unicode", "non-utf8-bytes", "utf8-bytes", "fields", "no-fields", "empty-text",
         "empty-bytes"],
)
def test_boto3_sees_what_secretkit_wrote(env: Env, store: SecretStore, value: Any, seen: dict[str, Any]) -> None:
    name = unique("out")
    version = store.put(name, value).version
    got = env.raw().get_secret_value(SecretId=name)
    assert {k: got[k] for k in ("SecretString", "SecretBinary") if k in got} == seen
    assert got["VersionId"] == version and got["VersionStages"] == ["AWSCURRENT"]


# -- raw boto3 writes, secretkit reads ------------------------------------------------------


def test_text_written_by_boto3(env: Env, store: SecretStore) -> None:
    name = unique("text")
    env.raw().create_secret(Name=name, SecretString=UNICODE_TEXT)
    got = store.get(name)
    assert got.text == UNICODE_TEXT and got.bytes == UNICODE_TEXT.encode()
    with pytest.raises(InvalidArgumentError):
        got.fields  # noqa: B018 - not a JSON object


def test_json_text_written_by_boto3(env: Env, store: SecretStore) -> None:
    name = unique("json")
    env.raw().create_secret(Name=name, SecretString=JSON_TEXT)
    got = store.get(name)
    assert got.text == JSON_TEXT  # exactly, spacing and member order included
    assert got.bytes == JSON_TEXT.encode()
    assert got.fields == {"username": "app", "password": "s3cret", "port": "5432"}
    assert (got["port"], got["password"]) == ("5432", "s3cret")
    assert got.field_bytes("port") == b"5432"


def test_bytes_written_by_boto3(env: Env, store: SecretStore) -> None:
    name = unique("bytes")
    env.raw().create_secret(Name=name, SecretBinary=NON_UTF8)
    got = store.get(name)
    assert got.bytes == NON_UTF8
    for view in ("text", "fields"):
        with pytest.raises(InvalidArgumentError):
            getattr(got, view)
    utf8 = unique("bytes-json")
    env.raw().create_secret(Name=utf8, SecretBinary=b'{"k": "v"}')
    got = store.get(utf8)
    assert (got.bytes, got.text, got.fields) == (b'{"k": "v"}', '{"k": "v"}', {"k": "v"})


def test_a_lone_nul_written_by_boto3_reads_as_the_empty_value(env: Env, store: SecretStore) -> None:
    """The one documented encoding: AWS holds no empty value, so one NUL stands for it."""
    text, octets = unique("nul-text"), unique("nul-bytes")
    env.raw().create_secret(Name=text, SecretString="\x00")
    env.raw().create_secret(Name=octets, SecretBinary=b"\x00")
    assert store.get(text).text == ""
    assert store.get(octets).bytes == b""


def test_versions_and_stages_written_by_boto3(env: Env, store: SecretStore) -> None:
    name = unique("staged")
    raw = env.raw()
    raw.create_secret(Name=name, SecretString="one")
    raw.put_secret_value(SecretId=name, SecretString="two")
    raw.put_secret_value(SecretId=name, SecretString="three", VersionStages=["AWSPENDING"])
    assert store.get(name).text == "two"
    assert store.get(name, stage=Stage.PREVIOUS).text == "one"
    assert store.get(name, stage=Stage.PENDING).text == "three"
    assert [sorted(v.stages) for v in store.versions(name)][0] == ["AWSPENDING", "pending"]


# -- names AWS holds natively ---------------------------------------------------------------


@pytest.mark.parametrize("leaf", ["team/app+1=x@y.z", "prod/app-config", "rds/db-master", "svc/api-abcdef", "_odd..name_"])
def test_native_names_both_directions(env: Env, store: SecretStore, leaf: str) -> None:
    root = f"interop-{uuid.uuid4().hex[:8]}"
    theirs, ours = f"{root}/theirs/{leaf}", f"{root}/ours/{leaf}"
    raw = env.raw()
    arn = raw.create_secret(Name=theirs, SecretString="from boto3")["ARN"]
    assert store.get(theirs).text == "from boto3"
    store.put(theirs, "from secretkit")
    store.put(ours, "ours")
    assert raw.get_secret_value(SecretId=theirs)["SecretString"] == "from secretkit"
    assert raw.get_secret_value(SecretId=arn)["SecretString"] == "from secretkit"  # one secret, same ARN
    assert raw.get_secret_value(SecretId=ours)["SecretString"] == "ours"
    listed = sorted(s["Name"] for s in raw.list_secrets(Filters=[{"Key": "name", "Values": [root]}])["SecretList"])
    assert listed == sorted([theirs, ours])  # no second secret beside either
    assert list(store.list(f"{root}/")) == listed
    store.delete(theirs)
    assert "DeletedDate" in raw.describe_secret(SecretId=arn)


def test_a_name_aws_cannot_hold_is_refused_before_io(store: SecretStore) -> None:
    spy = CountingDriver(store.driver)
    counted = SecretStore(spy, options=store.options)
    for bad in ("has space", "ümlaut", "a" * 513, "star*"):
        with pytest.raises(InvalidArgumentError) as info:
            counted.put(bad, "v")
        assert NAME_RULE in str(info.value)
    assert spy.total == 0


# -- rotation of a natively written RDS-style secret ------------------------------------------


def test_rotating_one_field_of_an_rds_secret_keeps_the_others(env: Env, store: SecretStore) -> None:
    name = unique("rds")
    raw = env.raw()
    raw.create_secret(Name=name, SecretString=RDS_JSON)

    result = store.rotate(name, field="password")

    assert result is not None
    now = raw.get_secret_value(SecretId=name)
    document = json.loads(now["SecretString"])
    new_password = document.pop("password")
    assert new_password != "old" and len(new_password) >= 32
    assert document == {"engine": "postgres", "host": "h", "port": 5432, "username": "app"}
    assert isinstance(document["port"], int)
    assert now["SecretString"] == RDS_JSON.replace('"password":"old"', f'"password":{json.dumps(new_password)}')
    assert raw.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == RDS_JSON
    assert store.get(name)["password"] == new_password


def test_rotating_an_rds_secret_without_field_refuses_before_writing(env: Env, store: SecretStore) -> None:
    name = unique("rds-nofield")
    env.raw().create_secret(Name=name, SecretString=RDS_JSON)
    counter = CallCounter(store.client)
    try:
        with pytest.raises(InvalidArgumentError, match="field="):
            store.rotate(name)
        assert counter.calls == {"GetSecretValue": 1}  # read current, then refused: nothing written
    finally:
        counter.detach()
    assert [v["VersionStages"] for v in env.raw().list_secret_version_ids(SecretId=name)["Versions"]] == [["AWSCURRENT"]]


# -- Lambda Powertools ------------------------------------------------------------------------


@pytest.fixture
def powertools(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with powertools_parameters(env.endpoint, "AWS_ENDPOINT_URL_SECRETS_MANAGER", monkeypatch) as parameters:
        yield parameters


@pytest.mark.parametrize(
    ("value", "plain", "as_json"),
    [
        ("plain text", "plain text", "TransformParameterError"),
        (JSON_TEXT, JSON_TEXT, {"username": "app", "password": "s3cret", "port": 5432}),
        (UNICODE_TEXT, UNICODE_TEXT, "TransformParameterError"),
        (FIELDS, '{"password":"p@ss wörd","username":"app"}', FIELDS),
        (b'{"k": "v"}', b'{"k": "v"}', {"k": "v"}),
        (NON_UTF8, NON_UTF8, "UnicodeDecodeError"),
        ({}, "{}", {}),
        ("", "\x00", "TransformParameterError"),
        (b"", b"\x00", "TransformParameterError"),
    ],
    ids=["text", "json-text", "unicode", "fields", "utf8-json-bytes", "non-utf8-bytes", "no-fields", "empty-text",
         "empty-bytes"],
)
def test_powertools_get_secret_reads_what_secretkit_wrote(
    store: SecretStore, powertools: Any, value: Any, plain: Any, as_json: Any
) -> None:
    name = unique("powertools")
    store.put(name, value)
    assert powertools.get_secret(name, force_fetch=True) == plain
    if isinstance(as_json, str):
        with pytest.raises(Exception) as info:  # noqa: PT011 - the exact type is what we assert
            powertools.get_secret(name, transform="json", force_fetch=True)
        assert type(info.value).__name__ == as_json
    else:
        assert powertools.get_secret(name, transform="json", force_fetch=True) == as_json


# -- pydantic-settings ------------------------------------------------------------------------


def test_pydantic_settings_reads_a_fields_secret_secretkit_wrote(env: Env, store: SecretStore) -> None:
    pydantic_settings = pytest.importorskip("pydantic_settings")
    from pydantic_settings import AWSSecretsManagerSettingsSource, BaseSettings, PydanticBaseSettingsSource

    name = unique("settings")
    store.put(name, {"username": "app", "password": "p@ss wörd", "port": "5432"})

    class Database(BaseSettings):
        username: str
        password: str
        port: int

        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], *args: PydanticBaseSettingsSource, **kwargs: Any
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (AWSSecretsManagerSettingsSource(settings_cls, name, region_name=REGION, endpoint_url=env.endpoint),)

    settings = Database()
    assert (settings.username, settings.password, settings.port) == ("app", "p@ss wörd", 5432)
    assert pydantic_settings.__version__


# -- DEBUG logging never shows a value ---------------------------------------------------------

_CANARY_SCRIPT = textwrap.dedent("""
    import logging, sys, moto, secretkit
    from secretkit.drivers.aws.moto import aws_faithful_moto, fake_aws_env, moto_server

    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    for sdk in ("botocore", "boto3", "urllib3", "secretkit", "werkzeug"):
        logging.getLogger(sdk).setLevel(logging.DEBUG)
    CANARY = "CanaryValue-7f3a9c"

    def exercise(url):
        with secretkit.open(url) as store:
            store.put("canary/text", CANARY)
            store.put("canary/json", '{"password": "' + CANARY + '"}')
            store.put("canary/fields", {"username": "app", "password": CANARY})
            store.put("canary/bytes", CANARY.encode() + b"\\xff")
            assert store.get("canary/text").text == CANARY
            assert store.get("canary/fields")["password"] == CANARY
            batch = store.get_many(["canary/text", "canary/json", "canary/bytes"])
            assert batch["canary/bytes"].bytes.startswith(CANARY.encode())
            store.rotate("canary/fields", field="password", generate=lambda current: CANARY + "-next")
            assert store.get("canary/fields", stage="previous")["password"] == CANARY
            store.client.get_secret_value(SecretId="canary/json")  # the user's own call on the store's client

    with fake_aws_env(), aws_faithful_moto():
        with moto.mock_aws():
            exercise("aws-sm://?region=us-east-1")
        with moto_server(faithful=False) as endpoint:
            exercise("aws-sm://?region=us-east-1&endpoint_url=" + endpoint)
    print("done")
""")


def test_debug_logging_of_every_logger_never_shows_a_value(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", _CANARY_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "done"
    log = done.stderr
    assert "Response body" in log and "SecretString" in log and "Making request" in log  # DEBUG did log bodies
    assert "CanaryValue" not in log
    assert "Q2FuYXJ5VmFsdWU" not in log  # nor its base64 (SecretBinary on the wire)
