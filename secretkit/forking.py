"""What ``os.fork()`` leaves in the child, and the hooks that reset it.

gunicorn ``--preload``, Celery's prefork pool, uWSGI and ``multiprocessing`` (fork start
method) open stores in a parent and fork workers. Only the forking thread exists in the child;
everything else is a copy of the parent's memory at that instant: thread pools that count the
parent's threads as idle, loads in flight that those threads will never settle, locks they
held and will never release. Whatever owns such state registers a reset here, run in the child
right after the fork (``os.register_at_fork(after_in_child=...)``), so the child's first call
works as in a fresh process. Data that stays true (cached secrets, counters) is kept.

Owners are held by weak reference (a store that is dropped is not kept alive by its hook, and
its entry goes with it); one process-wide hook runs the resets of the module-level state
first (``reset_in_child``), then those of each live owner in the order they registered, so an
owner's parts (its cache, its worker pool) are reset before a watcher that uses them restarts.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["at_fork", "reset_in_child"]

T = TypeVar("T")

_log = logging.getLogger("secretkit")

#: Resets of module-level state (process-wide worker pools, module locks), in registration order.
_module_resets: list[Callable[[], None]] = []
#: id(owner) -> (weak reference to the owner, its reset), in registration order.
_owners: dict[int, tuple[weakref.ref[Any], Callable[[Any], None]]] = {}


def reset_in_child(reset: Callable[[], None]) -> Callable[[], None]:
    """Call ``reset()`` in every child forked from now on (for module-level state); returns it,
    so it can decorate the function."""
    _module_resets.append(reset)
    return reset


def at_fork(owner: T, reset: Callable[[T], None]) -> None:
    """Call ``reset(owner)`` in every child forked while ``owner`` is alive. ``owner`` is held
    weakly; ``reset`` must not refer to it (pass an unbound method: ``Cache._after_fork``)."""
    key = id(owner)

    def forget(ref: weakref.ref[Any]) -> None:
        # runs when the owner is freed, before its id can be reused by another object
        entry = _owners.get(key)
        if entry is not None and entry[0] is ref:
            del _owners[key]

    _owners[key] = (weakref.ref(owner, forget), reset)


def registered() -> int:
    """How many live owners have a reset registered (for tests: dropped stores leave none)."""
    return sum(1 for ref, _ in list(_owners.values()) if ref() is not None)


def _after_fork_in_child() -> None:
    for reset in list(_module_resets):
        _run(reset)
    for ref, owner_reset in list(_owners.values()):
        owner = ref()
        if owner is not None:
            _run(owner_reset, owner)


def _run(reset: Callable[..., None], *args: Any) -> None:
    try:
        reset(*args)
    except Exception:  # noqa: BLE001 - one failed reset must not leave the others undone
        _log.warning("secretkit: a reset after fork failed", exc_info=True)


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere there is no fork to recover from
    os.register_at_fork(after_in_child=_after_fork_in_child)
