"""An in-memory change source and a driver that hears it, for tests and the fleet benchmark.

``HearingDriver(inner)`` counts ``inner``'s backend calls (``CountingDriver``) and hears changes
from in-memory topics: a store opened over it with ``changes="memory:TOPIC"`` consumes
``topic(TOPIC)``, on which a test ``publish``es ``ChangeEvent``s (or raw message bodies, which the
source delivers as malformed). Every store on a topic hears every event (fan-out), through the
real consumer of ``secretkit.changes``.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Sequence
from typing import Any

from secretkit.changes.source import ChangeEvent, Delivery, SourceContext
from secretkit.drivers.base import ChangeEvents, Driver
from secretkit.testing.spy import CountingDriver

__all__ = ["HearingDriver", "MemorySource", "Topic", "open_memory", "topic"]


class Topic:
    """A fan-out topic: every subscribed source receives every message published after it subscribed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: list[queue.SimpleQueue[ChangeEvent | str]] = []

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    def subscribe(self) -> queue.SimpleQueue[ChangeEvent | str]:
        inbox: queue.SimpleQueue[ChangeEvent | str] = queue.SimpleQueue()
        with self._lock:
            self._queues.append(inbox)
        return inbox

    def unsubscribe(self, inbox: queue.SimpleQueue[ChangeEvent | str]) -> None:
        with self._lock:
            if inbox in self._queues:
                self._queues.remove(inbox)

    def publish(self, message: ChangeEvent | str) -> None:
        with self._lock:
            queues = list(self._queues)
        for inbox in queues:
            inbox.put(message)


_TOPICS: dict[str, Topic] = {}
_TOPICS_LOCK = threading.Lock()


def topic(name: str) -> Topic:
    """The in-memory topic ``name`` (made on first use)."""
    with _TOPICS_LOCK:
        return _TOPICS.setdefault(name, Topic())


class MemorySource:
    """A ``ChangeSource`` over an in-memory ``Topic`` (``changes=memory:TOPIC``)."""

    def __init__(self, context: SourceContext) -> None:
        self.topic = topic(context.target)
        self.description = f"in-memory topic {context.target}"
        self._inbox: queue.SimpleQueue[ChangeEvent | str] | None = None

    def open(self) -> None:
        if self._inbox is None:
            self._inbox = self.topic.subscribe()

    def pull(self, timeout: float) -> Sequence[Delivery]:
        inbox = self._inbox
        if inbox is None:
            raise RuntimeError("the source is closed")
        try:
            messages = [inbox.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(messages) < 10:
            try:
                messages.append(inbox.get_nowait())
            except queue.Empty:
                break
        return [Delivery(None, (m,)) if isinstance(m, ChangeEvent) else Delivery(None, (), "not an event", m)
                for m in messages]

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Nothing to acknowledge: a pulled message is gone from the in-memory queue."""

    def close(self) -> None:
        inbox, self._inbox = self._inbox, None
        if inbox is not None:
            self.topic.unsubscribe(inbox)
            inbox.put("")  # ends a pull waiting on it


def open_memory(context: SourceContext) -> MemorySource:
    return MemorySource(context)


class HearingDriver(CountingDriver):
    """``inner`` with its calls counted, seen as a remote backend (the cache is on by default)
    that hears changes from in-memory topics."""

    change_sources = {"memory": "secretkit.testing.changes:open_memory"}

    def __init__(self, inner: Driver) -> None:
        super().__init__(inner)
        self.capabilities = dataclasses.replace(inner.capabilities, remote=True)
        self.protocols = (*getattr(inner, "protocols", ()), ChangeEvents)

    def event_names(self, secret: str) -> tuple[str, ...]:
        return (secret,)

    def close(self) -> None:
        """The inner driver is shared by the stores of a test: it is not closed with one of them."""

    def __getattr__(self, attr: str) -> Any:
        return super().__getattr__(attr)
