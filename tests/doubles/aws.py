"""AWS doubles (Secrets Manager, SSM Parameter Store): moto in-process and over HTTP, botocore
fault hooks, and what the AWS tests share around them (raw clients, Powertools, log filters).

Everything here runs the real boto3/botocore code path; only the server is moto. Fake
credentials are forced into the environment so that nothing can ever reach real AWS. moto is
patched to AWS's behaviour where it differs in ways that matter (``aws_faithful_moto``, from
the public ``secretkit.drivers.aws.moto``, which says what each patch fixes and why).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import threading
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session

from secretkit.drivers.aws.common import ClientOptions, client_config
from secretkit.drivers.aws.moto import REGION, aws_faithful_moto, begin_rotation, fake_aws_env, moto_server
from secretkit.redact import install_redaction

__all__ = [
    "REGION",
    "CallCounter",
    "aws_faithful_moto",
    "aws_http_endpoint",
    "begin_aws_rotation",
    "enable_native_rotation",
    "fake_aws_env",
    "fail_before_send",
    "free_port",
    "lose_response",
    "make_client",
    "powertools_parameters",
    "read_timeout",
    "server_error",
    "without_botocore_filters",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_client(endpoint_url: str | None = None, service: str = "secretsmanager") -> Any:
    """A boto3 client of ``service`` configured exactly as the drivers configure their own."""
    return boto3.session.Session(region_name=REGION).client(
        service, endpoint_url=endpoint_url, config=client_config(ClientOptions())
    )


class CallCounter:
    """Counts a client's API calls (``before-call``) and HTTP attempts (``before-send``).

    With botocore's retries pinned to one attempt the two are equal; a difference would
    mean botocore retried on its own.
    """

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.sends: Counter[str] = Counter()
        self._client = client
        client.meta.events.register("before-call.secrets-manager.*", self._on_call)
        client.meta.events.register("before-send.secrets-manager.*", self._on_send)

    def _on_call(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def _on_send(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else str(target)
        self.sends[target.rsplit(".", 1)[-1]] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        self.calls.clear()
        self.sends.clear()

    def detach(self) -> None:
        self._client.meta.events.unregister("before-call.secrets-manager.*", self._on_call)
        self._client.meta.events.unregister("before-send.secrets-manager.*", self._on_send)


_server_lock = threading.Lock()
_server_state: dict[str, Any] = {"users": 0}


def acquire_http_endpoint() -> str:
    """The endpoint of one moto server shared by every test module of the session.

    The first caller starts it (with the AWS-faithful patches); ``release_http_endpoint``
    by the last user stops it.
    """
    with _server_lock:
        if _server_state["users"] == 0:
            stack = contextlib.ExitStack()
            _server_state["url"] = stack.enter_context(moto_server())
            _server_state["stack"] = stack
        _server_state["users"] += 1
        return str(_server_state["url"])


def release_http_endpoint() -> None:
    with _server_lock:
        _server_state["users"] -= 1
        if _server_state["users"] == 0:
            _server_state.pop("stack").close()


@pytest.fixture(scope="session")
def aws_http_endpoint() -> Iterator[str]:
    """Session-scoped moto server on a loopback port (shared across modules)."""
    with fake_aws_env():
        url = acquire_http_endpoint()
    try:
        yield url
    finally:
        release_http_endpoint()


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


#: ``@pytest.fixture(params=BACKENDS)``: every AWS test runs on moto in-process and over HTTP.
BACKENDS = ["in-process", "http"]


@contextlib.contextmanager
def moto_backend(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The moto backend ``request.param`` names (see ``BACKENDS``), under fake credentials:
    yields None in-process (patched to AWS's behaviour), or the shared HTTP server's endpoint."""
    if request.param == "in-process":
        import moto

        with fake_aws_env(), aws_faithful_moto(), moto.mock_aws():
            yield None
    else:
        endpoint = request.getfixturevalue("aws_http_endpoint")
        with fake_aws_env():
            yield endpoint


def error_response(code: str, status: int, message: str = "injected") -> AWSResponse:
    """An awsJson1_1 error response as Secrets Manager sends it."""
    body = json.dumps({"__type": code, "Message": message}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "injected"}
    return AWSResponse("https://injected.invalid/", status, headers, _Raw(body))


@contextlib.contextmanager
def fail_before_send(client: Any, operation: str, code: str, status: int, times: int) -> Iterator[Counter[str]]:
    """The first ``times`` ``operation`` requests never reach the server; they get this error."""
    seen: Counter[str] = Counter()

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        seen["injected"] += 1
        if seen["injected"] <= times:
            # botocore still calls the later before-send handlers (moto's in-process mock is
            # one); pointing the request elsewhere makes sure it never reaches moto.
            request.url = "https://injected.invalid/"
            return error_response(code, status)
        return None

    event = f"before-send.secrets-manager.{operation}"
    client.meta.events.register(event, handler)
    try:
        yield seen
    finally:
        client.meta.events.unregister(event, handler)


def deliver(request: Any) -> None:
    """Let ``request`` reach the server (moto in-process or over HTTP); drop the answer."""
    from moto.core.models import botocore_stubber

    if botocore_stubber.enabled and botocore_stubber.process_request(request) is not None:
        return
    URLLib3Session().send(request)


@contextlib.contextmanager
def lose_response(client: Any, operation: str, times: int, fault: Callable[[], AWSResponse]) -> Iterator[Counter[str]]:
    """The first ``times`` ``operation`` requests reach the server and take effect, but the
    client gets ``fault()`` instead of the answer (an error response, or an exception such
    as a read timeout, as a dropped connection would give)."""
    seen: Counter[str] = Counter()

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        seen["sent"] += 1
        if seen["sent"] > times:
            return None
        deliver(request)
        seen["landed"] += 1
        request.url = "https://injected.invalid/"  # moto's own before-send handler must not run it again
        return fault()

    event = f"before-send.secrets-manager.{operation}"
    client.meta.events.register(event, handler)
    try:
        yield seen
    finally:
        client.meta.events.unregister(event, handler)


def server_error() -> AWSResponse:
    """A 500 InternalServiceError, as Secrets Manager sends it."""
    return error_response("InternalServiceError", 500)


def read_timeout() -> AWSResponse:
    """What botocore raises when the response never arrives."""
    raise ReadTimeoutError(endpoint_url="http://lost.invalid/")


def begin_aws_rotation(name: str, token: str) -> None:
    """What RotateSecret does on AWS before it invokes the rotation Lambda's first step (a
    version ``token`` labelled AWSPENDING, no value yet); see ``secretkit.drivers.aws.moto``."""
    begin_rotation(name, token)


def enable_native_rotation(endpoint_url: str | None, name: str) -> str:
    """Turn on AWS's own rotation of ``name`` with a rotation Lambda, through moto's real API
    (IAM CreateRole, Lambda CreateFunction, Secrets Manager RotateSecret); returns the Lambda's ARN.

    moto runs a rotation Lambda's code only in Docker; its Lambda backend without Docker
    (``use_docker: False``, moto's own setting, which also serves the in-process HTTP server)
    keeps the function and answers invocations without running it. ``RotateImmediately=False``
    invokes only ``testSecret``, so the value stays as it was; the AWSPENDING version RotateSecret
    opened for that test is then closed the way AWS's docs say to close an unfinished rotation
    (UpdateSecretVersionStage ``RemoveFromVersionId``), leaving rotation enabled and no rotation
    in progress.
    """
    from moto.core.config import default_user_config

    session = boto3.session.Session(region_name=REGION)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("rotate.py", "def handler(event, context):\n    return None\n")
    function = "rotate-" + "".join(c if c.isalnum() else "-" for c in name)[:50]
    with mock.patch.dict(default_user_config, {"lambda": {"use_docker": False}}):
        role = session.client("iam", endpoint_url=endpoint_url).create_role(
            RoleName=function, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        arn: str = session.client("lambda", endpoint_url=endpoint_url).create_function(
            FunctionName=function, Runtime="python3.12", Role=role, Handler="rotate.handler",
            Code={"ZipFile": buffer.getvalue()},
        )["FunctionArn"]
        client = make_client(endpoint_url)
        client.rotate_secret(SecretId=name, RotationLambdaARN=arn, RotationRules={"AutomaticallyAfterDays": 30},
                             RotateImmediately=False)
    labels = client.describe_secret(SecretId=name)["VersionIdsToStages"]
    for version, stages in labels.items():
        if "AWSPENDING" in stages and "AWSCURRENT" not in stages:
            client.update_secret_version_stage(SecretId=name, VersionStage="AWSPENDING", RemoveFromVersionId=version)
    return arn


@contextlib.contextmanager
def powertools_parameters(endpoint: str | None, endpoint_variable: str,
                          monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """AWS Lambda Powertools' ``parameters`` module, reaching moto: in-process as it is, over
    HTTP through ``endpoint_variable`` (boto3's ``AWS_ENDPOINT_URL_<SERVICE>``)."""
    parameters = pytest.importorskip("aws_lambda_powertools.utilities.parameters")
    if endpoint:
        monkeypatch.setenv(endpoint_variable, endpoint)
    parameters.clear_caches()  # its default provider keeps a client and cached values
    yield parameters
    parameters.clear_caches()


def without_botocore_filters(value_keys: Iterable[str], *, handlers: bool = False) -> None:
    """Take the shared ``RedactingFilter`` (masking ``value_keys`` too) off botocore's and boto3's
    loggers, and with ``handlers`` off the root handlers (an earlier store put it on those of its
    time, pytest's own among them): what botocore logs is then seen unfiltered."""
    flt = install_redaction((), handlers=(), value_keys=value_keys)
    for name in ["botocore", "boto3", *logging.root.manager.loggerDict]:
        if name.split(".")[0] in ("botocore", "boto3"):
            logging.getLogger(name).removeFilter(flt)
    if handlers:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(flt)
