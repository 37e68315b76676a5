"""aws-sm:// behaviour beyond the portable contract, on moto in-process and over HTTP.

Call counts are taken from botocore's own events on the client the driver uses, so they
are the calls that really went out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

import secretkit
from secretkit.drivers.aws import codec, errors
from secretkit.drivers.aws.driver import AwsDriver
from secretkit.drivers.base import BatchReader, NativeStages, SdkClient, ValueLimits, VersionProbe
from secretkit.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ThrottledError,
    UnavailableError,
)
from secretkit.secret import Kind, Stage, Value
from secretkit.store import SecretStore
from secretkit.testing.spy import CountingDriver
from tests.doubles.aws import (
    BACKENDS,
    REGION,
    CallCounter,
    aws_faithful_moto,
    aws_http_endpoint,
    fail_before_send,
    fake_aws_env,
    free_port,
    lose_response,
    enable_native_rotation,
    make_client,
    moto_backend,
    read_timeout,
    server_error,
)

moto = pytest.importorskip("moto")
__all__ = ["aws_http_endpoint"]

FAST_RETRY = {"max_attempts": 4, "initial_backoff": 0.001, "max_backoff": 0.005, "deadline": 10}
NO_RETRY = {"max_attempts": 1}


@dataclass
class Env:
    """One moto flavour: in-process (endpoint None) or the HTTP server."""

    endpoint: str | None

    def url(self) -> str:
        extra = f"&endpoint_url={self.endpoint}" if self.endpoint else ""
        return f"aws-sm://?region={REGION}{extra}"

    def open(self, retry: dict[str, Any] | None = None, **options: Any) -> SecretStore:
        return secretkit.open(self.url(), retry=retry or FAST_RETRY, **options)

    def raw(self) -> Any:
        return make_client(self.endpoint)


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    with moto_backend(request) as endpoint:
        yield Env(endpoint)


@pytest.fixture
def inproc() -> Iterator[Env]:
    with fake_aws_env(), aws_faithful_moto(), moto.mock_aws():
        yield Env(None)


@pytest.fixture
def store(env: Env) -> Iterator[SecretStore]:
    with env.open() as s:
        yield s


@pytest.fixture
def counter(store: SecretStore) -> Iterator[CallCounter]:
    c = CallCounter(store.client)
    yield c
    c.detach()


def unique(prefix: str) -> str:
    import uuid

    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def all_versions(raw: Any, stored_name: str) -> list[dict[str, Any]]:
    return list(raw.list_secret_version_ids(SecretId=stored_name, IncludeDeprecated=True)["Versions"])


# -- batch reads -------------------------------------------------------------------


def test_get_many_of_100_names_makes_5_batch_calls(env: Env, store: SecretStore, counter: CallCounter) -> None:
    root = unique("batch")
    names = [f"{root}/s{i:03d}" for i in range(100)]
    raw = env.raw()
    for i, n in enumerate(names):
        raw.create_secret(Name=n, SecretString=f"v{i}")
    counter.reset()

    result = store.get_many(names)

    assert counter.calls == {"BatchGetSecretValue": 5}
    assert counter.sends == {"BatchGetSecretValue": 5}
    assert {n: result[n].text for n in names} == {n: f"v{i}" for i, n in enumerate(names)}
    assert not result.errors


def test_get_many_reports_missing_and_deleted_per_name(env: Env, store: SecretStore, counter: CallCounter) -> None:
    root = unique("batchmix")
    present = [f"{root}/ok-{i}" for i in range(38)]
    for n in present:
        store.put(n, n)
    store.put(f"{root}/gone", "x")
    store.delete(f"{root}/gone")
    missing = [f"{root}/missing-{i}" for i in range(2)]
    counter.reset()

    result = store.get_many([*present, f"{root}/gone", *missing, present[0]])

    assert counter.calls == {"BatchGetSecretValue": 3}  # 41 distinct names, 20 a call
    assert {n: result[n].text for n in present} == {n: n for n in present}
    assert set(result.errors) == {f"{root}/gone", *missing}
    assert all(isinstance(e, NotFoundError) for e in result.errors.values())
    assert result.errors[missing[0]].backend == "aws-sm"


def test_current_version_reads_metadata_only(store: SecretStore, counter: CallCounter) -> None:
    name = unique("cv")
    store.put(name, "one")
    v2 = store.put(name, "two").version
    counter.reset()
    driver = store.driver
    assert isinstance(driver, AwsDriver)
    assert driver.current_version(name) == v2 == store.get(name).version
    assert counter.calls == {"DescribeSecret": 1, "GetSecretValue": 1}
    store.delete(name)
    with pytest.raises(NotFoundError):
        driver.current_version(name)


# -- idempotent put: a retry after a lost response never makes a second version --------


@pytest.mark.parametrize("fault", [server_error, read_timeout], ids=["500-after-landing", "read-timeout-after-landing"])
def test_retried_put_of_new_secret_makes_one_version(
    env: Env, store: SecretStore, counter: CallCounter, fault: Callable[[], Any]
) -> None:
    name = unique("retry-new")
    with lose_response(store.client, "CreateSecret", times=1, fault=fault) as seen:
        info = store.put(name, "value")

    assert seen["landed"] == 1
    versions = all_versions(env.raw(), name)
    assert [v["VersionId"] for v in versions] == [info.version]
    assert store.get(name).text == "value"
    # PutSecretValue (not found) → CreateSecret (lost) → retry: PutSecretValue lands idempotently.
    assert counter.calls == {"PutSecretValue": 2, "CreateSecret": 1, "GetSecretValue": 1}
    assert counter.sends == counter.calls


def test_retried_put_of_existing_secret_makes_one_version(env: Env, store: SecretStore, counter: CallCounter) -> None:
    name = unique("retry-put")
    store.put(name, "first")
    counter.reset()
    with lose_response(store.client, "PutSecretValue", times=2, fault=server_error):
        info = store.put(name, "second")
    assert counter.calls == {"PutSecretValue": 3}
    versions = all_versions(env.raw(), name)
    assert len(versions) == 2
    assert store.get(name).text == "second" and store.get(name).version == info.version
    assert store.get(name, stage=Stage.PREVIOUS).text == "first"


def test_retried_create_only_succeeds_once(env: Env, store: SecretStore, counter: CallCounter) -> None:
    name = unique("retry-create")
    with lose_response(store.client, "CreateSecret", times=1, fault=server_error):
        info = store.put(name, "v", create_only=True)
    # The retried CreateSecret carries the same token and value, so Secrets Manager accepts it
    # as the same request (the driver would also recognise its token after a ResourceExists).
    assert counter.calls == {"CreateSecret": 2}
    assert [v["VersionId"] for v in all_versions(env.raw(), name)] == [info.version]
    with pytest.raises(AlreadyExistsError):
        store.put(name, "other", create_only=True)
    assert store.get(name).text == "v"


def test_retried_compare_and_set_whose_stage_move_landed(env: Env, store: SecretStore, counter: CallCounter) -> None:
    name = unique("retry-cas")
    base = store.put(name, "base").version
    counter.reset()
    with lose_response(store.client, "UpdateSecretVersionStage", times=1, fault=server_error):
        info = store.put(name, "next", if_version=base)
    got = store.get(name)
    assert (got.text, got.version) == ("next", info.version)
    assert len(all_versions(env.raw(), name)) == 2
    labels = {label for v in all_versions(env.raw(), name) for label in v["VersionStages"]}
    assert labels == {"AWSCURRENT", "AWSPREVIOUS"}  # the private write label was removed
    # attempt 1: Put, move (lost); attempt 2: Put (no-op), move (refused), Describe, drop label
    assert counter.calls["PutSecretValue"] == 2
    assert counter.calls["DescribeSecret"] == 1


# -- compare-and-set -------------------------------------------------------------------


def test_conditional_put_losing_a_race_overwrites_nothing(env: Env, store: SecretStore, counter: CallCounter) -> None:
    name = unique("race")
    base = store.put(name, "base").version
    rival = env.open()
    rival_version: list[str] = []

    def rival_writes_first(model: Any, **_: Any) -> None:
        if model.name == "UpdateSecretVersionStage" and not rival_version:
            rival_version.append(rival.put(name, "rival", if_version=base).version)

    store.client.meta.events.register("before-call.secrets-manager.UpdateSecretVersionStage", rival_writes_first)
    counter.reset()
    try:
        with pytest.raises(ConflictError) as info:
            store.put(name, "mine", if_version=base)
    finally:
        store.client.meta.events.unregister("before-call.secrets-manager.UpdateSecretVersionStage", rival_writes_first)

    assert "mine" not in str(info.value)
    got = store.get(name)
    assert (got.text, got.version) == ("rival", rival_version[0])
    assert store.get(name, stage=Stage.PREVIOUS).text == "base"
    raw = env.raw()
    versions = all_versions(raw, name)
    assert len(versions) == 3  # base, rival, and the loser's orphan
    orphan = [v for v in versions if v["VersionId"] not in (base, rival_version[0])]
    assert orphan[0]["VersionStages"] == []  # never current, no label left behind
    assert raw.get_secret_value(SecretId=name, VersionId=orphan[0]["VersionId"])["SecretString"] == "mine"
    # staged Put, refused stage move, Describe (did an earlier attempt win?), drop label
    assert counter.calls == {"PutSecretValue": 1, "UpdateSecretVersionStage": 2, "DescribeSecret": 1, "GetSecretValue": 2}
    rival.close()


def test_winning_compare_and_set_calls(env: Env, store: SecretStore, counter: CallCounter) -> None:
    name = unique("cas-win")
    base = store.put(name, "base").version
    counter.reset()
    info = store.put(name, "next", if_version=base)
    assert counter.calls == {"PutSecretValue": 1, "UpdateSecretVersionStage": 2}
    assert [v.version for v in store.versions(name)] == [info.version, base]
    assert [sorted(v.stages) for v in store.versions(name)] == [["AWSCURRENT", "current"], ["AWSPREVIOUS", "previous"]]


def test_compare_and_set_with_a_non_aws_version_id_conflicts_without_io(store: SecretStore, counter: CallCounter) -> None:
    name = unique("cas-id")
    store.put(name, "x")
    counter.reset()
    with pytest.raises(ConflictError):
        store.put(name, "y", if_version="7")
    assert counter.total == 0


def test_compare_and_set_on_deleted_secret_conflicts_and_keeps_it_recoverable(env: Env, store: SecretStore) -> None:
    name = unique("cas-del")
    base = store.put(name, "kept").version
    store.delete(name)
    with pytest.raises(ConflictError):
        store.put(name, "new", if_version=base)
    raw = env.raw()
    raw.restore_secret(SecretId=name)
    assert store.get(name).text == "kept"


# -- retries: the store's policy is the only retry layer -------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 400), ("InternalServiceError", 500), ("ServiceUnavailable", 503), ("TooManyRequestsException", 429)],
)
def test_transient_errors_are_retried_by_the_store(store: SecretStore, counter: CallCounter, code: str, status: int) -> None:
    name = unique("flaky")
    store.put(name, "value")
    counter.reset()
    with fail_before_send(store.client, "GetSecretValue", code, status, times=2):
        assert store.get(name).text == "value"
    assert counter.calls == {"GetSecretValue": 3}
    assert counter.sends == {"GetSecretValue": 3}


def test_throttled_put_is_retried_into_one_version(env: Env, store: SecretStore, counter: CallCounter) -> None:
    name = unique("flaky-put")
    store.put(name, "one")
    counter.reset()
    with fail_before_send(store.client, "PutSecretValue", "ThrottlingException", 400, times=2):
        store.put(name, "two")
    assert counter.calls == {"PutSecretValue": 3}
    assert len(all_versions(env.raw(), name)) == 2


def test_persistent_throttling_gives_up_after_the_policy_attempts(store: SecretStore, counter: CallCounter) -> None:
    name = unique("throttled")
    store.put(name, "value")
    counter.reset()
    events: list[Any] = []
    store.add_audit_hook(events.append)
    with fail_before_send(store.client, "GetSecretValue", "ThrottlingException", 400, times=99), pytest.raises(
        UnavailableError
    ) as info:
        store.get(name)
    assert info.value.attempts == 4
    assert isinstance(info.value.__cause__, ThrottledError)
    assert counter.calls == {"GetSecretValue": 4} and counter.sends == {"GetSecretValue": 4}
    assert events[-1].attempts == 4


@pytest.mark.parametrize(
    ("code", "error"),
    [("AccessDeniedException", PermissionDeniedError), ("UnrecognizedClientException", AuthenticationError),
     ("ValidationException", InvalidArgumentError), ("DecryptionFailure", PermissionDeniedError)],
)
def test_permanent_errors_make_exactly_one_call(store: SecretStore, counter: CallCounter, code: str, error: type) -> None:
    name = unique("denied")
    store.put(name, "value")
    counter.reset()
    with fail_before_send(store.client, "GetSecretValue", code, 400, times=99), pytest.raises(error) as info:
        store.get(name)
    assert counter.calls == {"GetSecretValue": 1}
    assert code in str(info.value) and name in str(info.value)
    assert isinstance(info.value.__cause__, ClientError)


def test_missing_secret_makes_exactly_one_call(store: SecretStore, counter: CallCounter) -> None:
    with pytest.raises(NotFoundError):
        store.get(unique("nowhere"))
    assert counter.calls == {"GetSecretValue": 1}


def test_botocore_retries_stay_off_even_when_the_environment_asks(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    with env.open(retry=NO_RETRY) as store:
        assert store.client.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
        counter = CallCounter(store.client)
        with fail_before_send(store.client, "GetSecretValue", "InternalServiceError", 500, times=99), pytest.raises(
            UnavailableError
        ):
            store.get("anything")
        assert counter.sends == {"GetSecretValue": 1}


def test_unreachable_endpoint_is_unavailable_after_retries() -> None:
    with fake_aws_env():
        url = f"aws-sm://?region={REGION}&endpoint_url=http://127.0.0.1:{free_port()}&connect_timeout=1"
        with secretkit.open(url, retry=FAST_RETRY) as store:
            counter = CallCounter(store.client)
            with pytest.raises(UnavailableError) as info:
                store.get("x")
    assert info.value.attempts == 4
    assert counter.sends == {"GetSecretValue": 4}


# -- deletion --------------------------------------------------------------------------


def test_default_delete_is_recoverable(env: Env, store: SecretStore) -> None:
    name = unique("soft")
    store.put(name, "keep me")
    store.delete(name)
    with pytest.raises(NotFoundError):
        store.get(name)
    assert name not in list(store.list(name))
    raw = env.raw()
    deleted = raw.describe_secret(SecretId=name)["DeletedDate"]
    assert deleted - datetime.now(timezone.utc) > timedelta(days=29)  # AWS's default window
    with pytest.raises(NotFoundError):
        store.delete(name)  # already scheduled
    raw.restore_secret(SecretId=name)
    assert store.get(name).text == "keep me"


def test_recovery_window_option(env: Env) -> None:
    with env.open(recovery_window_days=7) as store:
        name = unique("window")
        store.put(name, "x")
        store.delete(name)
        deleted = env.raw().describe_secret(SecretId=name)["DeletedDate"]
    assert timedelta(days=6) < deleted - datetime.now(timezone.utc) < timedelta(days=8)


def test_purge_deletes_at_once_and_reports_missing(env: Env, store: SecretStore, counter: CallCounter) -> None:
    name = unique("purge")
    store.put(name, "x")
    store.delete(name, purge=True)
    with pytest.raises(ClientError) as info:
        env.raw().describe_secret(SecretId=name)
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    counter.reset()
    with pytest.raises(NotFoundError):
        store.delete(name, purge=True)  # AWS's force delete would report success
    assert counter.calls == {"DescribeSecret": 1}


def _made_by_terraform(raw: Any, name: str) -> dict[str, Any]:
    """A secret as another tool makes it: description, tags, its own KMS key, a resource
    policy; then scheduled for deletion. Returns what must survive anything a put does."""
    raw.create_secret(Name=name, SecretString="old", Description="db of team x",
                      KmsKeyId="alias/team-x", Tags=[{"Key": "team", "Value": "x"}])
    raw.put_resource_policy(SecretId=name, ResourcePolicy=POLICY)
    raw.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    return _lasting(raw, name)


POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/app"},
     "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})


def _lasting(raw: Any, name: str) -> dict[str, Any]:
    described = raw.describe_secret(SecretId=name)
    return {"ARN": described["ARN"], "Description": described.get("Description"),
            "KmsKeyId": described.get("KmsKeyId"), "Tags": described.get("Tags"),
            "Policy": raw.get_resource_policy(SecretId=name).get("ResourcePolicy")}


@pytest.mark.parametrize("create_only", [False, True])
def test_put_over_a_secret_scheduled_for_deletion_conflicts_and_destroys_nothing(
    env: Env, store: SecretStore, counter: CallCounter, create_only: bool
) -> None:
    name = unique("pending-del")
    raw = env.raw()
    before = _made_by_terraform(raw, name)
    versions_before = all_versions(raw, name)
    counter.reset()

    with pytest.raises(ConflictError) as info:
        store.put(name, "new", create_only=create_only)

    message = str(info.value)
    assert "scheduled for deletion" in message and "restore-secret" in message and "restore_deleted" in message
    assert (info.value.name, info.value.backend) == (name, "aws-sm") and "new" not in message.replace(name, "")
    assert "DeleteSecret" not in counter.calls and "RestoreSecret" not in counter.calls
    assert _lasting(raw, name) == before
    assert "DeletedDate" in raw.describe_secret(SecretId=name)  # still recoverable, not restored
    assert all_versions(raw, name) == versions_before
    raw.restore_secret(SecretId=name)
    assert store.get(name).text == "old"


def test_restore_deleted_option_restores_the_secret_and_adds_the_version(env: Env) -> None:
    name = unique("restore")
    raw = env.raw()
    before = _made_by_terraform(raw, name)
    old = raw.describe_secret(SecretId=name)["VersionIdsToStages"]

    with env.open(restore_deleted=True) as store:
        new = store.put(name, "new").version
        assert store.get(name).text == "new"
        assert store.get(name, stage=Stage.PREVIOUS).text == "old"
        with pytest.raises(AlreadyExistsError):  # restored, it exists: create_only never restores
            store.put(name, "other", create_only=True)

    assert _lasting(raw, name) == before
    described = raw.describe_secret(SecretId=name)
    assert "DeletedDate" not in described
    assert set(described["VersionIdsToStages"]) == {new, *old}


def test_restore_deleted_does_not_turn_create_only_into_a_restore(env: Env) -> None:
    name = unique("restore-co")
    raw = env.raw()
    before = _made_by_terraform(raw, name)
    with env.open(restore_deleted=True) as store, pytest.raises(ConflictError, match="scheduled for deletion"):
        store.put(name, "new", create_only=True)
    assert _lasting(raw, name) == before
    assert "DeletedDate" in raw.describe_secret(SecretId=name)


def test_put_over_a_secret_being_purged_is_retried_not_refused(inproc: Env) -> None:
    """After a force delete AWS frees the name asynchronously: DeletedDate is now, not days
    ahead, so nothing is recoverable and the put is transient (the store retries it)."""
    from moto.backends import get_backend

    name = unique("purging")
    raw = inproc.raw()
    raw.create_secret(Name=name, SecretString="gone")
    get_backend("secretsmanager")["123456789012"][REGION].secrets[name].delete(time.time())
    with inproc.open(retry={"max_attempts": 2, "initial_backoff": 0.001}) as store:
        counter = CallCounter(store.client)
        with pytest.raises(UnavailableError, match="being purged"):
            store.put(name, "new")
    assert counter.calls["PutSecretValue"] == 2  # retried
    assert "DeleteSecret" not in counter.calls and "RestoreSecret" not in counter.calls


def test_put_after_purge_starts_a_new_secret(env: Env, store: SecretStore) -> None:
    name = unique("reborn")
    v1 = store.put(name, "old-1").version
    store.delete(name, purge=True)

    v2 = store.put(name, "new", create_only=True).version

    assert store.get(name).text == "new"
    assert [v.version for v in store.versions(name)] == [v2]
    with pytest.raises(NotFoundError):
        store.get(name, version=v1)


# -- stages ----------------------------------------------------------------------------


def test_stage_reads_map_to_aws_labels(env: Env, store: SecretStore) -> None:
    name = unique("stages")
    store.put(name, "old")
    current = store.put(name, "new").version
    env.raw().put_secret_value(SecretId=name, SecretString="rotating", VersionStages=["AWSPENDING"])

    pending = store.get(name, stage=Stage.PENDING)
    assert pending.text == "rotating"
    assert {"pending", "AWSPENDING"} <= pending.stages
    assert store.get(name, stage=Stage.PREVIOUS).text == "old"
    got = store.get(name)
    assert (got.text, got.version) == ("new", current)
    assert {"current", "AWSCURRENT"} <= got.stages
    by_version = {v.version: v.stages for v in store.versions(name)}
    assert by_version[current] == {"current", "AWSCURRENT"}
    assert sorted(len(s) for s in by_version.values()) == [2, 2, 2]


def test_missing_stage_is_not_found(store: SecretStore) -> None:
    name = unique("onestage")
    store.put(name, "only")
    with pytest.raises(NotFoundError):
        store.get(name, stage=Stage.PENDING)
    with pytest.raises(NotFoundError):
        store.get(name, stage=Stage.PREVIOUS)


def test_rotation_after_aws_left_pending_on_a_finished_version(env: Env, store: SecretStore) -> None:
    """AWS's own rotation functions leave AWSPENDING on the version they made current; after a
    later put it sits on AWSPREVIOUS. That is a finished rotation, not one in progress."""
    name = unique("leftover")
    v1 = store.put(name, "v1").version
    raw = env.raw()
    raw.update_secret_version_stage(SecretId=name, VersionStage="AWSPENDING", MoveToVersionId=v1)
    v2 = store.put(name, "v2").version
    assert sorted(raw.describe_secret(SecretId=name)["VersionIdsToStages"][v1]) == ["AWSPENDING", "AWSPREVIOUS"]

    result = store.rotate(name, generate=lambda current: "v3")

    assert result is not None and store.get(name).text == "v3"
    labels = raw.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert labels[result.version] == ["AWSCURRENT"] and labels[v2] == ["AWSPREVIOUS"]
    assert "AWSPENDING" not in {label for ls in labels.values() for label in ls}


def test_rotation_beside_a_rotation_lambda_is_refused_unless_allowed(env: Env, store: SecretStore) -> None:
    """Secrets Manager rotates this secret itself (a rotation Lambda); a second rotator would
    race it. Refused before anything is written, naming the Lambda, unless the caller opts in."""
    name = unique("lambda-rotated")
    store.put(name, "old")
    arn = enable_native_rotation(env.endpoint, name)
    raw = env.raw()
    described = raw.describe_secret(SecretId=name)
    assert described["RotationEnabled"] is True and described["RotationLambdaARN"] == arn
    with pytest.raises(ConflictError) as info:
        store.rotate(name, generate=lambda c: "new")
    message = str(info.value)
    assert arn in message and name in message and "aws-sm" in message and "allow_native_rotation=True" in message
    assert "new" not in message.replace("allow_native_rotation", "")
    assert raw.describe_secret(SecretId=name)["VersionIdsToStages"] == described["VersionIdsToStages"]  # nothing
    result = store.rotate(name, generate=lambda c: "new", allow_native_rotation=True)
    assert result is not None and store.get(name).text == "new"
    assert store.get(name, stage=Stage.PREVIOUS).text == "old"


# -- names ----------------------------------------------------------------------------


@pytest.mark.parametrize("leaf", ["prod/app-config", "rds/db-master"])
def test_terraform_made_names_are_reached_unchanged(env: Env, store: SecretStore, leaf: str) -> None:
    """A secret made by another tool under a name ending in '-' plus six characters (the shape
    of an ARN suffix) is the secret secretkit reads, lists, writes and deletes: no second one."""
    root = unique("tf")
    name = f"{root}/{leaf}"
    raw = env.raw()
    raw.create_secret(Name=name, SecretString='{"username":"app","password":"from-terraform"}')

    assert store.get(name)["password"] == "from-terraform"
    assert list(store.list(f"{root}/")) == [name]
    store.put(name, {"username": "app", "password": "from-secretkit"})
    listed = [s["Name"] for s in raw.list_secrets(Filters=[{"Key": "name", "Values": [root]}])["SecretList"]]
    assert listed == [name]  # the same secret, one more version
    assert json.loads(raw.get_secret_value(SecretId=name)["SecretString"])["password"] == "from-secretkit"
    assert len(all_versions(raw, name)) == 2
    store.delete(name)
    assert "DeletedDate" in raw.describe_secret(SecretId=name)
    assert list(store.list(f"{root}/")) == []


def test_every_name_aws_accepts_is_used_unchanged(env: Env, store: SecretStore) -> None:
    root = unique("native")
    names = [f"{root}/a+b=c@d", f"{root}/x-abcdef", f"{root}/.hidden_", f"{root}//double", f"{root}/trailing/",
             f"{root}-" + "n" * (512 - len(root) - 1)]
    for i, name in enumerate(names):
        store.put(name, f"v{i}")
    stored = {s["Name"] for s in env.raw().list_secrets(Filters=[{"Key": "name", "Values": [root]}])["SecretList"]}
    assert stored == set(names)
    assert list(store.list(root)) == sorted(names)
    for i, name in enumerate(names):
        assert env.raw().get_secret_value(SecretId=name)["SecretString"] == f"v{i}"
        assert store.get(name).text == f"v{i}"
    assert list(store.list(f"{root}/a+b=")) == [f"{root}/a+b=c@d"]


@pytest.mark.parametrize("bad", ["a b", "ü-umlaut", "semi;colon", "bang!", "x" * 513, "tab\there", "a#b"])
def test_names_aws_refuses_are_refused_before_io_with_its_rule(store: SecretStore, bad: str) -> None:
    spy = CountingDriver(store.driver)
    counted = SecretStore(spy, options=store.options)
    for call in (lambda: counted.get(bad), lambda: counted.put(bad, "v"), lambda: counted.delete(bad),
                 lambda: counted.versions(bad), lambda: counted.get_many([bad])[bad]):
        with pytest.raises(InvalidArgumentError) as info:
            call()
        assert codec.NAME_RULE in str(info.value) or "control characters" in str(info.value)
    assert spy.total == 0


def test_name_rules_map_nothing() -> None:
    for name in ("prod/app-config", "rds/db-master", "a+b=c@d", "x" * 512, "/lead", "a//b"):
        assert codec.NAMES.storage_name(name) == name
        assert not codec.NAMES.is_mapped(name)
    assert codec.NAMES.mapped is None


def test_list_with_a_prefix_no_aws_name_has_makes_no_call(store: SecretStore, counter: CallCounter) -> None:
    assert list(store.list("no spaces in aws names")) == []
    assert list(store.list("x" * 513)) == []
    assert counter.total == 0


def test_longest_portable_name_round_trips(store: SecretStore) -> None:
    name = "/".join(["n" * 99, "m" * 98]) + "-z"
    assert len(name) == 200  # the portable maximum; far below AWS's 512
    store.put(name, "long")
    assert store.get(name).text == "long"
    assert name in list(store.list("n"))


# -- values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "member", "stored"),
    [
        ("plain text", "SecretString", "plain text"),
        ({"user": "app", "password": "p"}, "SecretString", '{"password":"p","user":"app"}'),
        (b"\x00\xffbin", "SecretBinary", b"\x00\xffbin"),
        ("", "SecretString", "\x00"),
        (b"", "SecretBinary", b"\x00"),
        ('{"looks": "like fields"}', "SecretString", '{"looks": "like fields"}'),
        ("\x00starts with NUL", "SecretString", "\x00starts with NUL"),
        ('{"port": 5432}', "SecretString", '{"port": 5432}'),
        ("\x00b", "SecretString", "\x00b"),
        ("b", "SecretString", "b"),
    ],
)
def test_stored_form_of_values(env: Env, store: SecretStore, value: Any, member: str, stored: Any) -> None:
    name = unique("enc")
    store.put(name, value)
    response = env.raw().get_secret_value(SecretId=name)
    assert response[member] == stored
    assert ({"SecretString", "SecretBinary"} - {member}).isdisjoint(response)
    got = store.get(name)
    if isinstance(value, str):
        assert got.text == value and got.kind is Kind.TEXT
    elif isinstance(value, bytes):
        assert got.bytes == value and got.kind is Kind.BYTES
    else:
        assert got.fields == value and got.kind is Kind.TEXT  # AWS holds fields as JSON text


@pytest.mark.parametrize("reserved", ["\x00", b"\x00"], ids=["nul-text", "nul-byte"])
def test_the_empty_value_placeholder_is_refused_before_io(store: SecretStore, counter: CallCounter,
                                                          reserved: str | bytes) -> None:
    with pytest.raises(InvalidArgumentError, match="empty value"):
        store.put(unique("nul"), reserved)
    assert counter.total == 0


@pytest.mark.parametrize(
    ("raw_string", "fields"),
    [
        ('{"username": "a", "port": 5432}', {"username": "a", "port": "5432"}),
        (' {"user": "a"}', {"user": "a"}),
        ('{"on": true, "n": null, "f": 1.5, "o": {"x": [1]}}', {"on": "true", "n": "null", "f": "1.5", "o": '{"x":[1]}'}),
        ("[1, 2]", None),
        ('"quoted"', None),
        ("{not json", None),
    ],
)
def test_values_written_by_other_tools(env: Env, store: SecretStore, raw_string: str, fields: Any) -> None:
    name = unique("foreign")
    env.raw().create_secret(Name=name, SecretString=raw_string)
    got = store.get(name)
    assert got.kind is Kind.TEXT
    assert got.text == raw_string  # exactly as stored: the driver never re-interprets it
    if fields is None:
        with pytest.raises(InvalidArgumentError):
            got.fields  # noqa: B018
    else:
        assert got.fields == fields
        assert got[next(iter(fields))] == next(iter(fields.values()))


def test_rds_style_json_reads_its_fields(env: Env, store: SecretStore) -> None:
    name = unique("rds")
    env.raw().create_secret(Name=name, SecretString='{"username":"a","port":5432}')
    secret = store.get(name)
    assert secret.fields == {"username": "a", "port": "5432"}
    assert secret["port"] == "5432"


def test_text_at_the_limit_is_stored_exactly(env: Env, store: SecretStore) -> None:
    text = '{"k": "' + "x" * (codec.AWS_MAX_VALUE - 9) + '"}'
    assert len(text.encode()) == codec.AWS_MAX_VALUE
    name = unique("limit")
    store.put(name, text)
    assert store.get(name).text == text
    assert env.raw().get_secret_value(SecretId=name)["SecretString"] == text


def _fields_of_json_size(size: int, *, control: int = 0) -> dict[str, str]:
    """One field whose SecretString (the driver's JSON) is ``size`` bytes, ``control`` of its
    characters being control characters (escaped as six bytes each)."""
    fields = {"k": "\x01" * control + "x" * (size - 8 - 6 * control)}
    assert codec.stored_size(codec.encode_value(Value.of(fields))) == size
    return fields


@pytest.mark.parametrize("control", [0, 5000])
def test_fields_at_the_limit_are_stored_and_one_byte_more_is_refused_before_io(
    env: Env, store: SecretStore, counter: CallCounter, control: int
) -> None:
    name = unique("fields-limit")
    at_limit = _fields_of_json_size(codec.AWS_MAX_VALUE, control=control)
    store.put(name, at_limit)
    stored = env.raw().get_secret_value(SecretId=name)["SecretString"]
    assert len(stored.encode("utf-8")) == codec.AWS_MAX_VALUE and json.loads(stored) == at_limit
    assert store.get(name).fields == at_limit
    before = counter.total
    for over in (_fields_of_json_size(codec.AWS_MAX_VALUE + 1, control=control), {"k": "\x01" * 60000}):
        with pytest.raises(InvalidArgumentError, match=str(codec.AWS_MAX_VALUE)):
            store.put(name, over)
    assert counter.total == before


def test_check_value_measures_the_stored_form(store: SecretStore) -> None:
    driver = store.driver
    assert isinstance(driver, AwsDriver)
    driver.check_value("n", Value.of(b"x" * 65536))
    driver.check_value("n", Value.of("é" * 32768))
    driver.check_value("n", Value.of('{"k":"' + "x" * (65536 - 8) + '"}'))  # JSON text: stored as is
    escaped = {"k": '"' * 40000}  # JSON escapes every quote: 80000 bytes stored
    for too_big in (Value.of(b"x" * 65537), Value.of("é" * 32768 + "x"), Value.of(escaped)):
        with pytest.raises(InvalidArgumentError):
            driver.check_value("n", too_big)
    with pytest.raises(InvalidArgumentError, match="not UTF-8"):
        driver.check_value("n", Value.of({"k": b"\xff"}))


@pytest.mark.parametrize(
    "value",
    ["", "x", "\x00b", "b", "{}", " {}", '{"a":"b"}', "{\"a\":1}", "null", '"s"', "\ud7ff text", "\n{\"a\":\"b\"}"],
)
def test_text_encoding_is_exact(value: str) -> None:
    member = codec.encode_value(Value.of(value))
    assert member == {"SecretString": value or "\x00"}
    assert codec.decode_value(member).text == value


@pytest.mark.parametrize("value", [b"", b"\x00\x00", b"\x00b", b"{}", bytes(range(256))])
def test_bytes_encoding_is_exact(value: bytes) -> None:
    member = codec.encode_value(Value.of(value))
    assert member == {"SecretBinary": value or b"\x00"}
    assert codec.decode_value(member) == Value.of(value)


@pytest.mark.parametrize("fields", [{}, {"a": ""}, {"k": '{"nested":"x"}'}, {"ü": "\x00"}, {"b": b"utf8 octets"}])
def test_fields_encoding_is_exact(fields: dict[str, Any]) -> None:
    member = codec.encode_value(Value.of(fields))
    assert set(member) == {"SecretString"}
    expected = {k: v.decode() if isinstance(v, bytes) else v for k, v in fields.items()}
    assert json.loads(member["SecretString"]) == expected
    assert codec.decode_value(member).fields == expected


# -- errors ----------------------------------------------------------------------------


def test_classify_never_passes_values_on() -> None:
    from botocore.exceptions import ParamValidationError

    sentinel = "SENTINEL-aws-value"
    validation = ClientError(
        {"Error": {"Code": "ValidationException",
                   "Message": f"1 validation error detected: Value '{sentinel}' at 'secretString' failed to satisfy constraint"},
         "ResponseMetadata": {"HTTPStatusCode": 400}},
        "PutSecretValue",
    )
    classified = errors.classify(validation)
    assert classified is not None and sentinel not in classified.detail
    assert classified.code.value == "invalid_argument"
    param = ParamValidationError(report=f"Invalid type for parameter SecretString, value: {sentinel}, type: <class 'int'>")
    classified = errors.classify(param)
    assert classified is not None and sentinel not in classified.detail and "SecretString" in classified.detail


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        ("EndpointConnectionError", "unavailable"),
        ("ConnectTimeoutError", "unavailable"),
        ("ConnectionClosedError", "unavailable"),
        ("ReadTimeoutError", "deadline_exceeded"),
        ("NoCredentialsError", "unauthenticated"),
        ("NoRegionError", "config"),
    ],
)
def test_classify_botocore_families(exc: str, code: str) -> None:
    import botocore.exceptions as bx

    cls = getattr(bx, exc)
    instance = cls(endpoint_url="http://x") if "endpoint_url" in (cls.fmt or "") else cls()
    classified = errors.classify(instance)
    assert classified is not None and classified.code.value == code


@pytest.mark.parametrize(
    ("code", "status", "portable"),
    [("ResourceNotFoundException", 400, "not_found"), ("ResourceExistsException", 400, "already_exists"),
     ("LimitExceededException", 400, "unknown"), ("InvalidRequestException", 400, "invalid_argument"),
     ("SomethingNew", 503, "unavailable"), ("SomethingNew", 429, "throttled"), ("SomethingNew", 400, "unknown"),
     ("RequestTimeoutException", 400, "deadline_exceeded"), ("ExpiredTokenException", 400, "unauthenticated")],
)
def test_classify_client_error_codes(code: str, status: int, portable: str) -> None:
    classified = errors.classify_code(code, "msg", status)
    assert classified.code.value == portable


def test_marked_for_deletion_reads_as_not_found() -> None:
    for message in ("You can't perform this operation on the secret because it was marked for deletion.",
                    "You tried to perform the operation on a secret that's currently marked deleted."):
        assert errors.classify_code("InvalidRequestException", message).code.value == "not_found"
    assert errors.classify(ValueError("x")) is None


# -- opening ---------------------------------------------------------------------------


def test_unknown_option_and_bad_url_are_config_errors(inproc: Env) -> None:
    with pytest.raises(ConfigError, match="region"):
        secretkit.open(f"aws-sm://?region={REGION}&regoin=x")
    with pytest.raises(ConfigError, match="no host"):
        secretkit.open("aws-sm://somewhere/path")
    with pytest.raises(ConfigError):
        secretkit.open("aws-sm://?profile=no-such-profile")
    with pytest.raises(ConfigError):
        secretkit.open("aws-sm://?recovery_window_days=3")


def test_missing_region_is_a_config_error(inproc: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ConfigError, match="region"):
        secretkit.open("aws-sm://")


def test_a_given_client_is_used_and_not_closed(inproc: Env) -> None:
    client = make_client()
    with secretkit.open("aws-sm://", client=client) as store:
        assert store.client is client
        store.put("given/client", "x")
    assert client.get_secret_value(SecretId="given/client")["SecretString"] == "x"


def test_import_secretkit_does_not_import_boto3() -> None:
    code = "import sys, secretkit; secretkit.open('memory://'); print('boto3' in sys.modules, 'botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_without_boto3_open_is_a_config_error_naming_the_extra() -> None:
    code = (
        "import sys; sys.modules['boto3'] = None\n"
        "import secretkit\n"
        "try:\n    secretkit.open('aws-sm://?region=eu-west-1')\n"
        "except secretkit.ConfigError as exc:\n    print(exc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'secretkit[aws]'" in out


def test_capabilities(store: SecretStore) -> None:
    caps = store.capabilities
    assert (caps.remote, caps.versions, caps.compare_and_set, caps.create_only) == (True, True, True, True)
    assert (caps.recoverable_delete, caps.idempotent_put, caps.max_value_bytes) == (True, True, 65536)
    driver = store.driver
    for protocol in (BatchReader, VersionProbe, NativeStages, ValueLimits, SdkClient):
        assert isinstance(driver, protocol), protocol.__name__
    assert store.stages == "native"
    assert driver.sdk_loggers == ("botocore", "boto3", "urllib3")
    assert json.dumps(sorted(codec.NATIVE_STAGE.values())) == '["AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"]'


def test_the_package_layout() -> None:
    """__init__ holds the docstring only; every module stays a readable size."""
    import ast
    from pathlib import Path

    import secretkit.drivers.aws as package
    from secretkit.registry import registrations

    registered = registrations()["aws-sm"]
    assert (registered.factory, registered.extras) == ("secretkit.drivers.aws.driver:open_driver", ("aws",))
    root = Path(package.__file__).parent
    body = ast.parse((root / "__init__.py").read_text()).body
    assert len(body) == 1 and isinstance(body[0], ast.Expr)  # the docstring, no re-exports
    assert "docs/backends/aws.md" in (package.__doc__ or "")
    sizes = {p.name: len(p.read_text().splitlines()) for p in root.glob("*.py")}
    assert set(sizes) == {"__init__.py", "common.py", "codec.py", "errors.py", "options.py", "stages.py", "driver.py", "moto.py"}
    assert max(sizes.values()) <= 400, sizes
