"""The ``k8s://`` driver: each portable call as the Kubernetes API call it becomes.

| portable call            | Kubernetes API                                                          |
|--------------------------|-------------------------------------------------------------------------|
| ``read``                 | GET the Secret (stages: GET its companion, see ``stages.py``)          |
| ``write``                | PATCH (strategic merge, data replaced, ``type: Opaque``), POST if missing |
|                          | a typed Secret (422 on type): GET, check its keys, PATCH with its type  |
| ``write(create_only)``   | POST; 409 AlreadyExists → ``AlreadyExistsError``                        |
| ``write(if_version)``    | PATCH with ``metadata.resourceVersion``; 409 Conflict → ``ConflictError`` |
| ``delete``               | DELETE its companions, then the Secret                                  |
| ``list``                 | GET list, label selector, ``limit``/``continue`` pages                  |
| ``current_version``      | GET the Secret's ``resourceVersion``                                    |
| ``watch_versions``       | watch with ``fieldSelector=metadata.name=…`` (``watch.py``)             |
| rotation stages          | companion Secrets (``stages.py``)                                       |
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from secretkit.drivers.base import (
    Capabilities,
    ChangeStream,
    Classified,
    ConfigError,
    ConflictError,
    NativeStages,
    NotSupportedError,
    Record,
    SdkClient,
    Stage,
    StoreURL,
    Value,
    VersionInfo,
    VersionProbe,
    host_of,
    upsert,
    validate_options,
)
from secretkit.drivers.kubernetes import config, errors, watch
from secretkit.drivers.kubernetes.api import SecretsApi
from secretkit.drivers.kubernetes.codec import (
    BACKEND,
    LEGACY_KIND_ANNOTATION,
    MANAGED_LABEL,
    MAX_SECRET_BYTES,
    NAME_ANNOTATION,
    NAMES,
    OPAQUE,
    annotations_of,
    check_type,
    decode_value,
    encode_value,
    listed_name,
    metadata_of,
    resource_version,
)
from secretkit.drivers.kubernetes.errors import is_status, rejects_type, rejects_version
from secretkit.drivers.kubernetes.options import Options, valid_namespace
from secretkit.drivers.kubernetes.stages import STAGE_LABEL, Companion

_CURRENT = frozenset({Stage.CURRENT})


class KubernetesDriver:
    """Secrets of one namespace through a ``CoreV1Api``."""

    backend = BACKEND
    protocols = (VersionProbe, NativeStages, ChangeStream, SdkClient)
    capabilities = Capabilities(
        remote=True,
        versions=False,
        compare_and_set=True,
        create_only=True,
        recoverable_delete=False,
        idempotent_put=False,
        max_value_bytes=MAX_SECRET_BYTES,
    )
    names = NAMES
    sdk_loggers = ("kubernetes", "urllib3")
    #: A Secret's ``data`` (base64 values) and ``stringData`` (plain ones) in logged bodies.
    sdk_value_keys = ("data", "stringData")

    def __init__(self, core: Any, namespace: str, opts: Options, *, owns_client: bool) -> None:
        self.client = core
        self.namespace = namespace
        self._opts = opts
        self._owns_client = owns_client
        self._errors = errors.table(str(getattr(core.api_client.configuration, "host", "?")))
        self._api = SecretsApi(core, namespace, timeout=opts.timeout, field_manager=opts.field_manager)
        self._stages = Companion(self._api, opts.pending_namespace, opts.value_key)

    # -- the required calls ------------------------------------------------------------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        if version is not None:
            raise NotSupportedError("Kubernetes Secrets keep no versions")
        obj = self._object(name)
        if stage in (Stage.PENDING, Stage.PREVIOUS):
            return self._stages.read(obj, stage)
        doc = self._api.get(obj)
        return Record(decode_value(doc, self._opts.value_key), resource_version(doc), None, _CURRENT)

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        obj, data = self._object(name), encode_value(value, self._opts.value_key)
        if create_only:
            doc = self._create(name, obj, data)
        elif if_version is not None:
            try:
                doc = self._update(obj, data, if_version)
            except ApiException as exc:
                # CAS against a missing object, or a version the server cannot even parse,
                # means "the current version is not that one".
                if exc.status == 404 or rejects_version(exc, if_version):
                    raise ConflictError(f"current version is not {if_version!r}") from exc
                raise
        else:
            doc = self._upsert(name, obj, data)
        return VersionInfo(name, resource_version(doc), None, _CURRENT)

    def delete(self, name: str, *, purge: bool) -> None:
        obj = self._object(name)
        self._stages.forget(obj)
        self._api.delete(obj)

    def list(self, prefix: str) -> list[str]:
        selector = f"!{STAGE_LABEL}" if self._opts.include_unmanaged else f"{MANAGED_LABEL}=true,!{STAGE_LABEL}"
        found: list[str] = []
        token: str | None = None
        while True:
            doc = self._api.list_page(label_selector=selector, limit=self._opts.page_size, cont=token)
            for item in doc.get("items") or []:
                name = listed_name(str(metadata_of(item).get("name", "")), annotations_of(item))
                if name.startswith(prefix):
                    found.append(name)
            token = metadata_of(doc).get("continue") or None
            if token is None:
                return found

    def versions(self, name: str) -> Sequence[VersionInfo]:
        raise NotSupportedError("Kubernetes Secrets keep no version history")

    @property
    def server_address(self) -> str | None:
        """The host the SDK client talks to (telemetry's ``server.address``)."""
        return host_of(self.client.api_client.configuration.host)

    def classify(self, exc: BaseException) -> Classified | None:
        return self._errors.classify(exc)

    def close(self) -> None:
        if self._owns_client:
            api_client = self.client.api_client
            api_client.close()
            api_client.rest_client.pool_manager.clear()

    # -- VersionProbe, ChangeStream --------------------------------------------------------

    def current_version(self, name: str) -> str:
        """The object's resourceVersion (one GET: the typed client has no metadata-only read)."""
        return resource_version(self._api.get(self._object(name)))

    def watch_versions(self, name: str, stop: threading.Event) -> Iterator[str | None]:
        return watch.watch_versions(self._api, self._object(name), self._opts.watch_timeout, stop)

    # -- NativeStages: companion Secrets (stages.py) -------------------------------------

    def write_pending(self, name: str, value: Value, *, token: str, adopt: bool) -> VersionInfo:
        data = encode_value(value, self._opts.value_key)
        return self._stages.write_pending(name, self._object(name), data, token=token, adopt=adopt)

    def promote(self, name: str, version: str, *, if_current: str) -> VersionInfo:
        return self._stages.promote(name, self._object(name), version, if_current=if_current, stamp=_UPDATE_STAMP)

    def discard_pending(self, name: str, version: str) -> None:
        self._stages.discard(self._object(name), version)

    # -- helpers ---------------------------------------------------------------------------

    def _object(self, name: str) -> str:
        return self.names.storage_name(name)

    def _create(self, name: str, obj: str, data: dict[str, str]) -> dict[str, Any]:
        """POST an Opaque Secret. Only Secrets secretkit creates carry its label (``list()``
        selects on it) and, under a mapped name, the name as written."""
        meta: dict[str, Any] = {"name": obj, "labels": {MANAGED_LABEL: "true"}}
        if self.names.is_mapped(name):
            meta["annotations"] = {NAME_ANNOTATION: name}
        return self._api.create({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": OPAQUE,
                                 "data": data})

    def _update(self, obj: str, data: dict[str, str], resource_version: str | None) -> dict[str, Any]:
        """Replace the data of an existing Secret, never its required keys.

        The patch names the type ``Opaque``; Kubernetes refuses a patch that would change a type
        (422), so a typed Secret (TLS, basic-auth, ...) is never written unless its type is named,
        which happens only after its keys were checked (``check_type``): one request for the
        usual Opaque Secret, and no window between the check and the write.
        """
        try:
            return self._patch(obj, data, resource_version, OPAQUE)
        except ApiException as exc:
            if not rejects_type(exc):
                raise
        secret_type = str(self._api.get(obj).get("type") or OPAQUE)
        check_type(secret_type, data)
        try:
            return self._patch(obj, data, resource_version, secret_type)
        except ApiException as exc:
            if rejects_type(exc):
                raise ConflictError("the Secret was replaced by one of another type meanwhile; put again") from exc
            raise

    def _patch(self, obj: str, data: dict[str, str], resource_version: str | None, secret_type: str
               ) -> dict[str, Any]:
        # A strategic merge patch keeps everyone's labels and annotations, while "$patch:
        # replace" makes the data exactly the new value. It adds no metadata: a Secret someone
        # else created stays theirs (it only loses the annotation older releases of ours wrote).
        meta: dict[str, Any] = dict(_UPDATE_STAMP)
        if resource_version is not None:
            meta["resourceVersion"] = resource_version
        return self._api.patch(obj, {"metadata": meta, "type": secret_type, "data": {"$patch": "replace", **data}})

    def _upsert(self, name: str, obj: str, data: dict[str, str]) -> dict[str, Any]:
        """Patch if it exists, else create; one more patch if someone created it in between."""
        return upsert(
            lambda: self._update(obj, data, None),
            lambda: self._create(name, obj, data),
            missing=lambda exc: is_status(exc, 404),
            exists=lambda exc: is_status(exc, 409, "AlreadyExists"),
            vanished="the Secret was created and deleted concurrently; put again",
        )


#: The metadata of every write to an existing Secret: nothing added, the annotation of older
#: releases removed (None deletes a key in a strategic merge patch).
_UPDATE_STAMP: dict[str, Any] = {"annotations": {LEGACY_KIND_ANNOTATION: None}}


#: The driver classes this factory opens, by the title docs/capabilities.md gives them.
DRIVERS: dict[str, type] = {"k8s": KubernetesDriver}


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> KubernetesDriver:
    """Open ``k8s://NAMESPACE`` (no namespace: the pod's, the kubeconfig context's, or ``default``)."""
    opts = validate_options(Options, options, what="k8s store")
    if url.path not in ("", "/"):
        raise ConfigError("k8s:// takes a namespace only, e.g. k8s://my-namespace")
    namespace = url.host or None
    if client is not None:
        core, owns = config.core_api(client), False
        namespace = namespace or config.pod_namespace()
    else:
        cfg, implied = config.configuration(opts)
        core, owns = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(cfg)), True
        namespace = namespace or implied
    namespace = namespace or "default"
    if not valid_namespace(namespace):
        raise ConfigError(f"{namespace!r} is not a Kubernetes namespace name (a DNS-1123 label)")
    config.pin_retries(core.api_client)
    return KubernetesDriver(core, namespace, opts, owns_client=owns)
