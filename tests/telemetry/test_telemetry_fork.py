"""Telemetry across ``os.fork()``: a store instrumented before the fork reports in the child,
even when a thread of the parent held the instruments' locks at the moment of the fork (a
collection running then, as a Prometheus scrape may be)."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

import secretkit
from secretkit import telemetry
from tests.reliability.test_fork import in_child
from tests.telemetry.conftest import Otel

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def test_an_instrumented_store_reports_in_a_forked_child_whose_parent_held_the_locks(otel: Otel) -> None:
    store = secretkit.open("memory://", cache=True)
    otel.instrument(store)
    store.put("app/db", "v1")
    store.get("app/db")
    instruments = telemetry.instruments_for(otel.meter_provider)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with instruments._lock, telemetry._registry_lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(5)
    try:
        def child() -> Any:
            store.get("app/db")
            store.put("app/db", "v2")
            assert store.get("app/db").text == "v2"
            return {"hits": otel.value("secretkit.cache.lookups", result="hit"),
                    "puts": otel.value("secretkit.backend.duration", operation="put")}

        seen = in_child(child)
    finally:
        release.set()
        holder.join(5)
    assert seen["hits"] >= 1 and seen["puts"] >= 2
    store.close()
