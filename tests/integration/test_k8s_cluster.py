"""The k8s:// conformance suite and Kubernetes checks against a real cluster.

Set ``SECRETKIT_TEST_KUBECONFIG`` to a kubeconfig file (``SECRETKIT_TEST_K8S_CONTEXT`` and
``SECRETKIT_TEST_K8S_NAMESPACE``, default ``default``, optionally). The identity needs
get/list/watch/create/update/patch/delete on secrets in that namespace. Every test writes
under a random prefix and deletes what it wrote (rotation companions included).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

KUBECONFIG = os.environ.get("SECRETKIT_TEST_KUBECONFIG")
if not KUBECONFIG:
    pytest.skip("SECRETKIT_TEST_KUBECONFIG is not set: no real Kubernetes cluster to test against",
                allow_module_level=True)

import kubernetes  # noqa: E402

import conformance.test_k8s as double_suite  # noqa: E402
import secretkit  # noqa: E402
from secretkit.store import SecretStore  # noqa: E402
from secretkit.testing.rotation import RotationConformance  # noqa: E402
from unit.test_kubernetes import KubernetesBehaviour  # noqa: E402

pytestmark = pytest.mark.integration
CONTEXT = os.environ.get("SECRETKIT_TEST_K8S_CONTEXT") or None
NAMESPACE = os.environ.get("SECRETKIT_TEST_K8S_NAMESPACE", "default")


@pytest.fixture
def namespace() -> str:
    return NAMESPACE


def _open() -> SecretStore:
    options: dict[str, Any] = {"kubeconfig": KUBECONFIG}
    if CONTEXT:
        options["context"] = CONTEXT
    return secretkit.open(f"k8s://{NAMESPACE}", **options)


@pytest.fixture
def core() -> Iterator[Any]:
    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=KUBECONFIG, context=CONTEXT, client_configuration=cfg)
    with kubernetes.client.ApiClient(cfg) as client:
        yield kubernetes.client.CoreV1Api(client)


class TestClusterConformance(double_suite.TestKubernetesStore):
    """The suite as on the double, with its Kubernetes-specific ``test_previous_stage``."""

    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        with _open() as s:
            yield s


class TestClusterRotation(RotationConformance):
    store = TestClusterConformance.store


class TestClusterBehaviour(KubernetesBehaviour):
    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        with _open() as s:
            yield s
