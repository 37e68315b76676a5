"""The conformance suite against a real OpenBao dev server: KV v2 (``secret/``) and a KV v1 mount."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import secretkit
from secretkit.drivers.vault.driver import KV2_CAPABILITIES
from secretkit.drivers.vault.kv1 import KV1_CAPABILITIES
from secretkit.errors import InvalidArgumentError
from secretkit.store import SecretStore
from secretkit.testing.conformance import NameFactory, StoreConformance
from secretkit.testing.readers import ReaderAgreement
from secretkit.testing.rotation import RotationConformance
from tests.doubles import openbao


@pytest.fixture(autouse=True)
def _no_shell_vault_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    openbao.clean_env(monkeypatch)  # a developer's VAULT_NAMESPACE etc. must not reach the local server


class TestVaultKV2(StoreConformance):
    tells_current_version = True

    @pytest.fixture
    def store(self, bao: openbao.OpenBaoServer) -> Iterator[SecretStore]:
        with secretkit.open(bao.url("secret"), token=bao.root_token) as store:
            assert store.capabilities == KV2_CAPABILITIES  # detected from the server, not assumed
            yield store


class TestVaultKV2UnderPrefix(StoreConformance):
    """A URL path below the mount confines the store to that folder."""

    @pytest.fixture
    def store(self, bao: openbao.OpenBaoServer) -> Iterator[SecretStore]:
        with secretkit.open(bao.url("secret/conformance/nested"), token=bao.root_token) as store:
            assert store.driver.prefix == "conformance/nested/"  # type: ignore[attr-defined]
            yield store


class TestVaultKV1(StoreConformance):
    @pytest.fixture
    def store(self, bao: openbao.OpenBaoServer) -> Iterator[SecretStore]:
        mount = openbao.enable_kv1(bao)
        with secretkit.open(bao.url(mount), token=bao.root_token) as store:
            assert store.capabilities == KV1_CAPABILITIES
            yield store

    def test_empty_fields_round_trip(self, store: SecretStore, new_name: NameFactory) -> None:
        """KV v1 refuses a map without fields ("missing data fields"), and there is no native
        way to keep one: ``put({})`` is refused before any request, saying so."""
        counted, spy = self.counting(store)
        name = new_name("nofields")
        with pytest.raises(InvalidArgumentError, match="KV v1 mount refuses a secret without fields"):
            counted.put(name, {})
        assert spy.total == 0
        assert not store.exists(name)


class TestVaultKV2Rotation(RotationConformance):
    """Rotation on KV v2: previous is Vault's own previous version; pending lives in a companion
    under the store's pending_prefix while the rotation runs (cas=0 makes it exclusive)."""

    store = TestVaultKV2.store


class TestVaultKV1Rotation(RotationConformance):
    """KV v1 has no atomic create-only write, so rotation must refuse with NotSupportedError."""

    store = TestVaultKV1.store


class TestVaultKV2Readers(ReaderAgreement):
    """Vault holds text as the map {"value": text}: every reader must still give the text."""

    store = TestVaultKV2.store

    @pytest.fixture
    def cli_url(self, bao: openbao.OpenBaoServer) -> str:
        return f"{bao.url('secret')}?token={bao.root_token}"


class TestVaultKV1Readers(ReaderAgreement):
    store = TestVaultKV1.store

    @pytest.fixture
    def cli_url(self, bao: openbao.OpenBaoServer) -> str:
        return f"{bao.url(openbao.enable_kv1(bao))}?token={bao.root_token}"
