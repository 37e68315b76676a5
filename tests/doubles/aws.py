"""AWS Secrets Manager doubles: moto in-process and over HTTP, plus botocore fault hooks.

Everything here runs the real boto3/botocore code path; only the server is moto. Fake
credentials are forced into the environment so that nothing can ever reach real AWS.

moto 5 differs from AWS in ways that matter to the driver (backends.md §2.10); four of them
are patched here to AWS's behaviour so the driver is tested against what AWS does:

* PutSecretValue on a secret scheduled for deletion is refused with InvalidRequestException,
  and so is CreateSecret over such a name (moto answers ResourceExistsException, which the
  driver handles as well);
* UpdateSecretVersionStage refuses to take any label (not only AWSCURRENT) from a version not
  named in RemoveFromVersionId, and never attaches a label twice to one version;
* UpdateSecretVersionStage moving AWSCURRENT really makes that version current: moto moves the
  label but keeps reading (and later demoting) its old "default version", so GetSecretValue
  and BatchGetSecretValue without a stage return the old value (moto 5.2.1).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session

from secretkit.drivers.aws import AwsOptions, client_config

REGION = "us-east-1"
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS")


@contextlib.contextmanager
def fake_aws_env() -> Iterator[None]:
    """Fake credentials and region; any real AWS configuration is hidden for the duration."""
    saved = {k: os.environ.get(k) for k in (*FAKE_ENV, *_CLEARED)}
    os.environ.update(FAKE_ENV)
    for key in _CLEARED:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def aws_faithful_moto() -> Iterator[None]:
    """Patch moto's Secrets Manager backend where it accepts what AWS refuses (see module doc)."""
    from moto.secretsmanager.exceptions import InvalidParameterException, InvalidRequestException
    from moto.secretsmanager.models import SecretsManagerBackend

    original_put = SecretsManagerBackend.put_secret_value
    original_create = SecretsManagerBackend.create_secret

    def put_secret_value(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> Any:
        secret = self.secrets.get(secret_id)
        if secret is not None and getattr(secret, "deleted_date", None):
            raise InvalidRequestException(
                "You can't perform this operation on the secret because it was marked for deletion."
            )
        return original_put(self, secret_id, *args, **kwargs)

    def create_secret(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        secret = self.secrets.get(name)
        if secret is not None and getattr(secret, "deleted_date", None):
            raise InvalidRequestException(
                "You can't create this secret because a secret with this name is already scheduled for deletion."
            )
        return original_create(self, name, *args, **kwargs)

    def update_secret_version_stage(
        self: Any, secret_id: str, version_stage: str, remove_from_version_id: str, move_to_version_id: str
    ) -> Any:
        secret = self.secrets.get(secret_id)
        if secret is not None and move_to_version_id and not remove_from_version_id:
            holders = [v for v, data in secret.versions.items() if version_stage in data["version_stages"]]
            if move_to_version_id in holders:
                return secret.arn, secret.name  # already there: AWS does not attach a label twice
            if holders:
                raise InvalidParameterException(
                    f"The parameter RemoveFromVersionId can't be empty. Staging label {version_stage} is currently "
                    f"attached to version {holders[0]}, so you must explicitly reference that version in "
                    "RemoveFromVersionId."
                )
        result = original_stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            self.secrets[secret_id].set_default_version_id(move_to_version_id)
        return result

    original_stage = SecretsManagerBackend.update_secret_version_stage
    patched = {
        "put_secret_value": put_secret_value,
        "create_secret": create_secret,
        "update_secret_version_stage": update_secret_version_stage,
    }
    originals = {attr: getattr(SecretsManagerBackend, attr) for attr in patched}
    for attr, fn in patched.items():
        setattr(SecretsManagerBackend, attr, fn)
    try:
        yield
    finally:
        for attr, fn in originals.items():
            setattr(SecretsManagerBackend, attr, fn)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_http_server() -> Iterator[str]:
    """A ThreadedMotoServer on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def make_client(endpoint_url: str | None = None) -> Any:
    """A boto3 client configured exactly as the driver configures its own."""
    return boto3.session.Session(region_name=REGION).client(
        "secretsmanager", endpoint_url=endpoint_url, config=client_config(AwsOptions())
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
            stack.enter_context(aws_faithful_moto())
            _server_state["url"] = stack.enter_context(moto_http_server())
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
    """What RotateSecret does on AWS before it invokes the rotation Lambda's first step.

    AWS enables rotation and opens a version ``token`` labelled AWSPENDING with no value yet
    (backends.md §2.7). moto can only run a rotation Lambda in Docker, so the tests invoke the
    handler themselves and this sets up the server state AWS would have at that point.
    """
    import time

    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID

    secret = get_backend("secretsmanager")[DEFAULT_ACCOUNT_ID][REGION].secrets[name]
    secret.rotation_requested = secret.rotation_enabled = True  # moto reports rotation only once requested
    secret.rotation_lambda_arn = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:rotate"
    secret.auto_rotate_after_days = 30
    for version in secret.versions.values():
        if "AWSPENDING" in version["version_stages"]:
            version["version_stages"].remove("AWSPENDING")
    secret.versions[token] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
