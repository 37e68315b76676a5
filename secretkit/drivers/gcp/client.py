"""The gcp-sm:// options and the Secret Manager client built from them.

Credentials come from google-auth's default chain; when it finds none, opening the store
raises ``AuthenticationError`` saying where credentials are looked for (not google-auth's own
exception). The gRPC channel gets a short reconnect backoff (``GRPC_RECONNECT_OPTIONS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import google.auth
import google.auth.exceptions as auth_exc
import grpc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager_v1 as sm
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

from secretkit.drivers.gcp.codec import BACKEND
from secretkit.drivers.gcp.options import Options
from secretkit.drivers.base import AuthenticationError

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


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


def grpc_transport(cls: Any = SecretManagerServiceGrpcTransport, **kwargs: Any) -> Any:
    """A client library's gRPC transport (Secret Manager's unless ``cls`` names another
    generated one, e.g. Pub/Sub's), its channel made with ``GRPC_RECONNECT_OPTIONS``."""

    def channel(*args: Any, options: Sequence[tuple[str, Any]] = (), **kw: Any) -> Any:
        return cls.create_channel(*args, options=[*options, *GRPC_RECONNECT_OPTIONS], **kw)

    return cls(channel=channel, **kwargs)


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


def make_client(opts: Options) -> tuple[sm.SecretManagerServiceClient, str | None]:
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
