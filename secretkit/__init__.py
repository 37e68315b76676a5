"""secretkit: one way to read, write, cache and rotate secrets, whatever stores them.

``store = secretkit.open(url)`` returns a ``SecretStore``; application code uses only that.
Asyncio code uses ``secretkit.open_async(url)`` (an ``AsyncSecretStore`` over the same store).
Names that pull in pydantic or tenacity load on first use, so ``import secretkit`` stays cheap
and imports no cloud SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from secretkit.errors import (
    AlreadyExistsError,
    RotationError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    DataLossError,
    DeadlineExceededError,
    ErrorCode,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    PermissionDeniedError,
    SecretError,
    ThrottledError,
    UnavailableError,
)
from secretkit.errors import LeaseExpiredError
from secretkit.secret import BatchResult, Kind, Secret, Stage, VersionInfo

if TYPE_CHECKING:
    from secretkit.aio import AsyncSecretStore, open_async
    from secretkit.audit import AuditEvent
    from secretkit.config import default_url
    from secretkit.drivers.base import Capabilities
    from secretkit.entries import CacheStats
    from secretkit.policies import CachePolicy, RetryPolicy, StoreOptions
    from secretkit.redact import RedactingFilter, install_redaction
    from secretkit.registry import open, register, schemes
    from secretkit.store import SecretStore
    from secretkit.leases import Lease

__version__ = "0.1.0"

_LAZY = {
    "open": "secretkit.registry",
    "register": "secretkit.registry",
    "schemes": "secretkit.registry",
    "SecretStore": "secretkit.store",
    "open_async": "secretkit.aio",
    "AsyncSecretStore": "secretkit.aio",
    "StoreOptions": "secretkit.policies",
    "default_url": "secretkit.config",
    "RetryPolicy": "secretkit.policies",
    "CachePolicy": "secretkit.policies",
    "CacheStats": "secretkit.entries",
    "Capabilities": "secretkit.drivers.base",
    "AuditEvent": "secretkit.audit",
    "RedactingFilter": "secretkit.redact",
    "install_redaction": "secretkit.redact",
    "Lease": "secretkit.leases",
}


#: Submodules reachable as attributes after a bare ``import secretkit`` (e.g. in an ``except
#: secretkit.rotation.RotationError`` clause before any rotation ran), loaded on first use.
_SUBMODULES = frozenset({
    "aio", "aio_pool", "aio_watch", "attempts", "audit", "aws_lambda", "background", "cache", "calls", "checks", "cli",
    "config", "deadline", "drivers", "entries", "flight", "generate", "layered", "names", "policies", "redact",
    "references", "registry", "retry", "rotation", "run", "seam", "settings", "stages", "store", "testing", "url",
    "watch", "leases",
})


def __getattr__(attr: str) -> Any:
    import importlib

    module = _LAZY.get(attr)
    if module is None:
        if attr in _SUBMODULES:
            return importlib.import_module(f"secretkit.{attr}")
        raise AttributeError(f"module 'secretkit' has no attribute {attr!r}")
    value = getattr(importlib.import_module(module), attr)
    globals()[attr] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "AlreadyExistsError",
    "AsyncSecretStore",
    "AuditEvent",
    "AuthenticationError",
    "BatchResult",
    "CachePolicy",
    "CacheStats",
    "Capabilities",
    "ConfigError",
    "ConflictError",
    "DataLossError",
    "DeadlineExceededError",
    "ErrorCode",
    "InvalidArgumentError",
    "Kind",
    "Lease",
    "LeaseExpiredError",
    "NotFoundError",
    "NotSupportedError",
    "PermissionDeniedError",
    "RedactingFilter",
    "RetryPolicy",
    "RotationError",
    "Secret",
    "SecretError",
    "SecretStore",
    "Stage",
    "StoreOptions",
    "ThrottledError",
    "UnavailableError",
    "VersionInfo",
    "default_url",
    "install_redaction",
    "open",
    "open_async",
    "register",
    "schemes",
]
