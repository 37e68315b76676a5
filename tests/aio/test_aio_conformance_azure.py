"""The conformance and rotation suites through the async facade on azure-kv:// (the Key Vault
double, through the real azure-keyvault-secrets client), opened as tests/conformance/test_azure.py
opens it, as tests/aio/test_aio_conformance_remote.py runs the other remote backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.aio.blocking import BlockingFacade, ThroughAsync, ThroughAsyncRotation, through_async
from tests.conformance.test_azure import open_double


class TestAzureThroughAsync(ThroughAsync):
    @pytest.fixture
    def store(self, azure_kv: Any) -> Iterator[BlockingFacade]:
        with open_double(azure_kv) as sync, through_async(sync) as store:
            yield store


class TestAzureRotationThroughAsync(ThroughAsyncRotation):
    store = TestAzureThroughAsync.store
