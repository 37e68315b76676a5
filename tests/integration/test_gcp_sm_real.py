"""The conformance suite against a real Google Cloud project.

Runs only when ``SECRETKIT_TEST_GCP_PROJECT`` is set (credentials from google-auth's default
chain, e.g. ``gcloud auth application-default login`` or a service account key in
``GOOGLE_APPLICATION_CREDENTIALS``). ``SECRETKIT_TEST_GCP_LOCATION`` switches to regional
secrets; ``SECRETKIT_TEST_GCP_TRANSPORT=rest`` to the REST transport. Every secret it writes
is under a random ``sk-conf-...`` prefix and deleted afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.conformance import StoreConformance

PROJECT = os.environ.get("SECRETKIT_TEST_GCP_PROJECT", "")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not PROJECT, reason="set SECRETKIT_TEST_GCP_PROJECT to run against a real GCP project"),
]


class TestGcpRealProject(StoreConformance):
    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        options = {"transport": os.environ.get("SECRETKIT_TEST_GCP_TRANSPORT", "grpc")}
        location = os.environ.get("SECRETKIT_TEST_GCP_LOCATION")
        if location:
            options["location"] = location
        with secretkit.open(f"gcp-sm://{PROJECT}", **options) as store:
            yield store
