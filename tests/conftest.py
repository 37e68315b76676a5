"""Fixtures shared across the test tree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import secretkit
from secretkit.store import SecretStore


@pytest.fixture
def memory_store() -> Iterator[SecretStore]:
    with secretkit.open("memory://") as store:
        yield store


@pytest.fixture
def file_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretStore]:
    """A fresh encrypted file store whose key file is created beside it."""
    monkeypatch.delenv("SECRETKIT_FILE_KEY", raising=False)
    with secretkit.open((tmp_path / "store").as_uri()) as store:
        yield store


@pytest.fixture(scope="session")
def bao() -> Iterator[Any]:
    """One OpenBao dev server (tests/doubles/openbao.py) shared by every test module that asks."""
    from tests.doubles import openbao

    yield openbao.shared()
    openbao.release()
