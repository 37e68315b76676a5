"""The store's options as pydantic models: ``RetryPolicy``, ``CachePolicy``, ``StoreOptions``,
and ``validate``, the one validation path every source of options (URL query, keyword
arguments, TOML file) and every driver's own options model go through.

A leaf module: pydantic and the error types only, no threads, no I/O, nothing of the machinery
that applies the policies (``retry.py``, ``cache.py``), so the driver contract
(``drivers/base.py``) can rest on it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from secretkit.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class RetryPolicy(BaseModel):
    """When and how often a failed backend call is tried again, and how long it may take.

    Only errors whose code is transient (throttled, unavailable, deadline exceeded) are
    retried; writes only where the driver makes them idempotent. The wait before retry *n*
    is uniform in ``[0, min(max_backoff, initial_backoff * 2**n))`` (full jitter).

    ``deadline`` bounds the whole call, every attempt and every wait included: a wait takes at
    most half of the time left before it, and the last attempt is cut off at it.
    ``attempt_timeout`` bounds each attempt (None: each may use what is left of the deadline).
    On remote backends an attempt that runs out of time is abandoned with
    ``DeadlineExceededError`` whatever the SDK is doing (a write so cut off may have landed).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(4, ge=1, description="total attempts, the first included")
    initial_backoff: float = Field(0.2, ge=0, description="seconds; scale of the first wait")
    max_backoff: float = Field(5.0, ge=0, description="seconds; cap of any one wait")
    deadline: float | None = Field(
        30.0, gt=0, description="seconds for the whole call, attempts and waits together; None: no bound"
    )
    attempt_timeout: float | None = Field(
        None, gt=0, description="seconds one attempt may take; None: what is left of the deadline"
    )

    @classmethod
    def none(cls) -> RetryPolicy:
        """One attempt, no retries, and no time limit of the store's own (the SDK's timeouts apply)."""
        return cls(max_attempts=1, deadline=None)


class CachePolicy(BaseModel):
    """How a store caches reads. All times are seconds of a monotonic clock.

    Each entry lives ``ttl`` shortened by a random fraction in ``[0, jitter]`` (so a fleet
    does not refresh in lockstep). After ``refresh_ahead`` of that lifetime, a hit starts one
    background refresh while readers keep the cached value. Once expired, a read fetches
    again; if that fails *transiently*, the old value is served for up to ``max_stale``
    more seconds. ``negative_ttl`` caches "not found" briefly (0 = off). With
    ``check_version``, a refresh first asks the driver for the current version id (cheap
    metadata) and keeps the cached value when it has not changed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="False turns caching off")
    ttl: float = Field(300.0, gt=0, description="seconds an entry is served without asking the backend")
    jitter: float = Field(0.1, ge=0, lt=1, description="each entry's TTL is shortened by a random 0..jitter fraction")
    max_entries: int = Field(1024, ge=1, description="LRU bound on cached entries")
    refresh_ahead: float = Field(
        0.8, gt=0, le=1, description="fraction of the TTL after which a hit refreshes in the background (1 = never)"
    )
    max_stale: float = Field(3600.0, ge=0, description="seconds past expiry an entry may be served on transient errors")
    negative_ttl: float = Field(0.0, ge=0, description="seconds a NotFound is cached (0 = not cached)")
    check_version: bool = Field(True, description="on refresh, compare the current version id before re-reading the value")

    @classmethod
    def off(cls) -> CachePolicy:
        return cls(enabled=False)


def default_policy(remote: bool) -> CachePolicy:
    """The policy used when ``StoreOptions.cache`` is None: on for remote backends (their
    ``Capabilities.remote``), off for local ones, whose users expect trivial read-your-writes."""
    return CachePolicy(enabled=remote)


class StoreOptions(BaseModel):
    """Options of the portable store, the same for every backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    cache: CachePolicy | None = Field(
        None, description="None: the backend's default (on for remote backends such as vault, aws-sm, gcp-sm, k8s; "
        "off for memory, file)"
    )
    pending_prefix: str = Field(
        "secretkit-pending/",
        description="where a rotation keeps its pending value on backends without native stages (Vault KV v2, GCP): "
        "the companion of NAME is PREFIX + NAME, deleted at promotion",
    )
    changes: str | None = Field(
        None, description="where the store hears about changes, PREFIX:TARGET (sns:TOPIC_ARN, sqs:QUEUE, "
        "pubsub:TOPIC_OR_SUBSCRIPTION): events drop cached entries, and the default cache TTL becomes an hour "
        "(docs/caching.md, Push invalidation)"
    )
    lease_grace: float | None = Field(
        None, ge=0, description="seconds a lease replaced by a re-issue stays valid before the store revokes it "
        "(None: a third of its TTL), so that connections opened with it can drain; the store re-issues early enough "
        "for it (renewals ask 2/3 of the TTL plus the grace, so the max TTL shows in time), except when the max TTL "
        "is too short: then what the old lease has left (the engine revokes it at its max TTL)",
    )
    telemetry: bool = Field(
        False, description="report OpenTelemetry metrics and traces (the otel extra; docs/observability.md)"
    )
    telemetry_names: bool = Field(
        False, description="with telemetry: put secret names in span attributes (never in metrics)"
    )
    telemetry_cache_spans: bool = Field(False, description="with telemetry: a span for every cache hit too")


#: How store-level options are spelled (in a URL query, keyword arguments or a config file);
#: named in every "unknown option" error, since a driver's own model does not list them.
STORE_OPTION_SPELLINGS = ("cache", "cache_<field>", "cache.<field>", "retry.<field>", "pending_prefix", "changes",
                          "lease_grace", "telemetry", "telemetry_names", "telemetry_cache_spans")


def validate(model: type[M], data: Mapping[str, Any], *, what: str) -> M:
    """Validate options, turning pydantic's error into a ``ConfigError`` that names each bad option
    (with a "did you mean" for a misspelt one) and lists the known ones."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        known = sorted(model.model_fields)
        problems = "; ".join(_problem(err, known) for err in exc.errors())
        allowed = ", ".join(known)
        if model is not StoreOptions and "retry" not in model.model_fields:
            allowed += "; store options: " + ", ".join(STORE_OPTION_SPELLINGS)
        raise ConfigError(f"invalid {what} options: {problems} (known options: {allowed})") from None


def _problem(err: Any, known: list[str]) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "(options)"
    message = str(err["msg"])
    if err.get("type") == "extra_forbidden":
        import difflib

        close = difflib.get_close_matches(where, [*known, "cache", "cache_ttl", "retry"], n=1)
        message = "unknown option" + (f" (did you mean {close[0]!r}?)" if close else "")
    return f"{where}: {message}"


def backoff(failures: int, initial: float, maximum: float) -> float:
    """Seconds to wait after ``failures`` failures in a row (1 for the first) of a background
    worker: doubling from ``initial`` up to ``maximum``, jittered into its upper half so that a
    fleet does not retry in step. The exponent is capped: an outage of any length never
    overflows the arithmetic."""
    return min(maximum, initial * 2.0 ** min(max(failures - 1, 0), 30)) * random.uniform(0.5, 1.0)
