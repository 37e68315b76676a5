"""The portable contract on layered stores: the whole conformance and rotation suites, since a
``LayeredStore`` must be usable wherever a ``SecretStore`` is."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest

import secretkit
from secretkit.audit import AuditEvent
from secretkit.layered import LayeredStore
from secretkit.store import SecretStore
from secretkit.testing.conformance import SENTINEL, NameFactory, StoreConformance
from secretkit.testing.rotation import RotationConformance


class TestLayeredMemory(StoreConformance):
    """Two memory layers: writes and history in the first, reads falling through to the second."""

    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        with secretkit.open(["memory://", "memory://"]) as store:
            yield store

    def test_values_never_leak(
        self, store: SecretStore, new_name: NameFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        """As the base test, except that each event names the layer that answered, not "layered"."""
        assert isinstance(store, LayeredStore)
        events: list[AuditEvent] = []
        store.add_audit_hook(events.append)
        name = new_name("leak")
        caplog.set_level(logging.DEBUG)
        try:
            info = store.put(name, SENTINEL)
            got = store.get(name)
            store.put(new_name("leak-fields"), {"password": SENTINEL})
            shown = [repr(got), str(got), repr(info), repr(store), repr(store.get_many([name])), repr(events)]
        finally:
            store.remove_audit_hook(events.append)
        for text in [*shown, caplog.text]:
            assert SENTINEL not in text
        assert store.writable_layer is not None
        assert {e.backend for e in events} == {store.writable_layer.backend}  # it took the writes and answered
        assert any(e.operation == "get" and e.name == name and e.outcome == "ok" for e in events)


class TestLayeredEnvThenFile(TestLayeredMemory):
    """The laptop setup: a (read-only) environment layer over the encrypted file store."""

    @pytest.fixture
    def store(self, file_store: SecretStore) -> Iterator[SecretStore]:
        prefix = f"SKL{uuid.uuid4().hex[:8].upper()}_"
        with secretkit.open([f"env://?prefix={prefix}", file_store]) as store:
            yield store


class TestLayeredRotation(RotationConformance):
    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        with secretkit.open(["env://?prefix=SKLROT_", "memory://"]) as store:
            yield store

    @pytest.mark.parametrize("when", ["before", "after"])
    @pytest.mark.parametrize("step", ["create", "apply", "verify", "promote"])
    def test_crash_at_any_step_then_rerun_converges(
        self, store: SecretStore, new_name: NameFactory, step: str, when: str
    ) -> None:
        if step in ("create", "promote"):
            pytest.skip(
                "the suite injects driver crashes by wrapping store.driver in a plain SecretStore; a layered "
                "store rotates in its writable layer, whose own run of this suite covers those crashes"
            )
        super().test_crash_at_any_step_then_rerun_converges(store, new_name, step, when)
