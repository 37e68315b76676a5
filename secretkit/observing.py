"""Which observer a store gets (``observer_for``), and a rotation observed (``rotated``).

Apart from ``secretkit.observer`` because choosing imports ``secretkit.telemetry``, which builds
on ``observer``: only a store that asks for telemetry (``telemetry=True``, or opened while
``secretkit.telemetry.instrument()`` is in effect) imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from secretkit import observer as _observer
from secretkit.errors import ConfigError
from secretkit.observer import NO_OBSERVER, Observer

if TYPE_CHECKING:
    from secretkit.drivers.base import Driver
    from secretkit.policies import StoreOptions

__all__ = ["observer_for", "rotated"]

R = TypeVar("R")


def observer_for(driver: Driver, options: StoreOptions) -> Observer:
    """The observer of a store opening over ``driver`` with ``options``: ``NO_OBSERVER`` unless
    telemetry is asked for (the only place that imports ``secretkit.telemetry``)."""
    if _observer.default_factory is not None:
        return _observer.default_factory(driver, options)
    if options.telemetry:
        try:
            from secretkit import telemetry
        except ImportError as exc:
            raise ConfigError(
                f"telemetry=True needs the {getattr(exc, 'name', None) or 'opentelemetry-api'!r} package: "
                "pip install 'secretkit[otel]'"
            ) from exc
        return telemetry.StoreTelemetry(driver, options)
    return NO_OBSERVER


def rotated(observer: Observer, run: Callable[[], R]) -> R:
    """Run a rotation (``run``) and tell ``observer`` how it ended."""
    if not observer.on:
        return run()
    try:
        result = run()
    except Exception as exc:
        observer.rotation("failed", getattr(exc, "step", None) or getattr(getattr(exc, "code", None), "value", None)
                          or type(exc).__name__)
        raise
    observer.rotation("skipped" if result is None else "already_done" if getattr(result, "already_done", False) else "ok")
    return result
