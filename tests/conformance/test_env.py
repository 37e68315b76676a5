"""The read-only conformance suite against env://, each test under its own variable prefix."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping

import pytest

import secretkit
from secretkit.drivers.env import variable_name
from secretkit.secret import fields_to_json
from secretkit.store import SecretStore
from secretkit.testing.conformance import ReadOnlyStoreConformance, Seed
from secretkit.testing.readers import ReaderAgreement


@pytest.fixture
def prefix() -> str:
    return f"SKT{uuid.uuid4().hex[:8].upper()}_"


class TestEnvStore(ReadOnlyStoreConformance):
    holds_octets = False  # an environment variable cannot hold a NUL byte

    @pytest.fixture
    def store(self, prefix: str) -> Iterator[SecretStore]:
        with secretkit.open(f"env://?prefix={prefix}") as store:
            yield store

    @pytest.fixture
    def seed(self, prefix: str, monkeypatch: pytest.MonkeyPatch) -> Seed:
        def seed(name: str, value: str | bytes | Mapping[str, str]) -> None:
            if isinstance(value, bytes):
                raise AssertionError("holds_octets is False: no octets are seeded")
            # a map as the JSON object secretkit itself would write (canonical: sorted, compact)
            text = fields_to_json(value) if isinstance(value, Mapping) else value
            monkeypatch.setenv(variable_name(name, prefix), text)

        return seed


class TestEnvReaders(ReaderAgreement):
    """Values set as variables: text as it is, a field secret as its JSON object."""

    store = TestEnvStore.store
    seed = TestEnvStore.seed

    @pytest.fixture
    def cli_url(self, prefix: str) -> str:
        return f"env://?prefix={prefix}"
