"""Test aws-sm:// (and your own boto3 code) against moto the way AWS behaves.

moto (5.x) is the usual AWS Secrets Manager double, but where it accepts what AWS refuses or
moves labels differently, code tested on it can be wrong on AWS in exactly the places that
matter for secrets: deleted secrets, staging labels, concurrent writers. ``aws_faithful_moto``
patches those places to AWS's documented behaviour (each patch's docstring says what and why).
Import this module explicitly (it imports moto; ``pip install 'moto[server]'``)::

    import moto, secretkit
    from secretkit.drivers.aws.moto import aws_faithful_moto, fake_aws_env

    def test_reads_db_password():
        with fake_aws_env(), aws_faithful_moto(), moto.mock_aws():
            with secretkit.open("aws-sm://?region=us-east-1") as store:
                store.put("prod/db", {"username": "app", "password": "pw"})
                assert store.get("prod/db")["password"] == "pw"

Over HTTP (for clients that cannot be patched in-process), ``moto_server()`` runs a
``ThreadedMotoServer`` with the same patches and yields its endpoint URL. ``begin_rotation``
sets up what ``RotateSecret`` does before it invokes a rotation Lambda, so a handler (such as
``secretkit.aws_lambda.RotationHandler``) can be driven step by step without Docker.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import moto.secretsmanager.models as moto_models
from moto.backends import get_backend
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.exceptions import InvalidParameterException, InvalidRequestException

__all__ = ["FAKE_ENV", "REGION", "aws_faithful_moto", "begin_rotation", "fake_aws_env", "moto_server"]

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
#: Real AWS configuration that would otherwise redirect or re-configure a test's clients.
CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER",
           "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "AWS_ENDPOINT_URL_SSM")

_Backend = moto_models.SecretsManagerBackend
_Secret = moto_models.FakeSecret


@contextlib.contextmanager
def fake_aws_env() -> Iterator[None]:
    """Fake credentials and region in ``os.environ``, and any real AWS configuration (profile,
    endpoint, retry settings, config files) hidden, for the duration: nothing in the block can
    reach or be configured by a real account. The environment is restored afterwards."""
    saved = {k: os.environ.get(k) for k in (*FAKE_ENV, *CLEARED)}
    os.environ.update(FAKE_ENV)
    for key in CLEARED:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -- the patches ---------------------------------------------------------------------------

_MARKED = "You can't perform this operation on the secret because it was marked for deletion."


def _put_secret_value(original: Callable[..., Any]) -> Callable[..., Any]:
    def put_secret_value(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> Any:
        """PutSecretValue on a secret scheduled for deletion raises InvalidRequestException, as on
        AWS. moto adds the version to the deleted secret, so code that writes over a deleted secret
        (secretkit's put refuses, or restores it first when asked) would pass on moto and fail on AWS."""
        secret = self.secrets.get(secret_id)
        if secret is not None and getattr(secret, "deleted_date", None):
            raise InvalidRequestException(_MARKED)
        return original(self, secret_id, *args, **kwargs)

    return put_secret_value


def _create_secret(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_secret(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        """CreateSecret over a name scheduled for deletion raises InvalidRequestException, as on
        AWS (moto raises ResourceExistsException): the answer AWS gives must be the one tested."""
        secret = self.secrets.get(name)
        if secret is not None and getattr(secret, "deleted_date", None):
            raise InvalidRequestException(
                "You can't create this secret because a secret with this name is already scheduled for deletion."
            )
        return original(self, name, *args, **kwargs)

    return create_secret


def _update_secret_version_stage(original: Callable[..., Any]) -> Callable[..., Any]:
    def update_secret_version_stage(
        self: Any, secret_id: str, version_stage: str, remove_from_version_id: str, move_to_version_id: str
    ) -> Any:
        """Three differences from AWS, all about who holds a label:

        * moving any label (moto: only AWSCURRENT) onto a version while another version holds it
          is refused unless ``RemoveFromVersionId`` names that version. AWS's rule is what makes
          a label move a compare-and-set: of several writers racing for AWSCURRENT or
          AWSPENDING exactly one wins; on plain moto all of them "win";
        * a label already on the target version is not attached a second time (moto appends it);
        * moving AWSCURRENT makes that version the one reads return: moto keeps a separate
          "default version" that GetSecretValue without a stage and BatchGetSecretValue read,
          and does not move it here, so a value made current this way looks lost.
        """
        secret = self.secrets.get(secret_id)
        if secret is not None and move_to_version_id and not remove_from_version_id:
            holders = [v for v, data in secret.versions.items() if version_stage in data["version_stages"]]
            if move_to_version_id in holders:
                return secret.arn, secret.name
            if holders:
                raise InvalidParameterException(
                    f"The parameter RemoveFromVersionId can't be empty. Staging label {version_stage} is currently "
                    f"attached to version {holders[0]}, so you must explicitly reference that version in "
                    "RemoveFromVersionId."
                )
        result = original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            self.secrets[secret_id].set_default_version_id(move_to_version_id)
        return result

    return update_secret_version_stage


def _reset_default_version(original: Callable[..., Any]) -> Callable[..., Any]:
    def reset_default_version(self: Any, secret_version: dict[str, Any], version_id: str) -> None:
        """When PutSecretValue or UpdateSecret moves AWSCURRENT to a new version, the version it
        leaves gets AWSPREVIOUS and keeps its other labels, as on AWS (moto replaces all of them
        with AWSPREVIOUS): an AWSPENDING or custom label there must stay visible, since code that
        decides whether a rotation is in progress reads it."""
        old = self.versions.get(self.default_version_id) if self.default_version_id else None
        kept = [label for label in old["version_stages"] if label not in ("AWSCURRENT", "AWSPREVIOUS")] if old else []
        original(self, secret_version, version_id)
        if old is not None:
            old["version_stages"] = ["AWSPREVIOUS", *kept]

    return reset_default_version


def _list_secret_version_ids(original: Callable[..., Any]) -> Callable[..., Any]:
    def list_secret_version_ids(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> str:
        """Each version's CreatedDate is when that version was made, as on AWS (and as moto's own
        GetSecretValue reports it); moto reports the time of the listing, so a version's dates
        change from one listing to the next and never say which version is newer. LastAccessedDate
        is left out: moto does not track reads, and AWS omits it for a version never read."""
        listing = json.loads(original(self, secret_id, *args, **kwargs))
        versions = self.secrets[secret_id].versions
        for entry in listing.get("Versions", []):
            entry.pop("LastAccessedDate", None)
            made = versions.get(entry.get("VersionId"), {}).get("createdate")
            if made is None:
                entry.pop("CreatedDate", None)
            else:
                entry["CreatedDate"] = made
        return json.dumps(listing)

    return list_secret_version_ids


_PATCHES: tuple[tuple[type, str, Callable[[Callable[..., Any]], Callable[..., Any]]], ...] = (
    (_Backend, "put_secret_value", _put_secret_value),
    (_Backend, "create_secret", _create_secret),
    (_Backend, "update_secret_version_stage", _update_secret_version_stage),
    (_Secret, "reset_default_version", _reset_default_version),
    (_Backend, "list_secret_version_ids", _list_secret_version_ids),
)


#: How many ``aws_faithful_moto`` uses are open, and what the patches replaced (undone, newest
#: first, when the last use ends). Uses do not always end in the reverse order they began (a
#: session's HTTP server started inside one test's in-process moto outlives it), so no use
#: undoes the patches while another one is still open.
_users = 0
_replaced: list[tuple[type, str, Any]] = []
_users_lock = threading.Lock()


@contextlib.contextmanager
def aws_faithful_moto() -> Iterator[None]:
    """moto's Secrets Manager with AWS's behaviour where moto differs in ways that matter (see
    each patch's docstring: deleted secrets refuse writes; label moves are compare-and-set;
    moving AWSCURRENT moves what reads return; other labels survive a put; version listings
    report when each version was made). Applies to moto in this process: ``moto.mock_aws()``
    and a ``ThreadedMotoServer`` started here; the patches stay while any use is open, whatever
    order the uses end in."""
    global _users
    with _users_lock:
        for owner, attr, make in _PATCHES:
            current = getattr(owner, attr)
            if getattr(current, "_aws_faithful", False):
                continue  # patched already (by a use still open)
            patched = make(current)
            patched.__wrapped__ = current  # type: ignore[attr-defined]
            patched._aws_faithful = True  # type: ignore[attr-defined]
            _replaced.append((owner, attr, current))
            setattr(owner, attr, patched)
        _users += 1
    try:
        yield
    finally:
        with _users_lock:
            _users -= 1
            if _users == 0:
                while _replaced:
                    owner, attr, original = _replaced.pop()
                    setattr(owner, attr, original)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server(*, faithful: bool = True) -> Iterator[str]:
    """A ``ThreadedMotoServer`` on a free loopback port (with ``aws_faithful_moto`` unless
    ``faithful=False``); yields its endpoint URL for ``endpoint_url=``."""
    from moto.server import ThreadedMotoServer  # needs moto[server]'s extra packages

    with contextlib.ExitStack() as stack:
        if faithful:
            stack.enter_context(aws_faithful_moto())
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
        server.start()
        stack.callback(server.stop)
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"


def begin_rotation(name: str, token: str, *, region: str = REGION, account_id: str = DEFAULT_ACCOUNT_ID) -> str:
    """What ``RotateSecret`` does on AWS before it invokes the rotation Lambda's first step:
    enable rotation and open version ``token`` labelled AWSPENDING, with no value yet. moto can
    run a rotation Lambda only in Docker; with this, a test invokes the handler itself with the
    four step events. Returns the secret's ARN (what the events carry as ``SecretId``)."""
    secret: Any = get_backend("secretsmanager")[account_id][region].secrets[name]
    secret.rotation_requested = secret.rotation_enabled = True  # moto reports rotation only once requested
    secret.rotation_lambda_arn = f"arn:aws:lambda:{region}:{account_id}:function:rotate"
    secret.auto_rotate_after_days = 30
    for version in secret.versions.values():
        if "AWSPENDING" in version["version_stages"]:
            version["version_stages"].remove("AWSPENDING")
    secret.versions[token] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
    return str(secret.arn)
