"""A Secrets Manager rotation Lambda in a few lines: you write apply and verify.

Deploy this file (with ``secretkit[aws]``) as the rotation function of a secret; AWS calls
``lambda_handler`` for createSecret, setSecret, testSecret and finishSecret. The secret is an
RDS-style JSON document; ``field="password"`` rotates the password and keeps every other member
(``"port": 5432`` stays a number), so RDS, Powertools and the console read it as before.

Run it locally to watch one rotation against moto (``pip install 'moto[server]'``)::

    python examples/aws_rotation_lambda.py
"""

from __future__ import annotations

from secretkit import Secret
from secretkit.aws_lambda import RotationHandler

# Stands for the database whose password is rotated.
ACCEPTED: set[str] = set()


def set_password(pending: Secret) -> None:
    """setSecret: install the pending credential (ALTER USER ...). Must tolerate repeats."""
    ACCEPTED.add(pending["password"])


def try_login(pending: Secret) -> bool:
    """testSecret: does the pending credential work? Raise or return False if not."""
    return pending["password"] in ACCEPTED


lambda_handler = RotationHandler(field="password", apply=set_password, verify=try_login)


def _local_demo() -> None:
    """Plays Secrets Manager's part against moto: opens a rotation and sends the four events."""
    import json
    import uuid

    import moto

    import secretkit
    from secretkit.drivers.aws.moto import aws_faithful_moto, begin_rotation, fake_aws_env

    name = "demo/rds-master"
    with fake_aws_env(), aws_faithful_moto(), moto.mock_aws(), secretkit.open("aws-sm://?region=us-east-1") as store:
        # As Terraform or the RDS console would create it:
        store.client.create_secret(Name=name, SecretString=json.dumps(
            {"engine": "postgres", "host": "db.internal", "port": 5432, "username": "app", "password": "old"}))
        token = str(uuid.uuid4())
        arn = begin_rotation(name, token)  # what RotateSecret does before calling the function

        handler = RotationHandler(field="password", apply=set_password, verify=try_login, store=store)
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
            handler({"SecretId": arn, "ClientRequestToken": token, "Step": step})
            print(f"{step}: current version {store.get(name).version[:8]}")
        now = json.loads(store.client.get_secret_value(SecretId=name)["SecretString"])
        assert store.get(name).version == token and now["port"] == 5432 and now["password"] in ACCEPTED
        assert store.get(name, stage="previous")["password"] == "old"
        print("aws rotation lambda example OK")


if __name__ == "__main__":
    _local_demo()
