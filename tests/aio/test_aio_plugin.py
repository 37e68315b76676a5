"""The ``async_secret_store`` fixture under pytest-asyncio and under anyio (asyncio backend)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from secretkit.aio import AsyncSecretStore
from secretkit.store import SecretStore

pytest_asyncio = pytest.importorskip("pytest_asyncio")


@pytest.mark.asyncio
async def test_with_pytest_asyncio(async_secret_store: AsyncSecretStore, secret_store: SecretStore) -> None:
    await async_secret_store.put("db/password", "x")
    assert (await async_secret_store.get("db/password")).text == "x"
    assert secret_store.get("db/password").text == "x"  # one store, seen both ways


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_with_anyio(async_secret_store: AsyncSecretStore) -> None:
    await async_secret_store.put("db/password", "y")
    assert [name async for name in async_secret_store.list("db/")] == ["db/password"]
    async with async_secret_store.watch("db/password", interval=0.01) as watch:
        await async_secret_store.put("db/password", "z")
        assert (await anext(watch)).text == "z"


@pytest.mark.asyncio
async def test_a_fresh_store_per_test(async_secret_store: AsyncSecretStore) -> None:
    assert not await async_secret_store.exists("db/password")


def test_the_plugin_needs_neither_runner_nor_asyncio_to_load() -> None:
    code = ("import sys, secretkit.testing.plugin as p; assert p.async_secret_store; "
            "print([m for m in ('pytest_asyncio', 'anyio', 'asyncio', 'secretkit.aio') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
