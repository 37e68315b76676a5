"""AWS Secrets Manager doubles: moto in-process and over HTTP, plus botocore fault hooks.

Everything here runs the real boto3/botocore code path; only the server is moto. Fake
credentials are forced into the environment so that nothing can ever reach real AWS.

moto 5 differs from AWS in ways that matter to the driver (backends.md §2.10); three of them
are patched here to AWS's behaviour so the driver is tested against what AWS does:

* PutSecretValue on a secret scheduled for deletion is refused with InvalidRequestException,
  and so is CreateSecret over such a name (moto answers ResourceExistsException, which the
  driver handles as well);
* UpdateSecretVersionStage moving AWSCURRENT really makes that version current: moto moves the
  label but keeps reading (and later demoting) its old "default version", so GetSecretValue
  and BatchGetSecretValue without a stage return the old value (moto 5.2.1).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

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
    from moto.secretsmanager.exceptions import InvalidRequestException
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
    """Counts the API calls a client really sends (botocore ``before-call`` event)."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self._client = client
        client.meta.events.register("before-call.secrets-manager.*", self._on_call)

    def _on_call(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        self.calls.clear()

    def detach(self) -> None:
        self._client.meta.events.unregister("before-call.secrets-manager.*", self._on_call)


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

    def handler(**_: Any) -> AWSResponse | None:
        seen["injected"] += 1
        if seen["injected"] <= times:
            return error_response(code, status)
        return None

    event = f"before-send.secrets-manager.{operation}"
    client.meta.events.register(event, handler)
    try:
        yield seen
    finally:
        client.meta.events.unregister(event, handler)


@contextlib.contextmanager
def lose_response(client: Any, operation: str, times: int, replace: Callable[[dict[str, Any]], None]) -> Iterator[Counter[str]]:
    """The first ``times`` ``operation`` requests reach the server and take effect, but the
    client never sees the answer: ``replace`` rewrites the received response (``before-parse``)
    or raises, as a dropped connection would."""
    seen: Counter[str] = Counter()

    def handler(response_dict: dict[str, Any], **_: Any) -> None:
        seen["landed"] += 1
        if seen["landed"] <= times:
            replace(response_dict)

    event = f"before-parse.secrets-manager.{operation}"
    client.meta.events.register(event, handler)
    try:
        yield seen
    finally:
        client.meta.events.unregister(event, handler)


def as_server_error(response_dict: dict[str, Any]) -> None:
    """Turn a received response into a 500 InternalServiceError."""
    response_dict["status_code"] = 500
    response_dict["body"] = json.dumps({"__type": "InternalServiceError", "Message": "injected"}).encode()
