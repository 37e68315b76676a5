"""The read-only conformance suite: the read side of the portable contract, for stores secretkit
cannot write through (``files://``, ``env://``, a third party's). See ``ReadOnlyStoreConformance``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from typing import ClassVar

import pytest

from secretkit.audit import AuditEvent
from secretkit.drivers.base import VersionProbe
from secretkit.errors import InvalidArgumentError, NotFoundError, NotSupportedError
from secretkit.secret import Secret, Stage
from secretkit.store import SecretStore
from secretkit.testing.common import (
    ALL_OCTETS,
    SENTINEL,
    UNICODE_TEXT,
    EveryStoreChecks,
    NameFactory,
    Seed,
    rejected_without_io,
)
from secretkit.testing.names import AWKWARD_NAMES, UNSTORABLE_NAMES


class ReadOnlyStoreConformance(EveryStoreChecks):
    """The read side of the portable contract, for stores secretkit cannot write through.

    Subclasses provide ``store`` and ``seed`` fixtures (``seed(name, value)`` makes ``value``
    readable as ``name``, replacing any earlier one) and set ``holds_octets = False`` where the
    medium cannot hold arbitrary octets (the environment cannot hold a NUL byte)::

        class TestMyReadOnlyStore(ReadOnlyStoreConformance):
            @pytest.fixture
            def store(self, tmp_path):
                with secretkit.open(f"files://{tmp_path}") as s:
                    yield s

            @pytest.fixture
            def seed(self, tmp_path):
                return lambda name, value: write_file(tmp_path / name, value)

    Names come from ``new_name`` (lower-case letters and digits under a random prefix), which
    every reasonable name mapping keeps as they are.
    """

    holds_octets: ClassVar[bool] = True
    """False where the store's medium cannot hold arbitrary octets (the test is then skipped)."""

    @pytest.fixture
    def seed(self) -> Seed:  # pragma: no cover - subclasses override
        raise NotImplementedError("subclass ReadOnlyStoreConformance and provide a `seed` fixture")

    @pytest.fixture
    def new_name(self, store: SecretStore) -> Iterator[NameFactory]:
        """``new_name("db")`` → a unique name (nothing to purge: the seeding fixture owns the data)."""
        prefix = f"skro{uuid.uuid4().hex[:10]}"
        yield lambda leaf: f"{prefix}/{leaf}"

    # -- values ------------------------------------------------------------------------

    def test_text_reads_back_exactly(self, store: SecretStore, seed: Seed, new_name: NameFactory) -> None:
        name = new_name("text")
        seed(name, UNICODE_TEXT)
        got = store.get(name)
        assert got.text == UNICODE_TEXT
        assert got.bytes == UNICODE_TEXT.encode("utf-8")
        assert got.name == name

    @pytest.mark.parametrize("value", ["s3cr3t\n", "", " padded \r\n\n"], ids=["newline", "empty", "whitespace"])
    def test_nothing_is_stripped(self, store: SecretStore, seed: Seed, new_name: NameFactory, value: str) -> None:
        name = new_name("exact")
        seed(name, value)
        assert store.get(name).text == value
        assert store.get(name).bytes == value.encode()

    def test_octets_read_back_exactly(self, store: SecretStore, seed: Seed, new_name: NameFactory) -> None:
        if not self.holds_octets:
            pytest.skip("the store's medium cannot hold arbitrary octets")
        name = new_name("bytes")
        seed(name, ALL_OCTETS)
        got = store.get(name)
        assert got.bytes == ALL_OCTETS
        with pytest.raises(InvalidArgumentError):
            got.text  # noqa: B018 - not UTF-8: no text view, and the error names no value

    def test_fields_read_back(self, store: SecretStore, seed: Seed, new_name: NameFactory) -> None:
        name = new_name("fields")
        fields = {"user": "app", "password": "p@ss wörd 🔑", "empty": "", "dotted.key": "x", "json": '{"a":1}'}
        seed(name, fields)
        got = store.get(name)
        assert got.fields == fields
        assert got["password"] == fields["password"]

    def test_json_text_stays_exact_and_reads_as_fields(
        self, store: SecretStore, seed: Seed, new_name: NameFactory
    ) -> None:
        name = new_name("json")
        text = '{ "user": "app",  "port": 5432 }\n'
        seed(name, text)
        got = store.get(name)
        assert got.text == text
        assert got.fields == {"user": "app", "port": "5432"}

    # -- reads, versions ---------------------------------------------------------------

    def test_version_is_stable_and_changes_with_the_value(
        self, store: SecretStore, seed: Seed, new_name: NameFactory
    ) -> None:
        name = new_name("ver")
        seed(name, "one")
        first = store.get(name)
        assert isinstance(first.version, str) and first.version
        assert store.get(name).version == first.version
        seed(name, "second value")
        second = store.get(name)
        assert second.text == "second value"
        assert second.version != first.version
        driver = store.driver
        if isinstance(driver, VersionProbe):
            assert driver.current_version(name) == second.version

    def test_no_history_or_stages(self, store: SecretStore, seed: Seed, new_name: NameFactory) -> None:
        if store.capabilities.versions:
            pytest.skip("store keeps history")
        name = new_name("history")
        seed(name, "one")
        with pytest.raises(NotSupportedError):
            store.versions(name)
        with pytest.raises(NotSupportedError):
            store.get(name, version=store.get(name).version)
        with pytest.raises(NotSupportedError):
            store.get(name, stage=Stage.PREVIOUS)

    def test_watch_reports_a_new_value(self, store: SecretStore, seed: Seed, new_name: NameFactory) -> None:
        name = new_name("watched")
        seed(name, "before")
        seen: list[Secret] = []
        changed = threading.Event()

        def callback(secret: Secret) -> None:
            seen.append(secret)
            changed.set()

        with store.watch(name, callback, interval=0.05) as watcher:
            seed(name, "after!")
            if not changed.wait(0.5):
                watcher.poll()  # also drives stores whose watch waits for events
            assert changed.wait(10), "watch did not report the new value"
        assert seen[-1].text == "after!"

    # -- writes are refused ------------------------------------------------------------

    def test_writes_are_refused_and_change_nothing(
        self, store: SecretStore, seed: Seed, new_name: NameFactory
    ) -> None:
        name, absent = new_name("kept"), new_name("absent")
        seed(name, "kept")
        version = store.get(name).version
        for write in (
            lambda: store.put(name, "changed"),
            lambda: store.put(absent, "new"),
            lambda: store.put(absent, "new", create_only=True),
            lambda: store.put(name, "changed", if_version=version),
            lambda: store.delete(name),
            lambda: store.delete(name, purge=True),
            lambda: store.delete(absent, missing_ok=True),
        ):
            with pytest.raises(NotSupportedError) as info:
                write()
            assert info.value.backend == store.backend
        assert store.get(name).text == "kept"
        assert store.get(name).version == version
        assert not store.exists(absent)

    # -- list --------------------------------------------------------------------------

    def test_list_by_prefix_yields_names_that_read_back(
        self, store: SecretStore, seed: Seed, new_name: NameFactory
    ) -> None:
        """``list(prefix)`` yields each secret under ``prefix`` once, spelt with the prefix as given."""
        root = new_name("x").split("/")[0]
        wanted = {f"{root}/alpha": "a", f"{root}/beta2": "b"}
        outside = f"{root}x"
        for name, value in [*wanted.items(), (outside, "o")]:
            seed(name, value)
        assert list(store.list(f"{root}/")) == sorted(wanted)
        assert outside in list(store.list(root))
        for name, value in wanted.items():
            assert store.get(name).text == value
        # list("") may spell a name its own way where names alias (env:// lists A_B as "a_b"),
        # but lists every secret once, under a name that reads it.
        everything = [name for name in store.list("") if name.startswith(root)]
        assert sorted(store.get(name).text for name in everything) == ["a", "b", "o"]

    # -- validation --------------------------------------------------------------------

    @pytest.mark.parametrize("bad", UNSTORABLE_NAMES, ids=range(len(UNSTORABLE_NAMES)))
    def test_names_no_backend_holds_are_rejected_without_io(self, store: SecretStore, bad: object) -> None:
        rejected_without_io(self, store, bad)

    @pytest.mark.parametrize("name", AWKWARD_NAMES)
    def test_awkward_names_read_back_or_are_refused_before_io(
        self, store: SecretStore, seed: Seed, new_name: NameFactory, name: str
    ) -> None:
        """Each name the store can hold reads back and lists as written; any other is refused
        before I/O with the store's rule."""
        unique = f"{new_name('x').split('/')[0]}-{name}"
        try:
            store.names.storage_name(unique)
        except InvalidArgumentError:
            assert store.names.rule in rejected_without_io(self, store, unique)
            return
        seed(unique, "v")
        assert store.get(unique).text == "v"
        assert unique in list(store.list(unique))

    # -- batch, secrecy, audit ---------------------------------------------------------

    def test_get_many_reports_per_name_errors(self, store: SecretStore, seed: Seed, new_name: NameFactory) -> None:
        present = [new_name(f"batch{i}") for i in range(3)]
        for i, name in enumerate(present):
            seed(name, f"value-{i}")
        missing = new_name("batchmissing")
        result = store.get_many([*present, missing, "bad\nname"])
        assert {n: result[n].text for n in present} == {n: f"value-{i}" for i, n in enumerate(present)}
        assert isinstance(result.errors[missing], NotFoundError)
        assert isinstance(result.errors["bad\nname"], InvalidArgumentError)

    def test_values_never_leak(
        self, store: SecretStore, seed: Seed, new_name: NameFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        events: list[AuditEvent] = []
        store.add_audit_hook(events.append)
        name, fields = new_name("leak"), new_name("leakfields")
        caplog.set_level(logging.DEBUG)
        try:
            seed(name, SENTINEL)
            seed(fields, {"password": SENTINEL})
            got = store.get(name)
            shown = [repr(got), str(got), repr(store), repr(store.get_many([name, fields])), repr(got.value),
                     repr(store.get(fields)), repr(events)]
            with pytest.raises(NotSupportedError) as refused:
                store.put(name, SENTINEL + "2")
            shown.append(str(refused.value))
        finally:
            store.remove_audit_hook(events.append)
        for text in [*shown, caplog.text]:
            assert SENTINEL not in text
        assert any(e.operation == "get" and e.name == name and e.outcome == "ok" for e in events)
        assert all(e.backend == store.backend for e in events)
