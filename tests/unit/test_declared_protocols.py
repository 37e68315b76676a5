"""The conformance kit holds a driver to the optional Protocols it declares: a misspelt method
fails a test instead of making the store fall back silently."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

import secretkit
from secretkit.drivers.base import BatchReader, Leases, NativeStages, Record, VersionProbe
from secretkit.drivers.memory import MemoryDriver
from secretkit.errors import SecretError
from secretkit.secret import Value, VersionInfo
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.protocols import protocol_problems
from secretkit.testing.spy import CountingDriver


class MisspeltBatch(MemoryDriver):
    """Means to read in batches, but the method's name is wrong."""

    protocols = (VersionProbe, NativeStages, Leases, BatchReader)

    def read_manny(self, names: Sequence[str]) -> dict[str, Record | SecretError]:
        return {name: self.read(name) for name in names}


def run_the_check(driver: Any) -> None:
    StoreConformance().test_declared_optional_protocols_are_implemented(SecretStore(driver))


def test_a_misspelt_read_many_falls_back_silently_in_the_store_but_fails_the_kit() -> None:
    spy = CountingDriver(MisspeltBatch())
    store = SecretStore(spy)
    store.put("a", "1")
    store.put("b", "2")
    assert {name: got.text for name, got in store.get_many(["a", "b"]).items()} == {"a": "1", "b": "2"}
    assert spy.calls["read_many"] == 0 and spy.calls["read"] == 2  # the silent fallback
    with pytest.raises(AssertionError, match="declares BatchReader but has no read_many"):
        run_the_check(MisspeltBatch())


def test_the_correct_spelling_passes() -> None:
    class Batch(MisspeltBatch):
        def read_many(self, names: Sequence[str]) -> dict[str, Record | SecretError]:
            return self.read_manny(names)

    assert protocol_problems(Batch()) == []
    run_the_check(Batch())
    run_the_check(CountingDriver(Batch()))  # a forwarding wrapper passes what it wraps


def test_an_undeclared_implementation_fails_too() -> None:
    class Unsaid(MemoryDriver):  # the store would use read_many: the declaration must say so
        def read_many(self, names: Sequence[str]) -> dict[str, Record | SecretError]:
            return {name: self.read(name) for name in names}

    with pytest.raises(AssertionError, match="implements BatchReader .* without declaring it"):
        run_the_check(Unsaid())


def test_a_parameter_the_store_passes_by_keyword_must_be_there() -> None:
    class Positional(MemoryDriver):
        def write_pending(self, name: str, value: Value, tok: str, adopt: bool) -> VersionInfo:  # type: ignore[override]
            return super().write_pending(name, value, token=tok, adopt=adopt)

    assert protocol_problems(Positional()) == [
        "Positional declares NativeStages, but write_pending() has no parameter 'token'"
    ]


def test_a_declaration_of_something_else_is_refused() -> None:
    class Odd(MemoryDriver):
        protocols = (VersionProbe, NativeStages, Leases, dict)  # type: ignore[assignment]

    assert protocol_problems(Odd()) == [
        "Odd.protocols lists <class 'dict'>, which is not an optional Protocol of secretkit.drivers.base"
    ]


def test_a_driver_without_a_declaration_is_skipped_visibly() -> None:
    class Undeclared(MemoryDriver):
        pass

    del_attr = Undeclared()
    Undeclared.protocols = None  # type: ignore[assignment]
    with pytest.raises(pytest.skip.Exception, match="declares no `protocols`"):
        run_the_check(del_attr)


def test_every_built_in_declares_what_it_implements() -> None:
    with secretkit.open("memory://") as store:
        assert protocol_problems(store.driver) == []
    with secretkit.open(["memory://", "env://"]) as layered:
        assert protocol_problems(layered.driver) == []
