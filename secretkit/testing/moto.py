"""Alias of ``secretkit.drivers.aws.moto``, where the moto fidelity patches live beside the AWS
driver they serve. Kept because docs/testing.md listed it under ``secretkit.testing``; new code
imports ``secretkit.drivers.aws.moto``."""

from secretkit.drivers.aws.moto import (
    FAKE_ENV,
    REGION,
    aws_faithful_moto,
    begin_rotation,
    fake_aws_env,
    moto_server,
)

__all__ = ["FAKE_ENV", "REGION", "aws_faithful_moto", "begin_rotation", "fake_aws_env", "moto_server"]
