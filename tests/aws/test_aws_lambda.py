"""The ready rotation Lambda handler, step by step, against moto (in-process and over HTTP).

Each test plays Secrets Manager's part: it opens the rotation (``begin_aws_rotation``) and
invokes the handler with the four step events in order, as AWS does, including the repeats
AWS makes after a failure.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

import secretkit
from secretkit.aws_lambda import STEPS, RotationHandler
from secretkit.errors import InvalidArgumentError
from secretkit.rotation import RotationError
from secretkit.secret import Secret, Stage
from secretkit.store import SecretStore
from tests.doubles.aws import (
    BACKENDS,
    REGION,
    aws_http_endpoint,
    begin_aws_rotation,
    make_client,
    moto_backend,
)

moto = pytest.importorskip("moto")
__all__ = ["aws_http_endpoint"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> Iterator[SecretStore]:
    with moto_backend(request) as endpoint:
        extra = f"&endpoint_url={endpoint}" if endpoint else ""
        with secretkit.open(f"aws-sm://?region={REGION}{extra}") as s:
            yield s


class Target:
    """A system whose password is rotated: it accepts what ``apply`` set."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.applied: list[str] = []

    def apply(self, pending: Secret) -> None:
        self.applied.append(pending.text)
        self.password = pending.text

    def verify(self, pending: Secret) -> bool:
        return self.password == pending.text


def event(arn: str, token: str, step: str) -> dict[str, Any]:
    return {"SecretId": arn, "ClientRequestToken": token, "Step": step}


def start(store: SecretStore, value: str = "old-password") -> tuple[str, str, str]:
    name = f"lambda/db-{uuid.uuid4().hex[:8]}"
    store.put(name, value)
    token = str(uuid.uuid4())
    begin_aws_rotation(name, token)
    arn = store.client.describe_secret(SecretId=name)["ARN"]
    return name, arn, token


def labels(store: SecretStore, name: str) -> dict[str, list[str]]:
    return {v: sorted(ls) for v, ls in store.client.describe_secret(SecretId=name)["VersionIdsToStages"].items()}


def test_four_steps_rotate_and_keep_previous(store: SecretStore) -> None:
    name, arn, token = start(store)
    old_version = store.get(name).version
    target = Target("old-password")
    handler = RotationHandler(apply=target.apply, verify=target.verify, store=store)
    for step in STEPS:
        handler(event(arn, token, step))
        if step != "finishSecret":
            assert store.get(name).text == "old-password"  # readers keep current until the end
    new = store.get(name)
    assert new.version == token and new.text == target.password and len(new.text) >= 32
    assert target.applied == [new.text]
    assert store.get(name, stage=Stage.PREVIOUS).text == "old-password"
    assert labels(store, name) == {token: ["AWSCURRENT"], old_version: ["AWSPREVIOUS"]}


def test_every_step_repeated_converges_without_a_second_value(store: SecretStore) -> None:
    name, arn, token = start(store)
    target = Target("old-password")
    generated: list[str] = []

    def generate(current: Secret) -> str:
        generated.append(f"pw-{len(generated)}-{current.version[:4]}")
        return generated[-1]

    handler = RotationHandler(apply=target.apply, verify=target.verify, generate=generate, store=store)
    for step in STEPS:
        handler(event(arn, token, step))
        handler(event(arn, token, step))  # AWS may deliver any step again
    for step in STEPS:  # and retries the whole rotation with the same token
        handler(event(arn, token, step))
    assert len(generated) == 1
    assert store.get(name).text == generated[0] == target.password
    assert set(target.applied) == {generated[0]}


def test_failed_test_step_keeps_current_and_a_retry_resumes_with_the_same_value(store: SecretStore) -> None:
    name, arn, token = start(store)
    target = Target("old-password")
    broken = {"apply": True}

    def apply(pending: Secret) -> None:
        if not broken["apply"]:
            target.apply(pending)

    handler = RotationHandler(apply=apply, verify=target.verify, store=store)
    handler(event(arn, token, "createSecret"))
    handler(event(arn, token, "setSecret"))
    with pytest.raises(RotationError) as info:
        handler(event(arn, token, "testSecret"))
    pending = store.get(name, stage=Stage.PENDING)
    assert info.value.step == "verify" and pending.text not in str(info.value)
    assert store.get(name).text == "old-password"
    broken["apply"] = False
    for step in STEPS:
        handler(event(arn, token, step))
    assert store.get(name).text == pending.text == target.password


def test_fields_and_bytes_values_round_trip(store: SecretStore) -> None:
    name, arn, token = start(store)
    handler = RotationHandler(generate=lambda c: {"username": "app", "password": "n3w"}, store=store)
    for step in STEPS:
        handler(event(arn, token, step))
    assert store.get(name).fields == {"username": "app", "password": "n3w"}

    name, arn, token = start(store)
    handler = RotationHandler(generate=lambda c: b"\x00\xffkey", store=store)
    for step in STEPS:
        handler(event(arn, token, step))
    assert store.get(name).bytes == b"\x00\xffkey"


def test_finish_promotes_over_whatever_is_current_then(store: SecretStore) -> None:
    name, arn, token = start(store)
    handler = RotationHandler(store=store)
    for step in STEPS[:3]:
        handler(event(arn, token, step))
    store.put(name, "written-meanwhile")  # AWSCURRENT moves while the rotation is pending
    handler(event(arn, token, "finishSecret"))  # reads current afresh: promotes over the new one
    assert store.get(name).version == token
    assert store.get(name, stage=Stage.PREVIOUS).text == "written-meanwhile"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("disabled", "rotation is not enabled"),
        ("unknown-token", "is not a version"),
        ("not-pending", "not labelled AWSPENDING"),
    ],
)
def test_preconditions_are_checked_before_anything_is_written(store: SecretStore, setup: str, message: str) -> None:
    name, arn, token = start(store)
    if setup == "disabled":
        from moto.backends import get_backend
        from moto.core import DEFAULT_ACCOUNT_ID

        get_backend("secretsmanager")[DEFAULT_ACCOUNT_ID][REGION].secrets[name].rotation_enabled = False
    elif setup == "unknown-token":
        token = str(uuid.uuid4())
    else:
        store.client.update_secret_version_stage(SecretId=name, VersionStage="AWSPENDING", RemoveFromVersionId=token)
    before = labels(store, name)
    with pytest.raises(RotationError, match=message):
        RotationHandler(store=store)(event(arn, token, "createSecret"))
    assert labels(store, name) == before


def test_not_an_event_is_refused(store: SecretStore) -> None:
    with pytest.raises(RotationError):
        RotationHandler(store=store)({"SecretId": "x", "Step": "createSecret"})
    with pytest.raises(RotationError):
        RotationHandler(store=store)({"SecretId": "x", "ClientRequestToken": "t" * 32, "Step": "dropSecret"})


def test_raw_client_sees_aws_shapes(store: SecretStore) -> None:
    _, arn, token = start(store)
    for step in STEPS:
        RotationHandler(store=store)(event(arn, token, step))
    raw = make_client(None if store.client.meta.endpoint_url.startswith("https://") else store.client.meta.endpoint_url)
    got = raw.get_secret_value(SecretId=arn)
    assert got["VersionId"] == token and "AWSCURRENT" in got["VersionStages"]


RDS_JSON = '{"engine":"postgres","host":"h","port":5432,"username":"app","password":"old"}'


def start_raw(store: SecretStore, secret_string: str) -> tuple[str, str, str]:
    """A secret written by another tool (raw boto3), then a rotation opened on it."""
    name = f"lambda/rds-{uuid.uuid4().hex[:8]}"
    store.client.create_secret(Name=name, SecretString=secret_string)
    token = str(uuid.uuid4())
    begin_aws_rotation(name, token)
    return name, store.client.describe_secret(SecretId=name)["ARN"], token


def test_field_rotation_keeps_the_shape_of_an_rds_secret(store: SecretStore) -> None:
    name, arn, token = start_raw(store, RDS_JSON)
    target = Target("old")

    def apply(pending: Secret) -> None:
        target.password = pending["password"]

    handler = RotationHandler(field="password", apply=apply, verify=lambda p: target.password == p["password"],
                              store=store)
    for step in STEPS:
        handler(event(arn, token, step))
    raw = make_client(None if store.client.meta.endpoint_url.startswith("https://") else store.client.meta.endpoint_url)
    now = json.loads(raw.get_secret_value(SecretId=name)["SecretString"])
    assert now.pop("password") == target.password != "old"
    assert now == {"engine": "postgres", "host": "h", "port": 5432, "username": "app"}  # port still a number
    assert raw.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == RDS_JSON


def test_default_generator_refuses_a_multi_field_secret_without_field(store: SecretStore) -> None:
    name, arn, token = start_raw(store, RDS_JSON)
    before = labels(store, name)
    with pytest.raises(InvalidArgumentError, match="field="):
        RotationHandler(store=store)(event(arn, token, "createSecret"))
    assert labels(store, name) == before
    with pytest.raises(ClientError):  # the pending version got no value
        store.client.get_secret_value(SecretId=name, VersionId=token)
    assert store.client.get_secret_value(SecretId=name)["SecretString"] == RDS_JSON
