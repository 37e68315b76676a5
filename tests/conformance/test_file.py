"""The conformance suite against file://, the encrypted development store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance


class TestFileStore(StoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretStore]:
        monkeypatch.delenv("SECRETKIT_FILE_KEY", raising=False)
        with secretkit.open((tmp_path / "store").as_uri()) as store:
            yield store
