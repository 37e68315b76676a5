"""pytest plugin (entry point ``secretkit``): a fresh in-memory store per test.

    def test_reads_db_password(secret_store):
        secret_store.put("db/password", "x")
        assert my_app.connect(store=secret_store).password == "x"

``secret_store_url`` gives the URL of a store shared by name within the test, for code that
calls ``secretkit.open(os.environ["SECRETKIT_URL"])`` itself; use it with ``monkeypatch``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from secretkit.store import SecretStore


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
