"""The rotation suite on memory:// and file://, where stages are native."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.rotation import RotationConformance


class TestMemoryRotation(RotationConformance):
    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        with secretkit.open("memory://") as store:
            yield store


class TestFileRotation(RotationConformance):
    @pytest.fixture
    def store(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretStore]:
        monkeypatch.delenv("SECRETKIT_FILE_KEY", raising=False)
        with secretkit.open((tmp_path / "store").as_uri()) as store:
            yield store
