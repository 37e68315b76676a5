"""Audit events: one per store operation, to user hooks and the ``secretkit`` logger (DEBUG).

An event names the operation, secret and backend, the outcome and timing; never the value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger("secretkit")


@dataclass(frozen=True)
class AuditEvent:
    """What happened in one store operation.

    ``outcome`` is ``"ok"`` or the portable error code (``"not_found"``, ...); ``cache`` is
    ``"hit"``, ``"miss"``, ``"stale"`` or None when the cache was not involved.
    """

    operation: str
    name: str | None
    backend: str
    outcome: str
    duration: float
    cache: str | None = None
    version: str | None = None
    attempts: int = 1


AuditHook = Callable[[AuditEvent], None]


def emit(event: AuditEvent, hooks: list[AuditHook]) -> None:
    """Send ``event`` to the logger and every hook; a failing hook is logged, never raised."""
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "%s %s on %s: %s in %.1f ms%s",
            event.operation,
            event.name if event.name is not None else "-",
            event.backend,
            event.outcome,
            event.duration * 1000,
            f" (cache {event.cache})" if event.cache else "",
            extra={"secretkit_event": event},
        )
    for hook in hooks:
        try:
            hook(event)
        except Exception:  # a broken metrics hook must not break secret reads
            logger.warning("audit hook %r failed", hook, exc_info=True)
