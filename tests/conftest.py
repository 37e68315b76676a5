"""Fixtures shared across the test tree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import secretkit
from secretkit.store import SecretStore


def pytest_configure(config: pytest.Config) -> None:
    """Load secretkit's pytest plugin (the ``secret_store`` fixture) also when the package is
    not installed, e.g. run from a checkout with ``python -m pytest``; installed, its entry
    point has registered it already."""
    from secretkit.testing import plugin

    if not config.pluginmanager.is_registered(plugin):
        config.pluginmanager.register(plugin, "secretkit-testing")


@pytest.fixture(autouse=True)
def _user_dirs_under_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes to the user's own config or data directory or keyring: file stores made
    by tests (and the CLI's default store) keep their keys under tmp_path. Subprocesses inherit it."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")


@pytest.fixture
def memory_store() -> Iterator[SecretStore]:
    with secretkit.open("memory://") as store:
        yield store


@pytest.fixture
def file_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretStore]:
    """A fresh encrypted file store whose key goes to a key directory under tmp_path (never
    the user's keyring or config directory)."""
    monkeypatch.delenv("SECRETKIT_FILE_KEY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with secretkit.open((tmp_path / "store").as_uri(), keyring=False) as store:
        yield store


@pytest.fixture(scope="session")
def bao() -> Iterator[Any]:
    """One OpenBao dev server (tests/doubles/openbao.py) shared by every test module that asks."""
    from tests.doubles import openbao

    yield openbao.shared()
    openbao.release()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """One PostgreSQL server (tests/doubles/postgres.py) shared by every test module that asks;
    skipped, with the reason, where PostgreSQL is not installed."""
    from tests.doubles import postgres as pg

    yield pg.shared()
    pg.release()


@pytest.fixture(scope="session")
def bao_database(bao: Any, postgres: Any) -> Any:
    """The shared OpenBao server's ``database`` engine, connected to the shared PostgreSQL
    (tests/doubles/openbao_database.py); each test makes its own roles on it."""
    from tests.doubles import openbao_database

    return openbao_database.configure(bao, postgres)


@pytest.fixture
def azure_kv() -> Iterator[Any]:
    """The Azure Key Vault double (tests/doubles/azure_kv.py): one HTTPS server per test process,
    emptied (vault, request log, throttling, outages) for every test."""
    from tests.doubles import azure_kv as double

    running = double.shared()
    running.reset()
    yield running
    running.reset()
