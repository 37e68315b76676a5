"""A driver wrapper that injects portable errors, latency and pauses per operation, and counts calls.

For testing what the store does around a driver (cache, retry, single-flight) without any
SDK: wrap a memory driver, then script the backend's misbehaviour::

    driver = FaultyDriver(MemoryDriver())
    driver.fail("read", UnavailableError("backend down"), times=2)
    driver.delay("read", 0.02)
    gate = driver.gate("read")       # reads now wait until gate.set()
    held = driver.hold("read", after=True)  # only the next read: its answer waits for held.release()
"""

from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from secretkit.drivers.base import Driver
from secretkit.errors import SecretError
from secretkit.testing.spy import CountingDriver


@dataclass
class Hold:
    """One call held by ``FaultyDriver.hold``: ``entered`` is set once it waits, ``release()``
    lets it go on. Forcing an interleaving this way, rather than sleeping and hoping, makes a
    race test fail every time the race is possible."""

    after: bool
    timeout: float = 30.0
    entered: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.gate.set()

    def wait(self) -> None:
        """Called by the held call: signal ``entered``, then wait for ``release()``."""
        self.entered.set()
        if not self.gate.wait(self.timeout):
            raise TimeoutError("a held driver call was never released")


class FaultyDriver(CountingDriver):
    """Forwards to ``inner``; each counted operation first waits at its gate or hold, sleeps
    its latency and raises its next scripted error, if any (and, where asked, waits or sleeps
    again once the backend has answered). Safe to use from many threads."""

    def __init__(self, inner: Driver, *, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(inner)
        self._sleep = sleep
        self._lock = threading.Lock()
        self._faults: dict[str, list[tuple[SecretError, int | None]]] = {}
        self._latency: dict[str, tuple[float, bool]] = {}
        self._latency_after: dict[str, tuple[float, bool]] = {}
        self._gates: dict[str, threading.Event] = {}
        self._gates_after: dict[str, threading.Event] = {}
        self._holds: dict[str, list[Hold]] = {}
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

    def delay(self, operation: str, seconds: float, *, jitter: bool = False, after: bool = False) -> None:
        """Every call of ``operation`` takes ``seconds`` longer (0 removes the delay): before it
        reaches the backend, or with ``after`` once the backend has answered (the answer travels
        slowly). With ``jitter``, a random 0..``seconds`` longer, so concurrent calls overtake
        each other on the way, as on a real network."""
        (self._latency_after if after else self._latency)[operation] = (seconds, jitter)

    def _wait(self, latency: tuple[float, bool] | None) -> None:
        if latency is not None and latency[0]:
            seconds, jitter = latency
            self._sleep(random.random() * seconds if jitter else seconds)

    def gate(self, operation: str, *, after: bool = False) -> threading.Event:
        """Calls of ``operation`` block until the returned event is set; ``entered[operation]``
        is set when the first such call is waiting. With ``after``, they block once the backend
        has answered (the answer is held back), else before the call reaches it."""
        gate = threading.Event()
        self.entered[operation] = threading.Event()
        (self._gates_after if after else self._gates)[operation] = gate
        return gate

    def hold(self, operation: str, *, after: bool = False, timeout: float = 30.0) -> Hold:
        """Hold only the next call of ``operation`` (holds queue up, one per call, in order)
        until ``release()``: before it reaches the backend, or with ``after`` once the backend
        has answered (the answer is held back). A hold never released fails its call with
        ``TimeoutError`` after ``timeout`` seconds rather than hang a test."""
        held = Hold(after, timeout)
        with self._lock:
            self._holds.setdefault(operation, []).append(held)
        return held

    def _next_hold(self, attr: str) -> Hold | None:
        with self._lock:
            queue = self._holds.get(attr)
            return queue.pop(0) if queue else None

    def __getattr__(self, attr: str) -> Any:
        call = super().__getattr__(attr)
        if not callable(call) or (
            attr not in self._gates_after and attr not in self._latency_after and not self._holds.get(attr)
        ):
            return call

        def held(*args: Any, **kwargs: Any) -> Any:
            hold = self._next_hold(attr)
            if hold is not None and not hold.after:
                hold.wait()
            result = call(*args, **kwargs)
            if attr in self._gates_after:
                self.entered[attr].set()
                self._gates_after[attr].wait()
            if hold is not None and hold.after:
                hold.wait()
            self._wait(self._latency_after.get(attr))
            return result

        return held

    def _before(self, attr: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        gate = self._gates.get(attr)
        if gate is not None:
            self.entered[attr].set()
            gate.wait()
        self._wait(self._latency.get(attr))
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
