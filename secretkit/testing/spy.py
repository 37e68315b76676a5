"""A driver wrapper that counts backend calls, to prove validation happens before any I/O."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from secretkit.drivers.base import Driver

_CALLS = ("read", "write", "delete", "list", "versions", "read_many", "current_version")


class CountingDriver:
    """Forwards to ``inner`` and counts each backend call by method name in ``calls``."""

    def __init__(self, inner: Driver) -> None:
        self._inner = inner
        self.calls: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def _before(self, attr: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Runs before each counted call (after counting it); subclasses inject faults here."""

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._inner, attr)
        if attr not in _CALLS:
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._count_lock:
                self.calls[attr] += 1
            self._before(attr, args, kwargs)
            return target(*args, **kwargs)

        return counted
