"""The conformance and rotation suites, and the native-client checks, against a real Google Cloud project.

Runs only when ``SECRETKIT_TEST_GCP_PROJECT`` is set (credentials from google-auth's default
chain, e.g. ``gcloud auth application-default login`` or a service account key in
``GOOGLE_APPLICATION_CREDENTIALS``). ``SECRETKIT_TEST_GCP_LOCATION`` switches to regional
secrets; ``SECRETKIT_TEST_GCP_TRANSPORT=rest`` to the REST transport. Every secret it writes
is under a random ``sk-conf-...`` prefix and deleted afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import secretkit
from secretkit.drivers.gcp import codec
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance
from secretkit.testing.rotation import RotationConformance

PROJECT = os.environ.get("SECRETKIT_TEST_GCP_PROJECT", "")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not PROJECT, reason="set SECRETKIT_TEST_GCP_PROJECT to run against a real GCP project"),
]


def _open() -> SecretStore:
    options: dict[str, Any] = {"transport": os.environ.get("SECRETKIT_TEST_GCP_TRANSPORT", "grpc")}
    location = os.environ.get("SECRETKIT_TEST_GCP_LOCATION")
    if location:
        options["location"] = location
    return secretkit.open(f"gcp-sm://{PROJECT}", **options)


class TestGcpRealProject(StoreConformance):
    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        with _open() as store:
            yield store


class TestGcpRealRotation(RotationConformance):
    store = TestGcpRealProject.store


def test_google_client_sees_plain_payloads_and_the_recorded_name() -> None:
    name = f"sk-conf-{uuid.uuid4().hex[:10]}/db.password"
    with _open() as store:
        try:
            store.put(name, {"user": "app", "password": "p"})
            secret = store.client.get_secret(name=f"{store.driver._parent}/secrets/{codec.NAMES.storage_name(name)}")
            assert dict(secret.annotations) == {codec.NAME_ANNOTATION: name}
            latest = store.client.access_secret_version(name=f"{secret.name}/versions/latest")
            assert bytes(latest.payload.data) == b'{"password":"p","user":"app"}'
            assert name in list(store.list(name.split("/")[0]))
        finally:
            store.delete(name, missing_ok=True)
