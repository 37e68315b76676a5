"""The jsonfile driver passes secretkit's conformance suite (run: pytest test_conformance.py)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance


class TestJsonFile(StoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SecretStore]:
        with secretkit.open(f"jsonfile://{tmp_path}/secrets.json") as store:
            yield store
