"""A Secrets Manager rotation Lambda in a few lines: you write apply and verify.

Deploy this file (with ``secretkit[aws]``) as the rotation function of a secret; AWS calls
``lambda_handler`` for createSecret, setSecret, testSecret and finishSecret.

Run it locally to watch one rotation against moto (``pip install 'moto[server]'``)::

    python examples/aws_rotation_lambda.py
"""

from __future__ import annotations

from secretkit import Secret
from secretkit.aws_lambda import RotationHandler

# Stands for the system whose credential is rotated (a database, an API's key registry).
ACCEPTED: set[str] = set()


def set_password(pending: Secret) -> None:
    """setSecret: install the pending credential (ALTER USER ...). Must tolerate repeats."""
    ACCEPTED.add(pending.text)


def try_login(pending: Secret) -> bool:
    """testSecret: does the pending credential work? Raise or return False if not."""
    return pending.text in ACCEPTED


lambda_handler = RotationHandler(apply=set_password, verify=try_login)


def _local_demo() -> None:
    """Plays Secrets Manager's part against moto: opens a rotation and sends the four events."""
    import os
    import uuid

    import moto
    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID

    import secretkit

    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    with moto.mock_aws(), secretkit.open("aws-sm://?region=us-east-1") as store:
        store.put("demo/db-password", "old-password")
        token = str(uuid.uuid4())
        # What RotateSecret does before calling the function: a version labelled AWSPENDING.
        secret = get_backend("secretsmanager")[DEFAULT_ACCOUNT_ID]["us-east-1"].secrets["demo/db-password"]
        secret.rotation_requested = secret.rotation_enabled = True
        secret.versions[token] = {"createdate": 0, "version_id": token, "version_stages": ["AWSPENDING"]}
        arn = store.client.describe_secret(SecretId="demo/db-password")["ARN"]

        handler = RotationHandler(apply=set_password, verify=try_login, store=store)
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
            handler({"SecretId": arn, "ClientRequestToken": token, "Step": step})
            print(f"{step}: current version {store.get('demo/db-password').version[:8]}")
        assert store.get("demo/db-password").version == token
        assert store.get("demo/db-password", stage="previous").text == "old-password"
        print("aws rotation lambda example OK")


if __name__ == "__main__":
    _local_demo()
