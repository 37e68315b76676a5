"""ssm:// beyond the portable suites: SSM's names, tiers and limits, the calls each portable call
becomes (counted on the real boto3 client against moto), errors, options, and the masking of
botocore's debug logs. The conformance suites are in tests/conformance/test_ssm.py."""

from __future__ import annotations

import logging
import traceback
from collections import Counter
from collections.abc import Iterator
from typing import Any

import botocore.exceptions as bx
import pytest

import secretkit
from secretkit.drivers.aws import common
from secretkit.drivers.ssm import codec, errors, options
from secretkit.drivers.ssm.driver import SsmDriver
from secretkit.errors import (
    AlreadyExistsError,
    ConfigError,
    ErrorCode,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
)
from secretkit.redact import install_redaction
from secretkit.store import SecretStore
from secretkit.testing.spy import CountingDriver
from tests.doubles.aws import REGION, fake_aws_env, without_botocore_filters

moto = pytest.importorskip("moto")


@pytest.fixture
def mocked() -> Iterator[None]:
    with fake_aws_env(), moto.mock_aws():
        yield


@pytest.fixture
def store(mocked: None) -> Iterator[SecretStore]:
    with secretkit.open(f"ssm://?region={REGION}", cache=False) as s:
        yield s


class Calls:
    """The SSM operations a boto3 client makes (botocore's ``before-call`` event)."""

    def __init__(self, client: Any) -> None:
        self.seen: Counter[str] = Counter()
        client.meta.events.register("before-call.ssm.*", self._on_call)

    def _on_call(self, model: Any, **_: Any) -> None:
        self.seen[model.name] += 1


def counted(store: SecretStore) -> tuple[SecretStore, CountingDriver]:
    spy = CountingDriver(store.driver)
    return SecretStore(spy, options=store.options), spy


# -- the package template and the shared AWS layer ---------------------------------------


def test_the_package_has_the_driver_template_on_the_shared_aws_layer() -> None:
    assert codec.BACKEND == "ssm" and callable(codec.encode_value) and callable(codec.decode_value)
    assert issubclass(options.Options, common.ClientOptions)
    assert set(common.CODES.items()) <= set(errors.TABLE.codes.items())
    assert SsmDriver.sdk_loggers == common.SDK_LOGGERS and "Value" in SsmDriver.sdk_value_keys


def test_open_refuses_a_host_and_bad_options(mocked: None) -> None:
    with pytest.raises(ConfigError, match="no host or path"):
        secretkit.open("ssm://somewhere")
    with pytest.raises(ConfigError, match="tier"):
        secretkit.open("ssm://?tier=Premium")
    with pytest.raises(ConfigError, match="parameter_type"):
        secretkit.open("ssm://?parameter_type=Binary")


# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["/prod/app/db-password", "db-password", "Upper_Case.v1", "/a", "/" + "/".join("l" * 15)])
def test_native_names_are_used_unchanged(name: str) -> None:
    assert codec.NAMES.storage_name(name) == name


def test_a_portable_hierarchical_name_is_ssms_hierarchy() -> None:
    assert codec.NAMES.storage_name("prod/db") == "/prod/db"


@pytest.mark.parametrize(
    "name",
    ["awsome", "/aws/service/x", "SSM-param", "/ssm/x", "with space", "/double//slash", "trailing/", "/a/",
     "/" + "/".join("l" * 16), "quote'", "x" * 1000],
)
def test_names_ssm_refuses_are_refused_before_io(store: SecretStore, name: str) -> None:
    spied, spy = counted(store)
    with pytest.raises(InvalidArgumentError) as info:
        spied.put(name, "v")
    assert "SSM parameter names" in str(info.value) and spy.total == 0


# -- values and tiers ------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "limit"), [("", 4096), ("&tier=Advanced", 8192), ("&tier=Intelligent-Tiering", 8192)])
def test_the_tier_limit_holds_exactly_and_one_byte_more_is_refused_before_io(mocked: None, query: str,
                                                                             limit: int) -> None:
    with secretkit.open(f"ssm://?region={REGION}{query}", cache=False) as store:
        store.put("/limits/text", "é" * (limit // 2))
        assert store.get("/limits/text").text == "é" * (limit // 2)
        spied, spy = counted(store)
        for value in ("x" * (limit + 1), {"k": "v" * limit}, b"\xff" * (limit * 3 // 4)):
            with pytest.raises(InvalidArgumentError) as info:
                spied.put("/limits/too-big", value)
            assert f"holds at most {limit}" in str(info.value) and "vvvv" not in str(info.value)
        assert spy.total == 0


def test_an_advanced_value_on_a_standard_parameter_moves_it_to_the_stores_tier(mocked: None) -> None:
    with secretkit.open(f"ssm://?region={REGION}&tier=Advanced", cache=False) as store:
        store.client.put_parameter(Name="/grow", Value="small", Type="SecureString", Tier="Standard")
        store.put("/grow", "x" * 5000)
        assert store.client.get_parameter(Name="/grow", WithDecryption=True)["Parameter"]["Value"] == "x" * 5000
        described = store.client.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": ["/grow"]}])
        assert described["Parameters"][0]["Tier"] == "Advanced"


@pytest.mark.parametrize("value", ["\x00", b"\x00", '{"encoding": "base64", "value": "AA=="}',
                                   {"encoding": "base64", "value": "AA=="}],
                         ids=["nul-text", "nul-bytes", "bytes-form-text", "bytes-form-fields"])
def test_values_that_would_read_back_otherwise_are_refused_before_io(store: SecretStore, value: Any) -> None:
    spied, spy = counted(store)
    with pytest.raises(InvalidArgumentError):
        spied.put("/ambiguous", value)
    assert spy.total == 0


# -- what each call becomes -------------------------------------------------------------------


def test_get_many_asks_ten_names_a_call(store: SecretStore) -> None:
    names = [f"/batch/n{i:02d}" for i in range(25)]
    for name in names:
        store.put(name, name)
    calls = Calls(store.client)
    got = store.get_many([*names, "/batch/missing"])
    assert calls.seen == {"GetParameters": 3}
    assert all(got[n].text == n for n in names)
    assert isinstance(got.errors["/batch/missing"], NotFoundError)


def test_a_path_prefix_is_listed_with_get_parameters_by_path(store: SecretStore) -> None:
    for name in ("/tree/a", "/tree/b/c", "/tree-sibling", "flat"):
        store.put(name, "v")
    calls = Calls(store.client)
    assert list(store.list("/tree/")) == ["/tree/a", "/tree/b/c"]
    assert set(calls.seen) == {"GetParametersByPath"}
    calls.seen.clear()
    assert list(store.list("/tree")) == ["/tree-sibling", "/tree/a", "/tree/b/c"]
    assert list(store.list("tree/")) == ["tree/a", "tree/b/c"]  # the prefix's spelling
    assert set(calls.seen) == {"DescribeParameters", "GetParametersByPath"}


def test_current_version_reads_no_value(store: SecretStore) -> None:
    store.put("/probe", "one")
    store.put("/probe", "two")
    calls = Calls(store.client)
    assert store.driver.current_version("/probe") == "2"
    assert set(calls.seen) == {"DescribeParameters"}


def test_compare_and_set_is_not_supported_and_says_so_before_io(store: SecretStore) -> None:
    store.put("/cas", "one")
    spied, spy = counted(store)
    with pytest.raises(NotSupportedError):
        spied.put("/cas", "two", if_version="1")
    assert spy.total == 0


def test_create_only_is_overwrite_false(store: SecretStore) -> None:
    store.put("/once", "first", create_only=True)
    calls = Calls(store.client)
    with pytest.raises(AlreadyExistsError):
        store.put("/once", "second", create_only=True)
    assert calls.seen == {"PutParameter": 1}
    assert store.get("/once").text == "first"


def test_previous_of_a_first_version_is_not_found(store: SecretStore) -> None:
    store.put("/only", "one")
    with pytest.raises(NotFoundError):
        store.get("/only", stage="previous")
    with pytest.raises(NotFoundError):
        store.get("/only", version="not-a-number")


# -- errors ------------------------------------------------------------------------------------


def _client_error(code: str, message: str = "m") -> bx.ClientError:
    return bx.ClientError({"Error": {"Code": code, "Message": message},
                           "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutParameter")


@pytest.mark.parametrize(("code", "portable"), [
    ("ParameterNotFound", ErrorCode.NOT_FOUND), ("ParameterVersionNotFound", ErrorCode.NOT_FOUND),
    ("ParameterAlreadyExists", ErrorCode.ALREADY_EXISTS), ("TooManyUpdates", ErrorCode.THROTTLED),
    ("ThrottlingException", ErrorCode.THROTTLED), ("HierarchyTypeMismatchException", ErrorCode.INVALID_ARGUMENT),
    ("AccessDeniedException", ErrorCode.PERMISSION_DENIED), ("InternalServerError", ErrorCode.UNAVAILABLE),
    ("ParameterLimitExceeded", ErrorCode.UNKNOWN),
])
def test_error_codes(code: str, portable: ErrorCode) -> None:
    found = errors.classify(_client_error(code))
    assert found is not None and found.code is portable


def test_a_validation_message_quoting_the_value_is_masked() -> None:
    found = errors.classify(_client_error(
        "ValidationException", "1 validation error detected: Value 'hunter2' at 'value' failed to satisfy"))
    assert found is not None and "hunter2" not in found.detail


def test_a_ready_client_is_not_closed(mocked: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    client = boto3.client("ssm", region_name=REGION)
    closed: list[bool] = []
    monkeypatch.setattr(client, "close", lambda: closed.append(True))
    with secretkit.open("ssm://", client=client) as store:
        store.put("/mine", "v")
        assert store.client is client
    assert closed == []
    with secretkit.open(f"ssm://?region={REGION}") as own:
        monkeypatch.setattr(own.client, "close", lambda: closed.append(True))
    assert closed == [True]


def test_an_endpoint_url_password_is_in_no_failure(mocked: None) -> None:
    """botocore's EndpointConnectionError and "Invalid endpoint" quote the endpoint URL."""
    from secretkit.testing.slowdrip import dead_port

    with secretkit.open(f"ssm://?region={REGION}", endpoint_url=f"http://user:hunter2@127.0.0.1:{dead_port()}",
                        connect_timeout=1, retry={"max_attempts": 1}) as store:
        with pytest.raises(secretkit.UnavailableError) as info:
            store.get("/db/password")
    assert "hunter2" not in "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert info.value.name == "/db/password" and info.value.backend == "ssm"
    invalid = "http://user:hunter2@ho st:5/"  # (the traceback shows the calling line: not the literal)
    with pytest.raises(ConfigError, match="endpoint") as bad:
        secretkit.open("ssm://?region=us-east-1", endpoint_url=invalid)
    assert "hunter2" not in "".join(traceback.format_exception(bad.value))


# -- masking botocore's debug logs -------------------------------------------------------------

VALUE = 'S3cr3tPart1 "Quoted2" \\Back3\' ünï5 {"json6": "x"}'
FRAGMENTS = ["S3cr3tPart1", "Quoted2", "Back3", "json6", "ün"]


def _without_logger_filters(*, handlers: bool = False) -> None:
    without_botocore_filters(SsmDriver.sdk_value_keys, handlers=handlers)


def test_botocore_debug_log_shows_ssm_values_without_the_filter(mocked: None, caplog: pytest.LogCaptureFixture) -> None:
    """The hazard is real: without the filter, botocore logs the parameter's value."""
    _without_logger_filters(handlers=True)
    import boto3

    client = boto3.client("ssm", region_name=REGION)
    client.put_parameter(Name="/plain", Value=VALUE, Type="SecureString")
    caplog.set_level(logging.DEBUG, logger="botocore")
    client.get_parameter(Name="/plain", WithDecryption=True)
    try:
        assert any("S3cr3tPart1" in r.getMessage() for r in caplog.records if "Response body" in r.getMessage())
    finally:
        install_redaction(("botocore", "boto3"), handlers=())  # as an open store leaves it


def test_an_open_store_masks_botocore_debug_logs_of_every_call(mocked: None, caplog: pytest.LogCaptureFixture) -> None:
    _without_logger_filters()
    caplog.set_level(logging.DEBUG)
    with secretkit.open(f"ssm://?region={REGION}") as store:  # installs the filter on botocore's loggers
        store.put("/masked/text", VALUE)
        store.put("/masked/text", {"password": VALUE})
        store.put("/masked/bytes", b"\xffS3cr3tPart1")
        assert store.get("/masked/text")["password"] == VALUE
        assert store.get("/masked/text", stage="previous").text == VALUE
        store.get_many(["/masked/text", "/masked/bytes"])
        list(store.list("/masked/"))
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "Response body" in messages and "GetParameterHistory" in messages
    assert [f for f in FRAGMENTS if f in caplog.text] == []
