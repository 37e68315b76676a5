"""Vault's Kubernetes auth method for real: OpenBao's plugin reviews the pod's token with the
Kubernetes API double's TokenReview endpoint, and the driver logs in with the JWT file.

Nothing is stubbed between secretkit, OpenBao and the double: the dev server makes the
TokenReview call itself, with the reviewer JWT it was configured with.
"""

from __future__ import annotations

import base64
import datetime
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import secretkit
from secretkit.errors import AuthenticationError, PermissionDeniedError
from tests.doubles import k8s_api, openbao

MOUNT = "k8s-double"
POLICY = 'path "secret/data/k8s-auth/*" { capabilities = ["create", "update", "read"] }'


@pytest.fixture(autouse=True)
def _no_shell_vault_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    openbao.clean_env(monkeypatch)


def _ca_pem() -> str:
    """Any CA certificate: OpenBao insists on one, though it is unused for an http:// host."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-double-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _segment(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def service_account_jwt(namespace: str, name: str, uid: str) -> str:
    """A legacy service-account token's shape. The signature is never checked by Vault when no
    public keys are configured: the TokenReview is what authenticates it."""
    claims = {
        "iss": "kubernetes/serviceaccount", "aud": ["vault"], "sub": f"system:serviceaccount:{namespace}:{name}",
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/service-account.name": name,
        "kubernetes.io/serviceaccount/service-account.uid": uid,
    }
    return f"{_segment({'alg': 'RS256', 'kid': 'double'})}.{_segment(claims)}.{_segment({'sig': uuid.uuid4().hex})}"


def pod_token(kube: k8s_api.FakeKubeAPI, directory: Path, account: str, *, known: bool = True) -> tuple[Path, str, str]:
    """A service-account JWT in a file, as the kubelet mounts it; ``known`` registers it with
    the API server so a TokenReview authenticates it. Returns (file, jwt, uid)."""
    uid = str(uuid.uuid4())
    jwt = service_account_jwt("shop", account, uid)
    if known:
        kube.add_service_account(jwt, "shop", account, audiences=["vault"], uid=uid)
    token_file = directory / f"token-{account}"
    token_file.write_text(jwt)
    return token_file, jwt, uid


@pytest.fixture(scope="module")
def kube() -> Iterator[k8s_api.FakeKubeAPI]:
    with k8s_api.FakeKubeAPI(tokens={k8s_api.ADMIN_TOKEN: k8s_api.User("system:serviceaccount:kube-system:vault-reviewer")}) as api:
        yield api


@pytest.fixture(scope="module")
def k8s_auth(bao: openbao.OpenBaoServer, kube: k8s_api.FakeKubeAPI) -> str:
    root = bao.client()
    if f"{MOUNT}/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("kubernetes", path=MOUNT)
    root.write(f"auth/{MOUNT}/config", kubernetes_host=kube.url, token_reviewer_jwt=k8s_api.ADMIN_TOKEN,
               disable_local_ca_jwt=True, kubernetes_ca_cert=_ca_pem())
    root.sys.create_or_update_policy("sk-k8s", POLICY)
    root.write(f"auth/{MOUNT}/role/web", bound_service_account_names="web", bound_service_account_namespaces="shop",
               token_policies="sk-k8s", audience="vault", token_ttl="60s")
    return MOUNT


def test_pod_logs_in_with_its_service_account_token(
    bao: openbao.OpenBaoServer, kube: k8s_api.FakeKubeAPI, k8s_auth: str, tmp_path: Path
) -> None:
    token_file, _, uid = pod_token(kube, tmp_path, "web")
    before = len(kube.state.requests)
    with secretkit.open(bao.url(), auth="kubernetes", role="web", jwt_path=str(token_file), auth_mount=k8s_auth) as s:
        s.put("k8s-auth/db", "from-a-pod")
        assert s.get("k8s-auth/db").text == "from-a-pod"
        info = bao.client().auth.token.lookup(s.client.token)["data"]
        assert "sk-k8s" in info["policies"]
        assert info["meta"]["service_account_name"] == "web" and info["meta"]["service_account_uid"] == uid
    reviews = [r for r in kube.state.requests[before:] if r[1].endswith("/tokenreviews")]
    assert len(reviews) == 1  # OpenBao asked the API server, once


def test_a_token_the_api_server_rejects_is_refused(
    bao: openbao.OpenBaoServer, kube: k8s_api.FakeKubeAPI, k8s_auth: str, tmp_path: Path
) -> None:
    token_file, jwt, _ = pod_token(kube, tmp_path, "web", known=False)  # the review says unauthenticated
    with pytest.raises((AuthenticationError, PermissionDeniedError)) as info:
        secretkit.open(bao.url(), auth="kubernetes", role="web", jwt_path=str(token_file), auth_mount=k8s_auth)
    assert jwt not in str(info.value)


def test_a_service_account_outside_the_role_is_refused(
    bao: openbao.OpenBaoServer, kube: k8s_api.FakeKubeAPI, k8s_auth: str, tmp_path: Path
) -> None:
    token_file, _, _ = pod_token(kube, tmp_path, "batch-job")
    with pytest.raises((AuthenticationError, PermissionDeniedError)):
        secretkit.open(bao.url(), auth="kubernetes", role="web", jwt_path=str(token_file), auth_mount=k8s_auth)
