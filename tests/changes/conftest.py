"""Every store a change-event test opens is closed by it: no consumer thread outlives its test
(one left behind keeps polling a queue after moto is gone, against the real AWS endpoint)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest


def _consumers() -> list[threading.Thread]:
    """Consumer threads not told to stop. (One that was told may still finish a long poll: an
    SQS receive cannot be cut short, and close() does not wait for it.)"""
    running = []
    for thread in threading.enumerate():
        consumer = getattr(getattr(thread, "_target", None), "__self__", None)
        if thread.name == "secretkit-changes" and thread.is_alive() and not consumer._stop.is_set():
            running.append(thread)
    return running


@pytest.fixture(autouse=True)
def no_consumer_left_behind() -> Iterator[None]:
    before = set(_consumers())
    yield
    left = set(_consumers()) - before
    assert not left, f"{len(left)} change consumer thread(s) still running after the test: a store was not closed"
