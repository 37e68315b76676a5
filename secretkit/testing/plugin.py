"""pytest plugin (entry point ``secretkit``): a fresh in-memory store per test.

    def test_reads_db_password(secret_store):
        secret_store.put("db/password", "x")
        assert my_app.connect(store=secret_store).password == "x"

``secret_store_url`` gives the URL of a store shared by name within the test, for code that
calls ``secretkit.open(os.environ["SECRETKIT_URL"])`` itself; use it with ``monkeypatch``.

``async_secret_store`` is the same store as an ``AsyncSecretStore``, for async tests under
pytest-asyncio or anyio (neither is needed to load this plugin)::

    @pytest.mark.asyncio          # or @pytest.mark.anyio
    async def test_reads_db_password(async_secret_store):
        await async_secret_store.put("db/password", "x")
        assert (await my_app.connect(store=async_secret_store)).password == "x"
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from secretkit.store import SecretStore

if TYPE_CHECKING:
    from secretkit.aio import AsyncSecretStore


@pytest.fixture
def secret_store_url() -> str:
    """A ``memory://NAME`` URL unique to this test: every ``secretkit.open`` of it shares one store."""
    return f"memory://test-{uuid.uuid4().hex}"


@pytest.fixture
def secret_store(secret_store_url: str) -> Iterator[SecretStore]:
    """A fresh, empty in-memory ``SecretStore`` that behaves like the real backends."""
    from secretkit.registry import open as open_store

    with open_store(secret_store_url) as store:
        yield store


@pytest.fixture
def async_secret_store(secret_store: SecretStore) -> Iterator[AsyncSecretStore]:
    """``secret_store`` (the same fresh in-memory store) as an ``AsyncSecretStore``.

    A plain fixture, not an async one: the facade binds to no event loop until it is used, so
    it serves tests run by pytest-asyncio and by anyio alike, and requesting both fixtures
    gives one store seen both ways. Its pool is shut down after the test.
    """
    from secretkit.aio import AsyncSecretStore

    store = AsyncSecretStore(secret_store)
    try:
        yield store
    finally:
        store._shutdown()
