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
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import ClassVar, Union

import pytest

from secretkit.audit import AuditEvent
from secretkit.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    SecretError,
)
from secretkit.drivers.base import VersionProbe
from secretkit.layered import LayeredStore
from secretkit.secret import Secret, Stage, Value
from secretkit.store import SecretStore
from secretkit.testing.names import AWKWARD_NAMES, UNSTORABLE_NAMES
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


class _EveryStore(StoreFixtures):
    """Checks that hold for read-only stores too (both suites inherit them)."""

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


class StoreConformance(_EveryStore):
    """The portable contract. Subclasses provide the ``store`` fixture."""

    tells_current_version: ClassVar[bool] = False
    """True where the driver reports the current version in write conflicts (``ConflictError``
    and ``AlreadyExistsError`` ``.current_version``): the suite then requires it."""

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

    def test_missing_secret_is_not_found(self, store: SecretStore, new_name: NameFactory) -> None:
        name = new_name("missing")
        with pytest.raises(NotFoundError) as info:
            store.get(name)
        assert info.value.name == name
        assert info.value.backend == store.backend
        assert name in str(info.value)
        assert not store.exists(name)

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

    # -- compare-and-set ---------------------------------------------------------------

    def test_compare_and_set(self, store: SecretStore, new_name: NameFactory) -> None:
        if not store.capabilities.compare_and_set:
            pytest.skip("store has no atomic compare-and-set")
        name = new_name("cas")
        v1 = store.put(name, "one").version
        v2 = store.put(name, "two", if_version=v1).version
        with pytest.raises(ConflictError):
            store.put(name, "stale", if_version=v1)
        assert store.get(name).text == "two"
        assert store.get(name).version == v2

    def test_compare_and_set_on_missing_secret_conflicts(self, store: SecretStore, new_name: NameFactory) -> None:
        if not store.capabilities.compare_and_set:
            pytest.skip("store has no atomic compare-and-set")
        other = new_name("cas-src")
        version = store.put(other, "x").version
        name = new_name("cas-missing")
        with pytest.raises(ConflictError):
            store.put(name, "one", if_version=version)
        assert not store.exists(name)

    def test_create_only(self, store: SecretStore, new_name: NameFactory) -> None:
        if not store.capabilities.create_only:
            pytest.skip("store has no atomic create-only write")
        name = new_name("create")
        store.put(name, "first", create_only=True)
        with pytest.raises(AlreadyExistsError):
            store.put(name, "second", create_only=True)
        assert store.get(name).text == "first"

    def test_conflict_messages_read_the_same_on_every_backend(self, store: SecretStore, new_name: NameFactory) -> None:
        """A stale ``if_version`` and a ``create_only`` put on an existing secret say the same
        thing on every backend: the secret, the backend, the version expected and, where the
        backend told, the current one; never the value."""
        if not (store.capabilities.compare_and_set or store.capabilities.create_only):
            pytest.skip("store has neither compare-and-set nor create-only writes")
        name = new_name("conflict-words")
        first = store.put(name, SENTINEL, create_only=store.capabilities.create_only).version
        current = store.put(name, SENTINEL + "2").version
        backend = _writer_backend(store)
        where = f"(secret {name!r}, backend {backend})"
        if store.capabilities.compare_and_set:
            with pytest.raises(ConflictError) as stale:
                store.put(name, SENTINEL + "3", if_version=first)
            error = stale.value
            assert (error.name, error.backend, error.expected_version) == (name, backend, first)
            assert error.current_version == current if self.tells_current_version else error.current_version in (
                None, current)
            told = error.current_version is not None
            found = f"the current version is {current!r}" if told else "it is not the current one"
            assert str(error) == f"compare-and-set refused: expected version {first!r}, {found} {where}"
        if store.capabilities.create_only:
            with pytest.raises(AlreadyExistsError) as taken:
                store.put(name, SENTINEL + "4", create_only=True)
            exists = taken.value
            assert (exists.name, exists.backend) == (name, backend)
            assert exists.current_version == current if self.tells_current_version else exists.current_version in (
                None, current)
            found = f" (current version {current!r})" if exists.current_version is not None else ""
            assert str(exists) == f"create-only write refused: the secret already exists{found} {where}"
        assert store.get(name).version == current

    def test_concurrent_compare_and_set_has_one_winner(self, store: SecretStore, new_name: NameFactory) -> None:
        if not store.capabilities.compare_and_set:
            pytest.skip("store has no atomic compare-and-set")
        name = new_name("race")
        base = store.put(name, "base").version
        outcomes: list[str] = []
        barrier = threading.Barrier(6)

        def contender(i: int) -> None:
            barrier.wait()
            try:
                store.put(name, f"writer-{i}", if_version=base)
                outcomes.append(f"won-{i}")
            except ConflictError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=contender, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [o for o in outcomes if o.startswith("won")]
        assert len(winners) == 1, outcomes
        assert store.get(name).text == f"writer-{winners[0].split('-')[1]}"

    def test_concurrent_writers_all_land(self, store: SecretStore, new_name: NameFactory) -> None:
        names = [new_name(f"w{i}") for i in range(6)]
        errors: list[BaseException] = []

        def writer(n: str) -> None:
            try:
                for j in range(3):
                    store.put(n, f"{n}#{j}")
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        for n in names:
            assert store.get(n).text == f"{n}#2"

    # -- delete ------------------------------------------------------------------------

    def test_delete_then_get_is_not_found(self, store: SecretStore, new_name: NameFactory) -> None:
        name = new_name("del")
        store.put(name, "doomed")
        store.delete(name)
        with pytest.raises(NotFoundError):
            store.get(name)
        assert name not in list(store.list(name.rsplit("/", 1)[0] + "/"))

    def test_delete_missing(self, store: SecretStore, new_name: NameFactory) -> None:
        name = new_name("never")
        with pytest.raises(NotFoundError):
            store.delete(name)
        store.delete(name, missing_ok=True)

    def test_delete_then_put_again(self, store: SecretStore, new_name: NameFactory) -> None:
        """After a recoverable delete a put writes a new value, or (AWS: the secret is still in
        its recovery window) refuses with ``ConflictError``; it never destroys what is recoverable."""
        name = new_name("reborn")
        store.put(name, "old")
        store.delete(name)
        try:
            store.put(name, "new")
        except ConflictError:
            assert store.capabilities.recoverable_delete, "only a recoverable delete may refuse a later put"
            store.delete(name, purge=True)
            store.put(name, "new")
        assert store.get(name).text == "new"
        store.delete(name, purge=True)
        with pytest.raises(NotFoundError):
            store.get(name)
        store.put(name, b"again")
        assert store.get(name).bytes == b"again"

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
        _rejected_without_io(self, store, bad)

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
            message = _rejected_without_io(self, store, unique)
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

class ReadOnlyStoreConformance(_EveryStore):
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

    def test_missing_secret_is_not_found(self, store: SecretStore, new_name: NameFactory) -> None:
        name = new_name("missing")
        with pytest.raises(NotFoundError) as info:
            store.get(name)
        assert info.value.name == name
        assert info.value.backend == store.backend
        assert not store.exists(name)

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
        _rejected_without_io(self, store, bad)

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
            assert store.names.rule in _rejected_without_io(self, store, unique)
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



def _writer_backend(store: SecretStore) -> str:
    """The backend that takes ``store``'s writes (a layered store's errors name the layer)."""
    if isinstance(store, LayeredStore):
        layer = store.writable_layer
        assert layer is not None
        return layer.backend
    return store.backend


def _rejected_without_io(suite: StoreFixtures, store: SecretStore, bad: object) -> str:
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
