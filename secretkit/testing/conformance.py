"""The conformance suite: the portable contract, run against every store.

Subclass ``StoreConformance`` in a test module and give it a ``store`` fixture::

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store(self):
            with secretkit.open("my-scheme://...") as s:
                yield s

Every test writes under a fresh random prefix and purges what it wrote, so the suite can
run against a real, shared backend. What a store cannot do (per ``store.capabilities``) is
skipped with a reason, never silently passed.

Read-only stores (``files://``, ``env://``, a third party's) subclass ``ReadOnlyStoreConformance``
instead and give it a ``seed`` fixture too: ``seed(name, value)`` puts a value where the store
reads it (writes a file, sets a variable), the way the system that feeds the store would.
That suite lives in ``secretkit.testing.readonly``, and what both suites share (fixtures, test
data, the checks that hold for every store) in ``secretkit.testing.common``; every name stays
importable from here.
"""

from __future__ import annotations

import logging
from datetime import datetime

import pytest

from secretkit.audit import AuditEvent
from secretkit.errors import ConflictError, InvalidArgumentError, NotFoundError, NotSupportedError
from secretkit.secret import Stage, Value
from secretkit.store import SecretStore
from secretkit.testing.common import (
    ALL_OCTETS,
    SENTINEL,
    UNICODE_TEXT,
    EveryStoreChecks,
    NameFactory,
    Seed,
    StoreFixtures,
    rejected_without_io,
)
from secretkit.testing.names import AWKWARD_NAMES, UNSTORABLE_NAMES
from secretkit.testing.readonly import ReadOnlyStoreConformance
from secretkit.testing.writes import WriteChecks

# The names this module offered before the read-only suite and the shared fixtures moved out.
__all__ = [
    "ALL_OCTETS",
    "SENTINEL",
    "UNICODE_TEXT",
    "NameFactory",
    "ReadOnlyStoreConformance",
    "Seed",
    "StoreConformance",
    "StoreFixtures",
]


class StoreConformance(WriteChecks, EveryStoreChecks):
    """The portable contract. Subclasses provide the ``store`` fixture, and set
    ``tells_current_version`` (see ``WriteChecks``) where the driver reports it."""

    # -- values ------------------------------------------------------------------------

    # The guarantee: what you put comes back exactly through the same view (text → .text,
    # bytes → .bytes, fields → .fields). Which shape the backend holds it in (``kind``) is the
    # backend's own business: Vault keeps text as a one-field map, GCP keeps UTF-8 octets as text.

    def test_text_round_trips(self, store: SecretStore, new_name: NameFactory) -> None:
        name = new_name("text")
        store.put(name, UNICODE_TEXT)
        got = store.get(name)
        assert got.text == UNICODE_TEXT
        assert got.bytes == UNICODE_TEXT.encode("utf-8")
        assert got.name == name

    def test_bytes_round_trip_every_octet(self, store: SecretStore, new_name: NameFactory) -> None:
        name = new_name("bytes")
        store.put(name, ALL_OCTETS)
        got = store.get(name)
        assert got.bytes == ALL_OCTETS
        with pytest.raises(InvalidArgumentError):
            got.text  # noqa: B018 - not UTF-8: no text view, and the error names no value

    def test_fields_round_trip(self, store: SecretStore, new_name: NameFactory) -> None:
        name = new_name("fields")
        fields = {"user": "app", "password": "p@ss wörd 🔑", "empty": "", "dotted.key": "x", "json": '{"a":1}'}
        store.put(name, fields)
        got = store.get(name)
        assert got.fields == fields
        assert got["password"] == fields["password"]

    @pytest.mark.parametrize(
        "value",
        ["", b"", '{"looks": "like fields"}', b'{"looks": "like fields"}', "ZW5jb2RlZA==", b"plain ascii"],
        ids=["empty-text", "empty-bytes", "json-text", "json-bytes", "base64-text", "ascii-bytes"],
    )
    def test_value_comes_back_through_the_view_it_was_put_with(
        self, store: SecretStore, new_name: NameFactory, value: str | bytes
    ) -> None:
        name = new_name("view")
        store.put(name, value)
        got = store.get(name)
        assert (got.text if isinstance(value, str) else got.bytes) == value
        assert got.bytes == (value.encode() if isinstance(value, str) else value)

    def test_empty_fields_round_trip(self, store: SecretStore, new_name: NameFactory) -> None:
        name = new_name("nofields")
        store.put(name, {})
        got = store.get(name)
        assert got.fields == {}

    def test_largest_value_round_trips(self, store: SecretStore, new_name: NameFactory) -> None:
        limit = store.capabilities.max_value_bytes
        if limit is None:
            pytest.skip("store declares no value size limit")
        big = bytes((i * 7 + 3) % 256 for i in range(limit))
        name = new_name("big-bytes")
        store.put(name, big)
        assert store.get(name).bytes == big
        text = ("é" * (limit // 2)) + ("x" * (limit % 2))
        name = new_name("big-text")
        store.put(name, text)
        assert store.get(name).text == text

    def test_fields_whose_json_is_exactly_the_limit_round_trip(self, store: SecretStore, new_name: NameFactory) -> None:
        """``Value.size`` of fields is their canonical JSON exactly, escapes included (a control
        character is six bytes): at the limit it is stored, one byte more is refused before I/O."""
        limit = store.capabilities.max_value_bytes
        if limit is None:
            pytest.skip("store declares no value size limit")

        def fields_of(size: int) -> dict[str, str]:
            return {"k": "\x01" * 100 + "x" * (size - 8 - 600)}  # {"k":"…"}: 8 bytes; 100 escapes of 6

        assert Value.of(fields_of(limit)).size == limit
        name = new_name("big-fields")
        store.put(name, fields_of(limit))
        assert store.get(name).fields == fields_of(limit)
        counted, spy = self.counting(store)
        with pytest.raises(InvalidArgumentError):
            counted.put(name, fields_of(limit + 1))
        assert spy.total == 0

    def test_one_byte_over_the_limit_is_rejected_before_io(self, store: SecretStore, new_name: NameFactory) -> None:
        limit = store.capabilities.max_value_bytes
        if limit is None:
            pytest.skip("store declares no value size limit")
        counted, spy = self.counting(store)
        name = new_name("too-big")
        for value in (b"\x01" * (limit + 1), SENTINEL[:1] * (limit + 1), {"k": "v" * limit}):
            with pytest.raises(InvalidArgumentError) as info:
                counted.put(name, value)
            assert SENTINEL[:1] * 20 not in str(info.value)
            assert name in str(info.value)
        assert spy.total == 0

    # -- reads, versions ---------------------------------------------------------------

    def test_put_returns_the_version_get_reports(self, store: SecretStore, new_name: NameFactory) -> None:
        name = new_name("ver")
        info = store.put(name, "one")
        got = store.get(name)
        assert info.version == got.version
        assert isinstance(got.version, str) and got.version
        assert got.created_at is None or (isinstance(got.created_at, datetime) and got.created_at.tzinfo is not None)

    def test_versions_newest_first_and_old_versions_readable(self, store: SecretStore, new_name: NameFactory) -> None:
        name = new_name("history")
        if not store.capabilities.versions:
            store.put(name, "one")
            with pytest.raises(NotSupportedError):
                store.get(name, version="1")
            with pytest.raises(NotSupportedError):
                store.versions(name)
            pytest.skip("store keeps no version history (NotSupportedError checked)")
        v1 = store.put(name, "one").version
        v2 = store.put(name, b"two").version
        v3 = store.put(name, {"three": "3"}).version
        assert len({v1, v2, v3}) == 3
        listed = [v.version for v in store.versions(name)]
        assert listed[:3] == [v3, v2, v1]
        assert store.versions(name)[0].is_current
        assert store.get(name, version=v1).text == "one"
        assert store.get(name, version=v2).bytes == b"two"
        assert store.get(name).fields == {"three": "3"}
        assert store.get(name, version=v1).version == v1

    def test_unknown_version_is_not_found(self, store: SecretStore, new_name: NameFactory) -> None:
        if not store.capabilities.versions:
            pytest.skip("store keeps no version history")
        name = new_name("nover")
        store.put(name, "one")
        missing = "999999" if store.get(name).version.isdigit() else "00000000-0000-4000-8000-000000000000"
        with pytest.raises(NotFoundError):
            store.get(name, version=missing)

    def test_previous_stage(self, store: SecretStore, new_name: NameFactory) -> None:
        """After a plain put, ``previous`` is the value it replaced, where the backend keeps
        history. (Kubernetes keeps none: there only a rotation's promotion sets previous, which
        the rotation suite checks.)"""
        if store.stages is None:
            with pytest.raises(NotSupportedError):
                store.get(new_name("nostages"), stage=Stage.PREVIOUS)
            pytest.skip("store keeps no stages (NotSupportedError checked)")
        if not store.capabilities.versions:
            pytest.skip("store keeps no history: previous changes only at a rotation's promotion")
        name = new_name("staged")
        store.put(name, "old")
        store.put(name, "new")
        assert store.get(name, stage=Stage.CURRENT).text == "new"
        assert store.get(name, stage=Stage.PREVIOUS).text == "old"
        assert Stage.CURRENT in store.get(name).stages

    def test_versions_mark_the_version_previous_reads(self, store: SecretStore, new_name: NameFactory) -> None:
        """``versions()`` marks ``previous`` on the version ``get(stage="previous")`` returns,
        and on no other, wherever the backend keeps history and stages."""
        if store.stages is None or not store.capabilities.versions:
            pytest.skip("store keeps no history with stages")
        name = new_name("marked")
        v1 = store.put(name, "one").version
        v2 = store.put(name, "two").version
        v3 = store.put(name, "three").version
        marks = {v.version: v.stages & {Stage.CURRENT, Stage.PREVIOUS} for v in store.versions(name)}
        assert marks[v3] == {Stage.CURRENT}
        assert marks[v2] == {Stage.PREVIOUS}
        assert marks[v1] == frozenset()
        assert store.get(name, stage=Stage.PREVIOUS).version == v2

    # -- list --------------------------------------------------------------------------

    def test_list_by_prefix_returns_names_as_written(self, store: SecretStore, new_name: NameFactory) -> None:
        root = new_name("tree")
        wanted = [f"{root}/a", f"{root}/b/c", f"{root}/b/d/e", f"{root}/Upper_Case.v1", f"{root}/x-y_z.w"]
        outside = f"{root}-sibling"
        for n in [*wanted, outside]:
            new_name(n.split("/", 1)[1])  # register for cleanup
            store.put(n, "v")
        assert list(store.list(f"{root}/")) == sorted(wanted)
        assert list(store.list(f"{root}/b/")) == [f"{root}/b/c", f"{root}/b/d/e"]
        assert outside in list(store.list(root))
        assert set(wanted) <= set(store.list(""))

    # -- validation --------------------------------------------------------------------

    @pytest.mark.parametrize("bad", UNSTORABLE_NAMES, ids=range(len(UNSTORABLE_NAMES)))
    def test_names_no_backend_holds_are_rejected_without_io(self, store: SecretStore, bad: object) -> None:
        rejected_without_io(self, store, bad)

    @pytest.mark.parametrize("name", AWKWARD_NAMES)
    def test_awkward_names_round_trip_or_are_refused_before_io(
        self, store: SecretStore, new_name: NameFactory, name: str
    ) -> None:
        """Each name the backend can hold (natively, or mapped) works for put, get, list and
        delete as written; any other is refused before I/O with the backend's rule."""
        unique = f"{new_name('x').split('/')[0]}-{name}"  # top level: native names must stay native
        try:
            store.names.storage_name(unique)
        except InvalidArgumentError:
            message = rejected_without_io(self, store, unique)
            assert store.names.rule in message
            return
        try:
            store.put(unique, "v")
            assert store.get(unique).text == "v"
            assert unique in list(store.list(unique))
            store.delete(unique)
            assert not store.exists(unique)
        finally:
            store.delete(unique, purge=True, missing_ok=True)

    def test_invalid_values_rejected_without_io(self, store: SecretStore, new_name: NameFactory) -> None:
        counted, spy = self.counting(store)
        name = new_name("badvalue")
        for bad in (123, None, {"k": 1}, {"bad/key": "v"}, {"": "v"}, ["a"]):
            with pytest.raises(InvalidArgumentError):
                counted.put(name, bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            counted.put(name, "v", if_version="1", create_only=True)
        for text in ("lone \ud800 surrogate", {"k": "lone \udfff"}, {"lone\ud800": "v"}):
            with pytest.raises(InvalidArgumentError):
                counted.put(name, text)
        assert spy.total == 0

    @pytest.mark.parametrize("version", ["", " 1", 1, 0, None.__class__, b"1"], ids=repr)
    def test_malformed_versions_rejected_without_io(self, store: SecretStore, new_name: NameFactory,
                                                    version: object) -> None:
        """An empty or non-str version must never reach a backend: on Kubernetes an empty
        resourceVersion means "no precondition", which would turn a compare-and-set into an
        unconditional overwrite."""
        counted, spy = self.counting(store)
        name = new_name("badversion")
        with pytest.raises(InvalidArgumentError):
            counted.put(name, "v", if_version=version)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            counted.get(name, version=version)  # type: ignore[arg-type]
        assert spy.total == 0

    # -- batch -------------------------------------------------------------------------

    def test_get_many_reports_per_name_errors(self, store: SecretStore, new_name: NameFactory) -> None:
        present = [new_name(f"batch{i}") for i in range(3)]
        for i, n in enumerate(present):
            store.put(n, f"value-{i}")
        missing = new_name("batch-missing")
        result = store.get_many([*present, missing, "bad\nname"])
        assert {n: result[n].text for n in present} == {n: f"value-{i}" for i, n in enumerate(present)}
        assert isinstance(result.errors[missing], NotFoundError)
        assert isinstance(result.errors["bad\nname"], InvalidArgumentError)
        with pytest.raises(NotFoundError):
            result[missing]

    # -- secrecy -----------------------------------------------------------------------

    def test_values_never_leak(
        self, store: SecretStore, new_name: NameFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        events: list[AuditEvent] = []
        store.add_audit_hook(events.append)
        name = new_name("leak")
        caplog.set_level(logging.DEBUG)
        try:
            info = store.put(name, SENTINEL)
            got = store.get(name)
            store.put(new_name("leak-fields"), {"password": SENTINEL})
            batch = store.get_many([name])
            shown = [repr(got), str(got), repr(info), repr(store), repr(batch), repr(got.value), repr(events)]
            if store.capabilities.compare_and_set:
                with pytest.raises(ConflictError) as conflict:
                    store.put(name, SENTINEL + "2", if_version="0-not-a-version")
                shown.append(str(conflict.value))
        finally:
            store.remove_audit_hook(events.append)
        for text in [*shown, caplog.text]:
            assert SENTINEL not in text
        assert {e.operation for e in events} >= {"put", "get"}
        assert all(e.backend == store.backend for e in events)
        assert any(e.operation == "get" and e.name == name and e.outcome == "ok" for e in events)
