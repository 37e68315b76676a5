"""The rotation companion of azure-kv:// as a first-writer-wins log (drivers/azure/claims.py),
on the Key Vault double through the real SecretClient, checked with the raw client."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from secretkit.drivers.base import Record, Value
from secretkit.drivers.memory import MemoryDriver
from secretkit.errors import ConflictError, NotFoundError, NotSupportedError
from secretkit.secret import Stage
from secretkit.stages import Companion, pack
from secretkit.store import SecretStore
from secretkit.testing.rotation import WithoutNativeStages
from tests.conformance.test_azure import open_double


def _companion_versions(azure_kv: Any, store: SecretStore, name: str) -> list[Any]:
    stored = store.names.storage_name(Companion(store).companion(name))
    return list(azure_kv.client().list_properties_of_secret_versions(stored))


def test_a_losing_claim_disables_its_own_entry_and_reads_the_winner(azure_kv: Any) -> None:
    with open_double(azure_kv) as store:
        driver, companion = store.driver, Companion(store).companion("db")
        first = driver.claim(companion, pack(Value.of("one"), "tok-1"), token="tok-1")
        second = driver.claim(companion, pack(Value.of("two"), "tok-2"), token="tok-2")
        assert first.value.fields["token"] == second.value.fields["token"] == "tok-1"
        assert driver.read_claim(companion).version == first.version
        enabled = {p.version: p.enabled for p in _companion_versions(azure_kv, store, "db")}
        assert len(enabled) == 2
        assert [v for v, on in enabled.items() if on] == [first.version]  # the loser ended its own entry


def test_the_companion_is_released_never_deleted_and_stays_out_of_list(azure_kv: Any) -> None:
    with open_double(azure_kv) as store:
        store.put("db", "working")
        with pytest.raises(Exception):
            store.rotate("db", generate=lambda c: "broken", verify=lambda p: False)
        assert store.get("db", stage=Stage.PENDING).text == "broken"
        assert store.get("db").text == "working"  # readers of NAME never see the pending value
        assert store.discard_pending("db") is not None
        with pytest.raises(NotFoundError):
            store.get("db", stage=Stage.PENDING, refresh=True)
        versions = _companion_versions(azure_kv, store, "db")
        assert versions and not any(p.enabled for p in versions)  # still there, every version disabled
        assert list(store.list("")) == ["db"]
        store.rotate("db", generate=lambda c: "fixed")  # the released log takes a new claim
        assert store.get("db").text == "fixed" and store.get("db", stage=Stage.PREVIOUS).text == "working"
        assert not any(p.enabled for p in _companion_versions(azure_kv, store, "db"))


def test_a_rotation_in_progress_blocks_another(azure_kv: Any) -> None:
    with open_double(azure_kv) as store:
        store.put("db", "working")
        with pytest.raises(Exception):
            store.rotate("db", generate=lambda c: "broken", verify=lambda p: False, token="first")
        with pytest.raises(ConflictError):
            store.rotate("db", generate=lambda c: "other", token="second")
        enabled = [p for p in _companion_versions(azure_kv, store, "db") if p.enabled]
        assert len(enabled) == 1  # the second rotator's entry was ended
        store.rotate("db", generate=lambda c: "unused", token="first", resume=True)
        assert store.get("db").text == "broken"


class _HistoryOnly(WithoutNativeStages):
    """A backend with version history but neither create-only writes nor a claim log."""

    capabilities = dataclasses.replace(MemoryDriver.capabilities, create_only=False)


def test_history_alone_gives_previous_but_no_rotation() -> None:
    store = SecretStore(_HistoryOnly(MemoryDriver()))
    store.put("db", "one")
    store.put("db", "two")
    assert store.stages is None
    assert store.get("db", stage=Stage.PREVIOUS).text == "one"
    with pytest.raises(NotSupportedError):
        store.get("db", stage=Stage.PENDING)
    with pytest.raises(NotSupportedError):
        store.rotate("db", generate=lambda c: "three")


def test_the_claim_log_is_not_used_where_create_only_exists() -> None:
    class Both(WithoutNativeStages):
        def claim(self, name: str, value: Value, *, token: str) -> Record:
            raise AssertionError("a backend with create-only writes keeps a create-only companion")

        read_claim = release = claim  # type: ignore[assignment]

    store = SecretStore(Both(MemoryDriver()))
    assert store.stages == "emulated"
    store.put("db", "one")
    store.rotate("db", generate=lambda c: "two")  # through the create-only companion: no claim made
    assert store.get("db").text == "two" and store.get("db", stage=Stage.PREVIOUS).text == "one"
