"""secretkit.drivers.aws.moto: each patch changes moto where it differs from AWS, and only there.

Every case runs twice, on plain moto and on ``aws_faithful_moto``: the plain run shows the
difference is still there in the installed moto (if moto fixes one, its test here says so and
the patch can go), the patched run shows AWS's behaviour.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError

from secretkit.drivers.aws.moto import REGION, aws_faithful_moto, begin_rotation, fake_aws_env
from tests.doubles.aws import make_client

moto = pytest.importorskip("moto")


@contextmanager
def plain_moto() -> Iterator[None]:
    """moto without the patches, even while another test's patched moto server is running
    in this process (the patches are on moto's classes)."""
    from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend

    targets = [(SecretsManagerBackend, "put_secret_value"), (SecretsManagerBackend, "create_secret"),
               (SecretsManagerBackend, "update_secret_version_stage"), (FakeSecret, "reset_default_version"),
               (SecretsManagerBackend, "list_secret_version_ids")]
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr in targets]
    for owner, attr, fn in saved:
        while hasattr(fn, "__wrapped__"):
            fn = fn.__wrapped__
        setattr(owner, attr, fn)
    try:
        yield
    finally:
        for owner, attr, fn in saved:
            setattr(owner, attr, fn)


@pytest.fixture(params=["plain", "faithful"])
def faithful(request: pytest.FixtureRequest) -> Iterator[bool]:
    with ExitStack() as stack:
        stack.enter_context(fake_aws_env())
        stack.enter_context(plain_moto())
        if request.param == "faithful":
            stack.enter_context(aws_faithful_moto())
        stack.enter_context(moto.mock_aws())
        yield request.param == "faithful"


def code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def token() -> str:
    return str(uuid.uuid4())


def test_put_on_a_secret_scheduled_for_deletion(faithful: bool) -> None:
    raw = make_client()
    raw.create_secret(Name="doomed", SecretString="v1")
    raw.delete_secret(SecretId="doomed")
    if not faithful:
        raw.put_secret_value(SecretId="doomed", SecretString="v2")  # moto: accepted
        return
    with pytest.raises(ClientError) as info:
        raw.put_secret_value(SecretId="doomed", SecretString="v2")
    assert code(info.value) == "InvalidRequestException" and "marked for deletion" in str(info.value)


def test_create_over_a_name_scheduled_for_deletion(faithful: bool) -> None:
    raw = make_client()
    raw.create_secret(Name="doomed", SecretString="v1")
    raw.delete_secret(SecretId="doomed")
    with pytest.raises(ClientError) as info:
        raw.create_secret(Name="doomed", SecretString="v2")
    assert code(info.value) == ("InvalidRequestException" if faithful else "ResourceExistsException")


def test_moving_a_held_label_needs_remove_from_version_id(faithful: bool) -> None:
    raw = make_client()
    raw.create_secret(Name="s", SecretString="v1")
    first, second = token(), token()
    raw.put_secret_value(SecretId="s", SecretString="p1", ClientRequestToken=first, VersionStages=["AWSPENDING"])
    raw.put_secret_value(SecretId="s", SecretString="p2", ClientRequestToken=second, VersionStages=["mine"])
    move = {"SecretId": "s", "VersionStage": "AWSPENDING", "MoveToVersionId": second}
    if not faithful:
        raw.update_secret_version_stage(**move)  # moto: both versions now hold AWSPENDING
        stages = raw.describe_secret(SecretId="s")["VersionIdsToStages"]
        assert "AWSPENDING" in stages[first] and "AWSPENDING" in stages[second]
        return
    with pytest.raises(ClientError) as info:
        raw.update_secret_version_stage(**move)
    assert code(info.value) == "InvalidParameterException"
    raw.update_secret_version_stage(**move, RemoveFromVersionId=first)
    stages = raw.describe_secret(SecretId="s")["VersionIdsToStages"]
    assert "AWSPENDING" not in stages.get(first, []) and stages[second].count("AWSPENDING") == 1


def test_moving_awscurrent_moves_what_reads_return(faithful: bool) -> None:
    raw = make_client()
    base = raw.create_secret(Name="s", SecretString="base", ClientRequestToken=token())["VersionId"]
    new = token()
    raw.put_secret_value(SecretId="s", SecretString="next", ClientRequestToken=new, VersionStages=["staged"])
    raw.update_secret_version_stage(SecretId="s", VersionStage="AWSCURRENT", MoveToVersionId=new,
                                    RemoveFromVersionId=base)
    plain_read = raw.get_secret_value(SecretId="s")["SecretString"]
    batch = raw.batch_get_secret_value(SecretIdList=["s"])["SecretValues"][0]["SecretString"]
    assert raw.get_secret_value(SecretId="s", VersionStage="AWSCURRENT")["SecretString"] == "next"
    assert (plain_read, batch) == (("next", "next") if faithful else ("base", "base"))


def test_a_put_keeps_the_other_labels_of_the_version_it_leaves(faithful: bool) -> None:
    raw = make_client()
    first = raw.create_secret(Name="s", SecretString="v1", ClientRequestToken=token())["VersionId"]
    raw.update_secret_version_stage(SecretId="s", VersionStage="AWSPENDING", MoveToVersionId=first)
    raw.put_secret_value(SecretId="s", SecretString="v2")
    stages: dict[str, Any] = raw.describe_secret(SecretId="s")["VersionIdsToStages"]
    assert sorted(stages[first]) == (["AWSPENDING", "AWSPREVIOUS"] if faithful else ["AWSPREVIOUS"])


def test_version_listing_reports_when_each_version_was_made(faithful: bool) -> None:
    """ListSecretVersionIds' CreatedDate is the version's creation time, as GetSecretValue reports
    it; plain moto reports the time of the listing, so two listings a second apart differ."""
    from moto.backends import get_backend
    from moto.core.models import DEFAULT_ACCOUNT_ID

    raw = make_client()
    first = raw.create_secret(Name="s", SecretString="v1", ClientRequestToken=token())["VersionId"]
    version = get_backend("secretsmanager")[DEFAULT_ACCOUNT_ID][REGION].secrets["s"].versions[first]
    version["createdate"] -= 86400  # made a day ago: the listing's time and the version's differ without waiting
    made = raw.get_secret_value(SecretId="s", VersionId=first)["CreatedDate"]
    listed = raw.list_secret_version_ids(SecretId="s", IncludeDeprecated=True)["Versions"]
    assert [v["VersionId"] for v in listed] == [first]
    if not faithful:
        assert listed[0]["CreatedDate"] > made and "LastAccessedDate" in listed[0]  # moto: "now"
        return
    assert listed[0]["CreatedDate"] == made
    assert "LastAccessedDate" not in listed[0]  # moto does not track reads: no made-up date


def test_patches_stay_while_any_use_is_open_and_are_undone_by_the_last() -> None:
    """Uses that end out of order (a session's moto server started inside one test's in-process
    moto, which ends first) keep the patches until the last one ends. In a fresh interpreter:
    here, the session's own patched server may be running."""
    code = """
from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend
from secretkit.drivers.aws.moto import aws_faithful_moto

def current():
    return [SecretsManagerBackend.put_secret_value, SecretsManagerBackend.update_secret_version_stage,
            SecretsManagerBackend.create_secret, FakeSecret.reset_default_version,
            SecretsManagerBackend.list_secret_version_ids]

before = current()
first, second = aws_faithful_moto(), aws_faithful_moto()
first.__enter__()
patched = current()
assert all(a is not b for a, b in zip(patched, before))
second.__enter__()
assert current() == patched  # not patched twice
first.__exit__(None, None, None)  # the first use ends first: the second still has the patches
assert current() == patched
second.__exit__(None, None, None)
assert current() == before
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_fake_aws_env_hides_real_configuration_and_restores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREAL")
    with fake_aws_env():
        assert "AWS_PROFILE" not in os.environ
        assert os.environ["AWS_ACCESS_KEY_ID"] == "testing" and os.environ["AWS_REGION"] == REGION
    assert os.environ["AWS_PROFILE"] == "production" and os.environ["AWS_ACCESS_KEY_ID"] == "AKIAREAL"


def test_begin_rotation_opens_a_pending_version_without_a_value(faithful: bool) -> None:
    raw = make_client()
    raw.create_secret(Name="s", SecretString="v1")
    opened = token()
    arn = begin_rotation("s", opened)
    described = raw.describe_secret(SecretId=arn)
    assert described["RotationEnabled"] and described["VersionIdsToStages"][opened] == ["AWSPENDING"]
    with pytest.raises(ClientError):
        raw.get_secret_value(SecretId="s", VersionStage="AWSPENDING")


def test_import_secretkit_testing_does_not_import_moto() -> None:
    code = "import sys, secretkit.testing, secretkit.testing.conformance; print('moto' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
