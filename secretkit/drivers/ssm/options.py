"""The options of ssm:// (URL query parameters, keyword arguments of ``open``, config keys)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from secretkit.drivers.aws.common import ClientOptions


class Options(ClientOptions):
    """Options of ``ssm://``: the AWS client's (``common.ClientOptions``) and Parameter Store's own."""

    parameter_type: Literal["SecureString", "String", "StringList"] = Field(
        "SecureString", description="type of a parameter put creates (an existing parameter keeps its own)"
    )
    kms_key_id: str | None = Field(
        None, min_length=1, max_length=256, pattern=r"^[a-zA-Z0-9:/_-]+$",
        description="KMS key of a SecureString put creates; default the account's alias/aws/ssm",
    )
    tier: Literal["Standard", "Advanced", "Intelligent-Tiering"] = Field(
        "Standard", description="tier of a parameter put creates, and the value limit checked before I/O "
        "(Standard 4096 bytes, Advanced and Intelligent-Tiering 8192)",
    )
