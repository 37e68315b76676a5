"""The options of k8s:// (URL query parameters, keyword arguments of ``open``, config keys)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from secretkit.drivers.kubernetes.codec import DATA_KEY, DEFAULT_VALUE_KEY, DNS_LABEL


def valid_namespace(namespace: str) -> bool:
    return len(namespace) <= 63 and DNS_LABEL.fullmatch(namespace) is not None


class Options(BaseModel):
    """Options of ``k8s://`` (URL query parameters or keyword arguments)."""

    model_config = ConfigDict(extra="forbid")

    host: str | None = Field(None, description="API server URL (e.g. http://127.0.0.1:8001); skips kubeconfig")
    token: SecretStr | None = Field(None, description="bearer token (with host, or to override the kubeconfig's)")
    ca_cert: str | None = Field(None, description="CA bundle file for the API server's certificate")
    verify_tls: bool = Field(True, description="verify the API server's TLS certificate")
    kubeconfig: str | None = Field(None, description="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    context: str | None = Field(None, description="kubeconfig context (default: the current context)")
    in_cluster: bool | None = Field(
        None, description="use the pod's service account; default: when KUBERNETES_SERVICE_HOST is set"
    )
    include_unmanaged: bool = Field(False, description="list() also shows Secrets secretkit did not write")
    value_key: str = Field(DEFAULT_VALUE_KEY, description="the data key holding a text or bytes value")
    pending_namespace: str | None = Field(
        None, description="namespace of rotation's pending companion Secrets (default: the store's namespace)"
    )
    page_size: int = Field(500, ge=1, description="objects per list page (limit/continue)")
    timeout: float = Field(
        30.0, gt=0, description="seconds per socket read of an API request (also capped by the store's retry policy)"
    )
    field_manager: str = Field("secretkit", min_length=1, max_length=128)
    watch_timeout: int = Field(
        5, ge=1, le=600, description="seconds one watch request stays open (bounds how long stopping a watch takes)"
    )

    @field_validator("value_key")
    @classmethod
    def _data_key(cls, key: str) -> str:
        if not DATA_KEY.fullmatch(key) or key in (".", ".."):
            raise ValueError("a Secret data key: 1-253 letters, digits, '-', '_' or '.'")
        return key

    @field_validator("pending_namespace")
    @classmethod
    def _namespace(cls, namespace: str | None) -> str | None:
        if namespace is not None and not valid_namespace(namespace):
            raise ValueError("a Kubernetes namespace name (a DNS-1123 label)")
        return namespace
