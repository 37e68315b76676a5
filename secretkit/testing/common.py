"""What the conformance suites share: the fixtures, the test data, the helpers, and the checks
that hold for every store, read-only or not.

``StoreConformance`` (``secretkit.testing.conformance``), ``ReadOnlyStoreConformance``
(``secretkit.testing.readonly``), the rotation suite and the reader agreement suite all stand on
``StoreFixtures``; a suite of one's own can too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Union

import pytest

from secretkit.audit import AuditEvent
from secretkit.errors import InvalidArgumentError, NotFoundError, SecretError
from secretkit.layered import LayeredStore
from secretkit.store import SecretStore
from secretkit.testing.protocols import protocol_problems
from secretkit.testing.spy import CountingDriver

NameFactory = Callable[[str], str]
#: ``seed(name, value)``: make ``value`` readable as ``name`` from outside the store (text,
#: octets, or a mapping of fields), replacing any earlier value.
Seed = Callable[[str, Union[str, bytes, Mapping[str, str]]], None]

UNICODE_TEXT = "pässwörd 🔑 ключ 鍵\nsecond line\t\"quoted\" {not json"
ALL_OCTETS = bytes(range(256)) + b"\x00\xff\xfe"
SENTINEL = "SENTINEL-VALUE-must-never-leak-4f1c"


class StoreFixtures:
    """Fixtures shared by the conformance suites: subclasses provide ``store``."""

    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:  # pragma: no cover - subclasses override
        raise NotImplementedError("subclass StoreConformance and provide a `store` fixture")

    @pytest.fixture
    def new_name(self, store: SecretStore) -> Iterator[NameFactory]:
        """``new_name("db")`` → a unique portable name; everything made this way is purged after."""
        prefix = f"sk-conf-{uuid.uuid4().hex[:10]}"
        made: list[str] = []

        def factory(leaf: str) -> str:
            made.append(f"{prefix}/{leaf}")
            return made[-1]

        yield factory
        for name in made:
            try:
                store.delete(name, purge=True, missing_ok=True)
            except SecretError:
                pass

    @staticmethod
    def counting(store: SecretStore) -> tuple[SecretStore, CountingDriver]:
        spy = CountingDriver(store.driver)
        return SecretStore(spy, options=store.options), spy


class EveryStoreChecks(StoreFixtures):
    """Checks that hold for read-only stores too (both suites inherit them)."""

    def test_missing_secret_is_not_found(self, store: SecretStore, new_name: NameFactory) -> None:
        name = new_name("missing")
        with pytest.raises(NotFoundError) as info:
            store.get(name)
        assert info.value.name == name
        assert info.value.backend == store.backend
        assert name in str(info.value)
        assert not store.exists(name)

    def test_declared_optional_protocols_are_implemented(self, store: SecretStore) -> None:
        """The store detects optional capabilities by their methods and falls back without
        them, so a misspelt method (``read_manny``) would pass every other test, slower."""
        if getattr(store.driver, "protocols", None) is None:
            pytest.skip("the driver declares no `protocols`, so a misspelt optional method cannot be caught")
        problems = protocol_problems(store.driver)
        assert not problems, "; ".join(problems)

    def test_audit_reports_failures_with_their_code(self, store: SecretStore, new_name: NameFactory) -> None:
        events: list[AuditEvent] = []
        store.add_audit_hook(events.append)
        try:
            with pytest.raises(NotFoundError):
                store.get(new_name("audit-missing"))
        finally:
            store.remove_audit_hook(events.append)
        assert events[-1].operation == "get"
        assert events[-1].outcome == "not_found"
        assert events[-1].duration >= 0



def writer_backend(store: SecretStore) -> str:
    """The backend that takes ``store``'s writes (a layered store's errors name the layer)."""
    if isinstance(store, LayeredStore):
        layer = store.writable_layer
        assert layer is not None
        return layer.backend
    return store.backend


def rejected_without_io(suite: StoreFixtures, store: SecretStore, bad: object) -> str:
    """Every call with ``bad`` as the name is ``InvalidArgumentError`` and reaches no driver; the first message."""
    counted, spy = suite.counting(store)
    messages = []
    for call in (
        lambda: counted.get(bad),  # type: ignore[arg-type]
        lambda: counted.put(bad, "v"),  # type: ignore[arg-type]
        lambda: counted.delete(bad),  # type: ignore[arg-type]
        lambda: counted.versions(bad),  # type: ignore[arg-type]
        lambda: counted.get_many([bad])[bad],  # type: ignore[list-item,index]
    ):
        with pytest.raises(InvalidArgumentError) as info:
            call()
        messages.append(str(info.value))
    assert spy.total == 0
    return messages[0]
