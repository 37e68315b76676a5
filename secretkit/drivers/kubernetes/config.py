"""How the options of ``k8s://`` become a configured ``CoreV1Api`` and a namespace."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes

from secretkit.drivers.kubernetes.options import Options, valid_namespace
from secretkit.drivers.base import ConfigError

#: Where a pod finds its service account (token, CA and namespace).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def pod_namespace() -> str | None:
    """The namespace of the pod this runs in, if it runs in one."""
    ns_file = SERVICE_ACCOUNT_DIR / "namespace"
    if ns_file.is_file():
        return ns_file.read_text().strip() or None
    return None


def configuration(opts: Options) -> tuple[Any, str | None]:
    """A client Configuration and the namespace the environment implies (or None)."""
    cfg = kubernetes.client.Configuration()
    loaders: Any = kubernetes.config  # untyped module
    namespace: str | None = None
    in_cluster = opts.in_cluster
    if in_cluster is None:
        in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not (opts.kubeconfig or opts.context)
    try:
        if opts.host:
            cfg.host = opts.host.rstrip("/")
        elif in_cluster:
            loaders.incluster_config.InClusterConfigLoader(
                token_filename=str(SERVICE_ACCOUNT_DIR / "token"),
                cert_filename=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
            ).load_and_set(cfg)
            namespace = pod_namespace()
        else:
            config_file = opts.kubeconfig or os.environ.get("KUBECONFIG") or None
            loaders.load_kube_config(config_file=config_file, context=opts.context, client_configuration=cfg)
            contexts, active = loaders.list_kube_config_contexts(config_file=config_file)
            chosen = next((c for c in contexts if c.get("name") == opts.context), active) if opts.context else active
            namespace = ((chosen or {}).get("context") or {}).get("namespace")
    except (kubernetes.config.ConfigException, OSError) as exc:
        raise ConfigError(f"cannot configure the Kubernetes client: {exc}") from None
    if opts.token is not None:
        cfg.api_key = {"authorization": "Bearer " + opts.token.get_secret_value()}
        cfg.api_key_prefix = {}
        cfg.refresh_api_key_hook = None
    if opts.ca_cert:
        cfg.ssl_ca_cert = opts.ca_cert
    if not opts.verify_tls:
        cfg.verify_ssl = False
    cfg.retries = False
    return cfg, namespace


def core_api(client: Any) -> Any:
    """A ``CoreV1Api`` from what the user passed as ``client=``."""
    if isinstance(client, kubernetes.client.CoreV1Api):
        return client
    if isinstance(client, kubernetes.client.ApiClient):
        return kubernetes.client.CoreV1Api(client)
    raise ConfigError(f"client= must be a kubernetes CoreV1Api or ApiClient, not {type(client).__name__}")


def pin_retries(api_client: Any) -> None:
    """Stop urllib3 from re-sending requests on its own: the store's RetryPolicy decides."""
    api_client.configuration.retries = False
    if hasattr(api_client.configuration, "client_go_retries"):
        api_client.configuration.client_go_retries = False
    pool_manager = api_client.rest_client.pool_manager
    pool_manager.connection_pool_kw["retries"] = False
    pool_manager.clear()  # pools made before keep their own retry setting
