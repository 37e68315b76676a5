"""The options of gcp-sm:// (URL query parameters, keyword arguments of ``open``, config keys)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Options(BaseModel):
    """Options of the gcp-sm:// store (URL query, config file or keyword arguments)."""

    model_config = ConfigDict(extra="forbid")

    location: str | None = Field(None, description="regional secrets in this location (regional endpoint)")
    replication: str | list[str] = Field(
        "automatic", description="'automatic', or user-managed replica locations (list or comma-separated)"
    )
    endpoint: str | None = Field(None, description="API endpoint host[:port] (default: Google's, regional if location)")
    insecure: bool = Field(False, description="plaintext and anonymous credentials; only for local test servers")
    transport: Literal["grpc", "rest"] = "grpc"
    timeout: float = Field(
        30.0, gt=0,
        description="seconds per API call (gRPC: the call's deadline; REST: per socket read); also capped by the "
        "store's retry policy",
    )

    @field_validator("replication")
    @classmethod
    def _replication(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            if value.strip() == "automatic":
                return "automatic"
            value = value.split(",")
        locations = [v.strip() for v in value if v.strip()]
        if not locations:
            raise ValueError("give 'automatic' or at least one replica location")
        return locations
