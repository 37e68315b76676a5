"""The write side of the portable contract: compare-and-set, create-only writes, concurrent
writers and delete. ``StoreConformance`` (``secretkit.testing.conformance``) includes it.
"""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest

from secretkit.errors import AlreadyExistsError, ConflictError, NotFoundError
from secretkit.store import SecretStore
from secretkit.testing.common import SENTINEL, NameFactory, StoreFixtures, writer_backend


class WriteChecks(StoreFixtures):
    """Writes that race, are conditional, or delete, on a store that can write."""

    tells_current_version: ClassVar[bool] = False
    """True where the driver reports the current version in write conflicts (``ConflictError``
    and ``AlreadyExistsError`` ``.current_version``): the suite then requires it."""

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
        backend = writer_backend(store)
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
