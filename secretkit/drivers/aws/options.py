"""The options of aws-sm:// (URL query parameters, keyword arguments of ``open``, config keys)."""

from __future__ import annotations

from pydantic import Field

from secretkit.drivers.aws.common import ClientOptions


class Options(ClientOptions):
    """Options of ``aws-sm://``: the AWS client's (``common.ClientOptions``) and Secrets Manager's own."""

    recovery_window_days: int | None = Field(
        None, ge=7, le=30, description="recovery window of delete() without purge; default AWS's 30 days"
    )
    restore_deleted: bool = Field(
        False, description="put() on a secret scheduled for deletion restores it first (else ConflictError)"
    )
