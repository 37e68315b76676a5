"""A driver wrapper that injects portable errors, latency and pauses per operation, and counts calls.

For testing what the store does around a driver (cache, retry, single-flight) without any
SDK: wrap a memory driver, then script the backend's misbehaviour::

    driver = FaultyDriver(MemoryDriver())
    driver.fail("read", UnavailableError("backend down"), times=2)
    driver.delay("read", 0.02)
    gate = driver.gate("read")       # reads now wait until gate.set()
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

from secretkit.drivers.base import Driver
from secretkit.errors import SecretError
from secretkit.testing.spy import CountingDriver


class FaultyDriver(CountingDriver):
    """Forwards to ``inner``; each counted operation first waits at its gate, sleeps its
    latency and raises its next scripted error, if any. Safe to use from many threads."""

    def __init__(self, inner: Driver, *, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(inner)
        self._sleep = sleep
        self._lock = threading.Lock()
        self._faults: dict[str, list[tuple[SecretError, int | None]]] = {}
        self._latency: dict[str, float] = {}
        self._gates: dict[str, threading.Event] = {}
        self._gates_after: dict[str, threading.Event] = {}
        self.entered: dict[str, threading.Event] = {}

    def fail(self, operation: str, error: SecretError, *, times: int | None = 1) -> None:
        """The next ``times`` calls of ``operation`` raise a copy of ``error`` (None: every call until ``heal``)."""
        with self._lock:
            self._faults.setdefault(operation, []).append((error, times))

    def heal(self, operation: str | None = None) -> None:
        """Stop injecting errors (for one operation, or all)."""
        with self._lock:
            if operation is None:
                self._faults.clear()
            else:
                self._faults.pop(operation, None)

    def delay(self, operation: str, seconds: float) -> None:
        """Every call of ``operation`` takes ``seconds`` longer (0 removes the delay)."""
        self._latency[operation] = seconds

    def gate(self, operation: str, *, after: bool = False) -> threading.Event:
        """Calls of ``operation`` block until the returned event is set; ``entered[operation]``
        is set when the first such call is waiting. With ``after``, they block once the backend
        has answered (the answer is held back), else before the call reaches it."""
        gate = threading.Event()
        self.entered[operation] = threading.Event()
        (self._gates_after if after else self._gates)[operation] = gate
        return gate

    def __getattr__(self, attr: str) -> Any:
        call = super().__getattr__(attr)
        if attr not in self._gates_after or not callable(call):
            return call

        def held(*args: Any, **kwargs: Any) -> Any:
            result = call(*args, **kwargs)
            self.entered[attr].set()
            self._gates_after[attr].wait()
            return result

        return held

    def _before(self, attr: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        gate = self._gates.get(attr)
        if gate is not None:
            self.entered[attr].set()
            gate.wait()
        latency = self._latency.get(attr, 0.0)
        if latency:
            self._sleep(latency)
        error = self._next_fault(attr)
        if error is not None:
            raise error

    def _next_fault(self, attr: str) -> SecretError | None:
        with self._lock:
            queue = self._faults.get(attr)
            if not queue:
                return None
            error, times = queue[0]
            if times is not None:
                if times <= 1:
                    queue.pop(0)
                else:
                    queue[0] = (error, times - 1)
        fresh = copy.copy(error)
        fresh.__traceback__ = None
        return fresh
