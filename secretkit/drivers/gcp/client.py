"""The gcp-sm:// options and the Secret Manager client built from them.

Credentials come from google-auth's default chain; when it finds none, opening the store
raises ``AuthenticationError`` saying where credentials are looked for (not google-auth's own
exception). The gRPC channel gets a short reconnect backoff (``GRPC_RECONNECT_OPTIONS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import google.auth
import google.auth.exceptions as auth_exc
import grpc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager_v1 as sm
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)
from pydantic import BaseModel, ConfigDict, Field, field_validator

from secretkit.drivers.base import AuthenticationError

BACKEND = "gcp-sm"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


class GcpOptions(BaseModel):
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


#: gRPC's own reconnect backoff starts at 1 s and grows to 120 s. While it runs the channel fails
#: every call at once with UNAVAILABLE without trying to connect, so the store's retries were
#: spent in milliseconds and a backend that came back stayed unreachable for up to that long.
#: A short, capped backoff leaves the pacing to the store's RetryPolicy. The price: a channel
#: whose backend is down tries to reconnect about three times a second (gRPC's default starts at
#: once a second).
GRPC_RECONNECT_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 300),
)


def grpc_transport(**kwargs: Any) -> SecretManagerServiceGrpcTransport:
    """The client library's gRPC transport, its channel made with ``GRPC_RECONNECT_OPTIONS``."""

    def channel(*args: Any, options: Sequence[tuple[str, Any]] = (), **kw: Any) -> Any:
        return SecretManagerServiceGrpcTransport.create_channel(
            *args, options=[*options, *GRPC_RECONNECT_OPTIONS], **kw
        )

    return SecretManagerServiceGrpcTransport(channel=channel, **kwargs)


def default_credentials() -> tuple[Any, str | None]:
    """google-auth's default credentials and project; ``AuthenticationError`` if there are none."""
    try:
        credentials, project = google.auth.default(scopes=SCOPES)
    except auth_exc.DefaultCredentialsError as exc:
        raise AuthenticationError(
            "no usable Google credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service account key "
            "file, run `gcloud auth application-default login`, or run where the metadata server provides "
            f"them (Workload Identity, GCE, Cloud Run); google-auth said: {exc}",
            backend=BACKEND,
        ) from exc
    return credentials, project


def make_client(opts: GcpOptions) -> tuple[sm.SecretManagerServiceClient, str | None]:
    """A client for ``opts`` and the default project its credentials name (None if insecure)."""
    endpoint = opts.endpoint or (
        f"secretmanager.{opts.location}.rep.googleapis.com" if opts.location else "secretmanager.googleapis.com"
    )
    if opts.insecure and opts.transport == "rest":
        api = endpoint if "://" in endpoint else f"http://{endpoint}"
        anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
        return sm.SecretManagerServiceClient(
            credentials=anonymous, transport="rest", client_options=ClientOptions(api_endpoint=api)
        ), None
    if opts.insecure:
        channel = grpc.insecure_channel(endpoint, options=list(GRPC_RECONNECT_OPTIONS))
        return sm.SecretManagerServiceClient(transport=SecretManagerServiceGrpcTransport(channel=channel)), None
    credentials, default_project = default_credentials()
    client = sm.SecretManagerServiceClient(
        credentials=credentials,
        transport=grpc_transport if opts.transport == "grpc" else opts.transport,
        client_options=ClientOptions(api_endpoint=endpoint),
    )
    return client, default_project
