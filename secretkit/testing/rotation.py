"""The rotation conformance suite: crash at any step, concurrent rotators, readers throughout.

Subclass ``RotationConformance`` with a ``store`` fixture (as for ``StoreConformance``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from secretkit.drivers.base import NativeStages, Record
from secretkit.errors import ConflictError, InvalidArgumentError, NotFoundError, NotSupportedError, RotationError
from secretkit.layered import LayeredStore
from secretkit.secret import Secret, Stage
from secretkit.store import SecretStore
from secretkit.testing.common import NameFactory, StoreFixtures


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the library handles it."""


def step_call(step: str, store: SecretStore) -> Callable[[str, tuple[Any, ...]], bool]:
    """Which driver call carries a rotation step: a native primitive, or the companion write."""
    if _native(store):
        return lambda attr, args: attr == {"create": "write_pending", "promote": "promote"}[step]
    pending = store.pending_prefix
    if step == "create":
        # the companion's create-only write, or its claim where it is a first-writer-wins log
        return lambda attr, args: attr in ("write", "claim") and str(args[0]).startswith(pending)
    return lambda attr, args: attr == "write" and not str(args[0]).startswith(pending)


class CrashingDriver:
    """Forwards to ``inner``; dies once, just before or just after the first call ``hits`` picks."""

    def __init__(self, inner: Any, hits: Callable[[str, tuple[Any, ...]], bool], when: str) -> None:
        self._inner, self._hits, self._when = inner, hits, when
        self.fired = False

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._inner, attr)
        if not callable(target) or attr.startswith("_"):
            return target

        def crashing(*args: Any, **kwargs: Any) -> Any:
            if self.fired or not self._hits(attr, args):
                return target(*args, **kwargs)
            if self._when == "before":
                self.fired = True
                raise Crash(f"before {attr}")
            target(*args, **kwargs)  # the call lands; the process dies before it hears back
            self.fired = True
            raise Crash(f"after {attr}")

        return crashing


class WithoutNativeStages:
    """A driver wrapper that hides the native stage primitives and offers only the backend's
    history for ``previous`` — the emulation Vault KV v2 and GCP use, checked on a local store."""

    _HIDDEN = frozenset({"write_pending", "promote", "discard_pending"})

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def read_previous(self, name: str) -> Record:
        return self._inner.read(name, stage=Stage.PREVIOUS)  # type: ignore[no-any-return]

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        if stage is not None:
            raise AssertionError("the store must not ask a driver without native stages for a stage")
        return self._inner.read(name, version=version)  # type: ignore[no-any-return]

    def __getattr__(self, attr: str) -> Any:
        if attr in self._HIDDEN:
            raise AttributeError(attr)
        return getattr(self._inner, attr)


#: Every driver call that changes something: a store that must refuse "before any write" makes none.
_WRITES = frozenset({"write", "write_pending", "promote", "discard_pending", "delete"})


def refusing_writes(store: SecretStore) -> tuple[SecretStore, CrashingDriver]:
    """``store`` over a driver that dies at the first write (``fired`` says whether one came).
    A layered store rotates in its writable layer, so that layer is the one guarded."""
    if isinstance(store, LayeredStore) and store.writable_layer is not None:
        writable = store.writable_layer
        guarded, driver = refusing_writes(writable)
        return LayeredStore([guarded if layer is writable else layer for layer in store.layers]), driver
    driver = CrashingDriver(store.driver, lambda attr, args: attr in _WRITES, "before")
    return SecretStore(driver, options=store.options), driver


def rotating_backend(store: SecretStore) -> str:
    """The backend a rotation of ``store`` runs on (a layered store's writable layer)."""
    if isinstance(store, LayeredStore) and store.writable_layer is not None:
        return store.writable_layer.backend
    return store.backend


def _native(store: SecretStore) -> bool:
    return isinstance(store.driver, NativeStages)


def _require_rotation(store: SecretStore) -> None:
    if store.stages is None:
        with pytest.raises(NotSupportedError):
            store.rotate("sk-conf-unsupported/x", generate=lambda c: "x")
        pytest.skip("store cannot rotate: no native stages and no atomic create-only write (NotSupportedError checked)")


def _pending_or_none(store: SecretStore, name: str) -> Secret | None:
    try:
        pending = store.get(name, stage=Stage.PENDING)
    except NotFoundError:
        return None
    return None if Stage.CURRENT in pending.stages else pending


class RotationConformance(StoreFixtures):
    """Rotation never loses a working credential, on any store that supports it."""

    def test_rotation_promotes_and_keeps_previous(self, store: SecretStore, new_name: NameFactory) -> None:
        _require_rotation(store)
        name = new_name("rot")
        store.put(name, "old-password")
        seen_during: list[str] = []

        def apply(pending: Secret) -> None:
            seen_during.append(store.get(name).text)  # readers still get current

        result = store.rotate(name, generate=lambda cur: "new-password", apply=apply, verify=lambda p: True)
        assert result is not None and not result.already_done
        assert seen_during == ["old-password"]
        assert store.get(name).text == "new-password"
        assert store.get(name).version == result.version
        assert store.get(name, stage=Stage.PREVIOUS).text == "old-password"
        assert _pending_or_none(store, name) is None

    def test_custom_generate_must_keep_every_field(self, store: SecretStore, new_name: NameFactory) -> None:
        """A generator's whole new value for a secret of several fields keeps every field (extra
        ones are allowed); text, or a map missing a field, is refused before anything is written,
        naming the secret, the backend and the missing fields, never a value."""
        _require_rotation(store)
        name = new_name("shape")
        original = {"username": "app", "password": "pw-before-1", "host": "db.internal"}
        before = store.put(name, original).version
        guarded, driver = refusing_writes(store)
        refused: list[tuple[Any, set[str]]] = [
            ("pw-bare-text-2", {"username", "password", "host"}),
            ({"password": "pw-partial-3"}, {"username", "host"}),
        ]
        for returned, missing in refused:
            with pytest.raises(InvalidArgumentError) as info:
                guarded.rotate(name, generate=lambda c: returned)  # noqa: B023 - called at once
            message = str(info.value)
            assert name in message and rotating_backend(store) in message, message
            assert all(repr(field) in message for field in missing), message
            assert not [f for f in set(original) - missing if repr(f) in message], message
            assert "pw-" not in message, message
        assert not driver.fired  # refused before any write
        assert store.get(name).version == before and store.get(name).fields == original
        assert _pending_or_none(store, name) is None

        store.rotate(name, generate=lambda c: {**c.fields, "password": "pw-after-4", "rotated": "yes"})
        assert store.get(name).fields == {**original, "password": "pw-after-4", "rotated": "yes"}
        assert store.get(name, stage=Stage.PREVIOUS).fields == original

    def test_generated_value_by_default(self, store: SecretStore, new_name: NameFactory) -> None:
        _require_rotation(store)
        name = new_name("gen")
        store.put(name, "old")
        store.rotate(name)
        new = store.get(name).text
        assert new != "old" and len(new) >= 32

    @pytest.mark.parametrize("when", ["before", "after"])
    @pytest.mark.parametrize("step", ["create", "apply", "verify", "promote"])
    def test_crash_at_any_step_then_rerun_converges(
        self, store: SecretStore, new_name: NameFactory, step: str, when: str
    ) -> None:
        _require_rotation(store)
        name = new_name(f"crash-{step}-{when}")
        store.put(name, "original")
        applied: list[str] = []
        values = iter(["first-try", "second-try"])
        crashed = {"done": False}

        def maybe_crash(this: str, moment: str) -> None:
            if step == this and when == moment and not crashed["done"]:
                crashed["done"] = True
                raise Crash(f"{moment} {this}")

        def apply(pending: Secret) -> None:
            maybe_crash("apply", "before")
            applied.append(pending.text)
            maybe_crash("apply", "after")

        def verify(pending: Secret) -> bool:
            maybe_crash("verify", "before")
            ok = pending.text in applied
            maybe_crash("verify", "after")
            return ok

        crashing = store
        if step in ("create", "promote"):
            driver = CrashingDriver(store.driver, step_call(step, store), when)
            crashing = SecretStore(driver, options=store.options)
        token = f"tok-{step}-{when}"
        with pytest.raises(Crash):
            crashing.rotate(name, generate=lambda c: next(values), apply=apply, verify=verify, token=token)
        # at every crash point there is a working current value
        assert store.get(name).text in ("original", "first-try")
        store.rotate(name, generate=lambda c: next(values), apply=apply, verify=verify, token=token, resume=True)
        expected = "second-try" if (step == "create" and when == "before") else "first-try"
        assert store.get(name).text == expected
        assert store.get(name, stage=Stage.PREVIOUS).text == "original"
        assert _pending_or_none(store, name) is None
        assert applied[-1] == expected

    def test_failed_verify_leaves_current_and_can_resume_or_discard(
        self, store: SecretStore, new_name: NameFactory
    ) -> None:
        _require_rotation(store)
        name = new_name("verify")
        before = store.put(name, "working").version
        with pytest.raises(RotationError) as info:
            store.rotate(name, generate=lambda c: "broken", verify=lambda p: False)
        assert info.value.step == "verify" and "broken" not in str(info.value)
        assert store.get(name).text == "working" and store.get(name).version == before
        pending = _pending_or_none(store, name)
        assert pending is not None and pending.text == "broken"
        with pytest.raises(ConflictError):  # a new rotation must not trample the unfinished one
            store.rotate(name, generate=lambda c: "other")
        assert store.discard_pending(name) == pending.version
        assert _pending_or_none(store, name) is None
        store.rotate(name, generate=lambda c: "fixed", verify=lambda p: p.text == "fixed")
        assert store.get(name).text == "fixed"
        assert store.get(name, stage=Stage.PREVIOUS).text == "working"

    def test_concurrent_rotators_exactly_one_wins(self, store: SecretStore, new_name: NameFactory) -> None:
        _require_rotation(store)
        name = new_name("race")
        store.put(name, "base")
        versions_before = len(store.versions(name)) if store.capabilities.versions else None
        outcomes: dict[int, str] = {}
        losers_done = threading.Event()
        start = threading.Barrier(4)

        def hold(pending: Secret) -> None:  # the winner waits until every loser has given up
            losers_done.wait(timeout=20)

        def rotator(i: int) -> None:
            start.wait()
            try:
                store.rotate(name, generate=lambda c: f"value-{i}", apply=hold)
                outcomes[i] = "won"
            except ConflictError:
                outcomes[i] = "conflict"
                if list(outcomes.values()).count("conflict") == 3:
                    losers_done.set()

        threads = [threading.Thread(target=rotator, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        winners = [i for i, o in outcomes.items() if o == "won"]
        assert len(winners) == 1, outcomes
        assert store.get(name).text == f"value-{winners[0]}"
        assert store.get(name, stage=Stage.PREVIOUS).text == "base"
        if versions_before is not None:
            # Losers leave nothing staged. (Where a loser's write lands before it loses the
            # pending stage — AWS, which has no call to delete one version — the version
            # stays in history unlabelled, i.e. deprecated, and is never readable by stage.)
            history = store.versions(name)
            assert not [v for v in history if Stage.PENDING in v.stages]
            assert [v.version for v in history if Stage.CURRENT in v.stages] == [store.get(name).version]
            assert len(store.versions(name)) >= versions_before + 1

    def test_readers_never_see_missing_or_unpromoted_values(self, store: SecretStore, new_name: NameFactory) -> None:
        _require_rotation(store)
        name = new_name("readers")
        store.put(name, "v0")
        promoted = {"v0"}
        bad: list[str] = []
        stop = threading.Event()

        def reader() -> None:
            # wait() between reads: a reader spinning on cache hits would hold the GIL and
            # starve the rotating thread's network I/O (minutes over HTTP, not a real outage)
            while not stop.wait(0.0005):
                try:
                    text = store.get(name).text
                except NotFoundError:
                    bad.append("missing")
                    continue
                if text.startswith("reject") or text not in promoted | {f"v{i}" for i in range(1, 7)}:
                    bad.append(text)

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for i in range(1, 7):
                with pytest.raises(RotationError):
                    store.rotate(name, generate=lambda c: f"reject-{i}", verify=lambda p: False)  # noqa: B023
                store.discard_pending(name)
                store.rotate(name, generate=lambda c: f"v{i}")  # noqa: B023 - called at once
                promoted.add(f"v{i}")
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert bad == []
        assert store.get(name).text == "v6"

    def test_rotate_only_when_older_than(self, store: SecretStore, new_name: NameFactory) -> None:
        _require_rotation(store)
        name = new_name("age")
        store.put(name, "fresh")
        if store.get(name).created_at is None and not store.capabilities.versions:
            with pytest.raises(NotSupportedError):
                store.rotate(name, if_older_than=timedelta(days=30))
            pytest.skip("store does not report version ages (NotSupportedError checked)")
        assert store.rotate(name, if_older_than=timedelta(days=30)) is None
        assert store.get(name).text == "fresh"
        assert store.rotate(name, if_older_than=timedelta(0)) is not None
        assert store.get(name).text != "fresh"

    def test_watch_reports_a_new_current_value(self, store: SecretStore, new_name: NameFactory) -> None:
        _require_rotation(store)
        name = new_name("watched")
        store.put(name, "before")
        got: list[str] = []
        with store.watch(name, lambda s: got.append(s.text), interval=3600) as watcher:
            assert watcher.poll() is False
            store.rotate(name, generate=lambda c: "after")
            # reported exactly once: by this poll, or already by a streaming watch (Kubernetes)
            if not watcher.poll():
                assert watcher.streaming
                deadline = time.monotonic() + 10
                while not got and time.monotonic() < deadline:
                    time.sleep(0.01)
            assert watcher.poll() is False
            assert store.get(name).text == "after"
        assert got == ["after"]

    def test_watch_thread_polls_by_itself(self, store: SecretStore, new_name: NameFactory) -> None:
        name = new_name("watched-thread")
        store.put(name, "before")
        changed = threading.Event()
        got: list[str] = []

        def callback(s: Secret) -> None:
            got.append(s.text)
            changed.set()

        with store.watch(name, callback, interval=0.05):
            store.put(name, "after")
            assert changed.wait(timeout=10)
        assert got == ["after"]
