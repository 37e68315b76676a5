"""The ``changes=`` option: ``PREFIX:TARGET``, checked against what the store's driver can hear.

Checked when the store is made, before any I/O: a backend without an event source says so
(polling, the cache TTL and ``watch``'s interval, is its floor), and one with a native watch
(Kubernetes, mounted files) points at ``watch``.
"""

from __future__ import annotations

import importlib
from typing import Any

from secretkit.drivers.base import ChangeEvents, ChangeStream
from secretkit.errors import ConfigError

from secretkit.changes.source import SourceContext, SourceFactory

#: the cache TTL a store hearing changes uses unless its options set one: events are best
#: effort, so a TTL stays as the safety net, but a long one (the point is not to poll)
DEFAULT_TTL = 3600.0


def split(spec: str) -> tuple[str, str]:
    """``"sns:arn:aws:sns:…"`` → ``("sns", "arn:aws:sns:…")``; ``ConfigError`` if malformed."""
    prefix, sep, target = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if not sep or not prefix or not target.strip():
        raise ConfigError(
            f"changes={spec!r} is not PREFIX:TARGET (e.g. sns:arn:aws:sns:REGION:ACCOUNT:TOPIC, sqs:QUEUE_URL, "
            "pubsub:projects/P/topics/T)"
        )
    return prefix, target.strip()


def context(spec: str, driver: Any, *, wait: float = 20.0) -> tuple[SourceFactory, SourceContext]:
    """The factory and context of the source ``spec`` names for ``driver`` (no I/O; the factory
    module is imported here, so a missing SDK fails at open, not in the consumer's thread)."""
    prefix, target = split(spec)
    backend = getattr(driver, "backend", type(driver).__name__)
    if not isinstance(driver, ChangeEvents):
        if isinstance(driver, ChangeStream):
            raise ConfigError(
                f"{backend} has no change event queue for changes={spec!r}: it has a native watch instead; "
                "use store.watch(name, callback), which follows the backend's own change stream"
            )
        raise ConfigError(
            f"{backend} has no change event source, so changes={spec!r} cannot be used there: polling is the "
            "floor (the cache TTL bounds staleness; store.watch(name, callback, interval=...) polls)"
        )
    sources = dict(driver.change_sources)
    if prefix not in sources:
        known = ", ".join(f"{p}:..." for p in sorted(sources)) or "none"
        raise ConfigError(f"{backend} cannot hear changes from {prefix!r} (changes={spec!r}); it knows: {known}")
    module, _, function = sources[prefix].partition(":")
    factory: SourceFactory = getattr(importlib.import_module(module), function)
    return factory, SourceContext(prefix=prefix, target=target, driver=driver, backend=backend, wait=wait)
