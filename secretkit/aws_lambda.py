"""A ready AWS Lambda rotation function: AWS's four rotation steps on secretkit's rotation rules.

Secrets Manager rotates a secret by invoking one Lambda function once per step, with the
event ``{"SecretId": <ARN>, "ClientRequestToken": <new version id>, "Step": ...}``. The
user only writes how to install and check a credential::

    # lambda_function.py
    from secretkit.aws_lambda import RotationHandler

    def set_password(pending):          # ALTER USER ... PASSWORD pending.text; must tolerate repeats
        ...

    def try_login(pending):             # raise, or return False, if the pending value does not work
        ...

    lambda_handler = RotationHandler(apply=set_password, verify=try_login)

The steps (``docs/rotation.md`` has the table):

* ``createSecret`` — generate the new value into the version AWS opened for this rotation,
  labelled ``AWSPENDING``, keeping the secret's shape as ``store.rotate`` does: with
  ``field="password"`` only that field of a JSON secret (an RDS-style
  ``{"username": ..., "password": ..., "port": 5432}``) changes and every other member keeps
  its value and JSON type; ``generate(current)`` returns that field's new value (default a
  strong password), or without ``field`` the whole new value. The default generator refuses a
  secret of several fields without ``field`` (``InvalidArgumentError``, nothing written). A
  re-run finds the value already there and keeps it, so a retried rotation never applies two
  different passwords.
* ``setSecret`` — ``apply(pending)``.
* ``testSecret`` — ``verify(pending)``; a failure raises ``RotationError`` and AWSCURRENT is
  untouched (AWS retries the rotation with the same token, which resumes here).
* ``finishSecret`` — move ``AWSCURRENT`` to the new version with a compare-and-set on the
  version that was current (``AWSPREVIOUS`` follows), then drop ``AWSPENDING``.

Every step first checks AWS's preconditions (rotation enabled, the token's version exists and
is labelled ``AWSPENDING``) and does nothing when the token's version is already current, so
every step is idempotent. Secret values never reach logs or error messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from secretkit.drivers.aws import stages
from secretkit.drivers.aws.codec import encode_value, to_record
from secretkit.drivers.base import sdk_client
from secretkit.errors import NotFoundError, RotationError
from secretkit.registry import open as open_store
from secretkit.rotation import Apply, Generate, Verify, new_value, run_user_step
from secretkit.seam import StoreSeam
from secretkit.secret import Secret

logger = logging.getLogger("secretkit.aws_lambda")

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


class RotationHandler:
    """A callable Lambda handler implementing Secrets Manager's rotation event protocol.

    ``store`` is an ``aws-sm://`` store (default: ``secretkit.open("aws-sm://")`` on first
    use, with the Lambda's own region and role). ``field`` names the field to rotate in a JSON
    secret (the others are kept); ``generate(current)`` returns that field's new value, or
    without ``field`` the whole new value (str, bytes or a mapping); default a strong password.
    ``apply(pending)`` installs it in the target system and must tolerate being repeated;
    ``verify(pending)`` raises or returns ``False`` if it does not work.
    """

    def __init__(
        self,
        *,
        apply: Apply | None = None,
        verify: Verify | None = None,
        generate: Generate | None = None,
        field: str | None = None,
        store: StoreSeam | None = None,
    ) -> None:
        self.apply, self.verify, self.generate, self.field = apply, verify, generate, field
        self._store = store

    @property
    def store(self) -> StoreSeam:
        """The aws-sm store the handler works on (opened on first use)."""
        if self._store is None:
            self._store = open_store("aws-sm://")
        if self._store.backend != "aws-sm" or sdk_client(self._store.driver) is None:
            raise RotationError("the Lambda rotation handler needs an aws-sm:// store", step="setup",
                                backend=self._store.backend)
        return self._store

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> None:
        secret_id, token, step = event.get("SecretId"), event.get("ClientRequestToken"), event.get("Step")
        if not isinstance(secret_id, str) or not isinstance(token, str) or step not in STEPS:
            raise RotationError(
                f"not a Secrets Manager rotation event (need SecretId, ClientRequestToken and Step in {STEPS})",
                step=str(step),
            )
        rotation = _Rotation(self.store, secret_id, token, event.get("RotationToken"))
        if not rotation.open(step):
            logger.info("%s: version %s is already current; nothing to do", step, token)
            return
        if step == "createSecret":
            rotation.create(self.generate, self.field)
        elif step == "setSecret":
            run_user_step("apply", self.apply, rotation.pending(), self.store.backend)
        elif step == "testSecret":
            run_user_step("verify", self.verify, rotation.pending(), self.store.backend)
        else:
            rotation.finish()
        logger.info("%s done for version %s of %s", step, token, rotation.name)


class _Rotation:
    """One rotation event's view of the secret: AWS's SecretId (often an ARN) and the token.

    Every AWS call goes through the store's seam (``call_driver``: audited, retried,
    translated into portable errors) on the store's own boto3 client.
    """

    def __init__(self, store: StoreSeam, secret_id: str, token: str, rotation_token: Any) -> None:
        self.store, self.secret_id, self.token = store, secret_id, token
        self.rotation_token = rotation_token if isinstance(rotation_token, str) else None
        self.client: Any = sdk_client(store.driver)
        self.name = secret_id
        self.labels: dict[str, list[str]] = {}

    def _call(self, operation: str, fn: Callable[[], Any]) -> Any:
        return self.store.call_driver(f"rotate.{operation}", self.name, fn)

    def _fail(self, step: str, message: str) -> RotationError:
        return RotationError(message, step=step, name=self.name, backend=self.store.backend)

    def open(self, step: str) -> bool:
        """AWS's preconditions; False when this token's version is already current (step done)."""
        described = self._call("describe", lambda: self.client.describe_secret(SecretId=self.secret_id))
        self.name = str(described.get("Name") or self.secret_id)
        if not described.get("RotationEnabled"):
            raise self._fail(step, "rotation is not enabled for this secret")
        self.labels = {str(v): list(ls) for v, ls in (described.get("VersionIdsToStages") or {}).items()}
        labels = self.labels.get(self.token)
        if labels is None:
            raise self._fail(step, f"version {self.token} is not a version of this secret")
        if "AWSCURRENT" in labels:
            return False
        if "AWSPENDING" not in labels:
            raise self._fail(step, f"version {self.token} is not labelled AWSPENDING")
        return True

    def _read(self, **version: str) -> Secret:
        record = self._call("read", lambda: to_record(self.client.get_secret_value(SecretId=self.secret_id, **version)))
        return Secret(self.name, record.version, record.value, record.created_at, record.stages)

    def pending(self) -> Secret:
        return self._read(VersionId=self.token, VersionStage="AWSPENDING")

    def create(self, generate: Generate | None, field: str | None) -> None:
        current = self._read(VersionStage="AWSCURRENT")
        try:
            self.pending()
            return  # a re-run: keep the value an earlier attempt generated (it may be applied already)
        except NotFoundError:
            pass
        value = self.store.prepare_value(self.name, new_value(current, generate, field, backend=self.store.backend))
        request: dict[str, Any] = {"SecretId": self.secret_id, "ClientRequestToken": self.token,
                                   "VersionStages": ["AWSPENDING"], **encode_value(value)}
        if self.rotation_token is not None:
            request["RotationToken"] = self.rotation_token
        self._call("create", lambda: self.client.put_secret_value(**request))

    def finish(self) -> None:
        current = next((v for v, ls in self.labels.items() if "AWSCURRENT" in ls), None)
        if current is None:
            raise self._fail("finishSecret", "the secret has no AWSCURRENT version")
        self._call("promote", lambda: stages.promote(self.client, self.secret_id, self.token, if_current=current))
        self.store.invalidate(self.name)  # this process's cache must not keep the old value
