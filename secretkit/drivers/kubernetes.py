"""k8s://NAMESPACE — Kubernetes Secrets (core/v1) through the official ``kubernetes`` client.

One portable secret is one ``Secret`` object (type ``Opaque`` when secretkit creates it):

* fields are the object's ``data`` keys (values base64 on the wire, UTF-8 text here);
* a text or bytes value is stored under the single data key ``value``;
* the annotation ``secretkit.io/kind`` (``text``/``bytes``/``fields``) says which, so every
  value round-trips exactly, including empty ones and a field that is itself called
  ``value``; an object without the annotation (``kubectl create secret generic``) reads as
  fields;
* the label ``secretkit.io/managed=true`` marks objects secretkit wrote; ``list()`` shows
  only those unless ``include_unmanaged=true``.

Object names are DNS-1123 subdomains. A portable name that already is one (and holds no
``z`` followed by two hex digits) is used as is, so kubectl-made secrets are read by their
own name. Any other name is escaped: every character outside ``[a-y0-9-]`` (uppercase,
``_``, ``.``, ``/`` and ``z`` itself) becomes ``z`` plus two lowercase hex digits, e.g.
``payments/DB_pass`` → ``paymentsz2fz44z42z5fpass``. The rule is deterministic, so reads
need no list, and reversible, so ``list()`` returns the names as written. Names whose
object name would exceed 253 characters are rejected before any call.

Kubernetes keeps no history: the version of a secret is the object's ``resourceVersion``
and compare-and-set sends it as a precondition (409 Conflict → ``ConflictError``).
Create-only writes are a create (409 AlreadyExists → ``AlreadyExistsError``). Delete
removes the object (nothing is recoverable).

urllib3's own retries are switched off on the client (also on a client passed in), so the
store's ``RetryPolicy`` is the only retry layer.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from secretkit import names as _names
from secretkit.config import StoreURL, validate
from secretkit.drivers.base import Capabilities, Classified, Record
from secretkit.errors import (
    ConfigError,
    ConflictError,
    DataLossError,
    ErrorCode,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
)
from secretkit.secret import Kind, Stage, Value, VersionInfo

#: Label on every object secretkit writes; ``list()`` selects on it server-side.
MANAGED_LABEL = "secretkit.io/managed"
#: Annotation telling text, bytes and fields apart.
KIND_ANNOTATION = "secretkit.io/kind"
#: The one data key that holds a text or bytes value.
VALUE_KEY = "value"
#: Kubernetes' limit on the decoded size of all data values of one Secret.
MAX_SECRET_BYTES = 1024 * 1024
MAX_OBJECT_NAME = 253
#: Where a pod finds its service account (token, CA and namespace).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

_MARKER = "z"
_ESCAPE = re.compile(r"z[0-9a-f]{2}")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_KEPT = frozenset("abcdefghijklmnopqrstuvwxy0123456789-")
_MAX_DETAIL = 300


class KubernetesOptions(BaseModel):
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
    page_size: int = Field(500, ge=1, description="objects per list page (limit/continue)")
    timeout: float = Field(30.0, gt=0, description="seconds per API request")
    field_manager: str = Field("secretkit", min_length=1, max_length=128)
    watch_timeout: int = Field(
        5, ge=1, le=600, description="seconds one watch request stays open (bounds how long stopping a watch takes)"
    )


# -- names ---------------------------------------------------------------------------


def object_name(name: str) -> str:
    """The Secret object name for a portable name (see the module docstring for the rule)."""
    if _DNS_SUBDOMAIN.fullmatch(name) and not _ESCAPE.search(name):
        return name
    return _names.escape(name, _KEPT.__contains__, _MARKER)


def portable_name(obj_name: str) -> str | None:
    """The portable name an object name stands for, or None if no portable name maps to it."""
    candidate = obj_name
    if _ESCAPE.search(obj_name):
        try:
            candidate = _names.unescape(obj_name, _MARKER)
        except ValueError:
            return None
    try:
        _names.check_name(candidate)
    except InvalidArgumentError:
        return None
    return candidate if object_name(candidate) == obj_name else None


# -- values --------------------------------------------------------------------------


def encode_value(value: Value) -> tuple[str, dict[str, bytes]]:
    """The kind annotation and the raw data map for a portable value."""
    if value.kind is Kind.FIELDS:
        return Kind.FIELDS.value, {k: v if isinstance(v, bytes) else v.encode("utf-8") for k, v in value.map.items()}
    return value.kind.value, {VALUE_KEY: value.to_bytes()}


def decode_value(obj: dict[str, Any]) -> Value:
    """The portable value of a Secret object as the API returns it."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    data: dict[str, bytes] = {}
    for key, encoded in (obj.get("data") or {}).items():
        try:
            data[key] = base64.b64decode(encoded or "", validate=True)
        except (binascii.Error, ValueError):
            raise DataLossError(f"data key {key!r} of the Secret is not valid base64") from None
    kind = annotations.get(KIND_ANNOTATION)
    if kind in (Kind.TEXT.value, Kind.BYTES.value) and set(data) == {VALUE_KEY}:
        raw = data[VALUE_KEY]
        if kind == Kind.BYTES.value:
            return Value(Kind.BYTES, raw)
        try:
            return Value(Kind.TEXT, raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise DataLossError("the Secret is annotated as text but its value is not UTF-8") from None
    fields: dict[str, str] = {}
    for key, raw in data.items():
        try:
            fields[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise NotSupportedError(
                f"data key {key!r} holds bytes that are not UTF-8 text, which a field cannot carry; "
                "read this Secret with the Kubernetes client"
            ) from None
    return Value.of(fields)


def _json(response: Any) -> dict[str, Any]:
    """Parse a raw (``_preload_content=False``) response; same on old and new clients."""
    try:
        raw = response.data
    finally:
        release = getattr(response, "release_conn", None)
        if release is not None:
            release()
    doc = json.loads(raw) if raw else {}
    return doc if isinstance(doc, dict) else {}


def _status_body(exc: ApiException) -> dict[str, Any]:
    """The Status object of an API error (``body`` is bytes on <=v36 clients, str after)."""
    try:
        doc = json.loads(exc.body) if exc.body else {}
    except (TypeError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _rejects_version(exc: ApiException, version: str) -> bool:
    """True when an error answers a conditional write by refusing the resourceVersion itself.

    The API server cannot parse a non-numeric resourceVersion: depending on the version it
    answers 400/422 naming the field, or 500 with the parser's message quoting the value.
    """
    if exc.status not in (400, 422, 500):
        return False
    status = _status_body(exc)
    causes = (status.get("details") or {}).get("causes") or []
    text = " ".join([str(status.get("message", ""))] + [str(c.get("field", "")) for c in causes if isinstance(c, dict)])
    return "resourceversion" in text.lower() or f'"{version}"' in text


# -- the driver ----------------------------------------------------------------------


class KubernetesDriver:
    """Secrets of one namespace through a ``CoreV1Api``."""

    backend = "k8s"
    capabilities = Capabilities(
        versions=False,
        compare_and_set=True,
        create_only=True,
        recoverable_delete=False,
        idempotent_put=False,
        max_value_bytes=MAX_SECRET_BYTES,
    )
    names = _names.portable_rules()
    sdk_loggers = ("kubernetes", "urllib3")

    def __init__(self, api: Any, namespace: str, opts: KubernetesOptions, *, owned: bool) -> None:
        self.client = api
        self.namespace = namespace
        self._opts = opts
        self._owned = owned
        self._timeout = opts.timeout

    # -- checks before I/O ---------------------------------------------------------------

    def check_name(self, name: str) -> None:
        obj = object_name(name)
        if len(obj) > MAX_OBJECT_NAME:
            raise InvalidArgumentError(
                f"name maps to a {len(obj)}-character Kubernetes object name (limit {MAX_OBJECT_NAME}); "
                "each uppercase letter, '_', '.', '/' and 'z' in a name that is not already a lowercase "
                "DNS name takes 3 characters"
            )

    def check_value(self, name: str, value: Value) -> None:
        _, data = encode_value(value)
        total = sum(len(v) for v in data.values())
        if total > MAX_SECRET_BYTES:
            raise InvalidArgumentError(
                f"the Secret's data would be {total} bytes; Kubernetes stores at most {MAX_SECRET_BYTES}"
            )

    # -- calls ---------------------------------------------------------------------------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        obj = self._get(name)
        meta = obj.get("metadata") or {}
        return Record(decode_value(obj), str(meta.get("resourceVersion", "")), None, frozenset({Stage.CURRENT}))

    def current_version(self, name: str) -> str:
        """The object's resourceVersion (Kubernetes has no metadata-only read of one Secret here)."""
        return str((self._get(name).get("metadata") or {}).get("resourceVersion", ""))

    def watch_versions(self, name: str, stop: threading.Event) -> Iterator[str | None]:
        """Stream the object's resourceVersion on every change (None once deleted) with the API
        server's watch, until ``stop`` is set; the first item is the state when watching starts.

        Each watch request lasts ``watch_timeout`` seconds and resumes from the last version
        seen, so no change is missed between requests; when the server has compacted that
        version away (410 Gone) the object is listed again and watching restarts from there.
        """
        selector = f"metadata.name={object_name(name)}"
        watch: Any = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
        done = threading.Event()

        def closer() -> None:
            # Watch.stop() shuts the socket of the response being read (kubernetes >= 37; older
            # clients notice at the end of the request). Repeated, because a stop landing
            # between two requests is undone when the next one starts.
            while not done.wait(0.1):
                if stop.is_set():
                    watch.stop()

        threading.Thread(target=closer, name="secretkit-k8s-watch-closer", daemon=True).start()
        try:
            yield from self._follow(selector, watch, stop)
        except Exception:
            if not stop.is_set():
                raise  # else: the closer cut the stream
        finally:
            done.set()

    def _follow(self, selector: str, watch: Any, stop: threading.Event) -> Iterator[str | None]:
        last: str | None = None
        resume: str | None = None
        first = True
        while not stop.is_set():
            if resume is None:  # (re)list: the current state, and the version to watch from
                doc = _json(self.client.list_namespaced_secret(
                    self.namespace, field_selector=selector, _preload_content=False, _request_timeout=self._timeout
                ))
                items = doc.get("items") or []
                current = str(items[0]["metadata"]["resourceVersion"]) if items else None
                resume = str((doc.get("metadata") or {}).get("resourceVersion") or "") or None
                if first or current != last:
                    first, last = False, current
                    yield current
            try:
                for event in watch.stream(
                    self.client.list_namespaced_secret, self.namespace, field_selector=selector,
                    resource_version=resume, timeout_seconds=self._opts.watch_timeout, allow_watch_bookmarks=True,
                    _request_timeout=self._opts.watch_timeout + self._timeout,
                ):
                    meta = (event.get("raw_object") or {}).get("metadata") or {}
                    resume = str(meta.get("resourceVersion") or resume)
                    if event.get("type") == "BOOKMARK":
                        continue
                    version = None if event.get("type") == "DELETED" else resume
                    if version != last:
                        last = version
                        yield version
                    if stop.is_set():
                        return
            except ApiException as exc:
                if exc.status != 410:  # 410 Gone: our resume point was compacted away; list again
                    raise
                resume = None

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        obj = object_name(name)
        kind, data = encode_value(value)
        if create_only:
            doc = self._create(obj, kind, data)
        elif if_version is not None:
            try:
                doc = self._patch(obj, kind, data, if_version)
            except ApiException as exc:
                # CAS against a missing object, or a version the server cannot even parse,
                # means "the current version is not that one".
                if exc.status == 404 or _rejects_version(exc, if_version):
                    raise ConflictError(f"current version is not {if_version!r}") from exc
                raise
        else:
            doc = self._upsert(obj, kind, data)
        version = str((doc.get("metadata") or {}).get("resourceVersion", ""))
        return VersionInfo(name, version, None, frozenset({Stage.CURRENT}))

    def delete(self, name: str, *, purge: bool) -> None:
        obj = object_name(name)
        if len(obj) > MAX_OBJECT_NAME:
            raise NotFoundError("secret not found")
        _json(self.client.delete_namespaced_secret(
            obj, self.namespace, _preload_content=False, _request_timeout=self._timeout
        ))

    def list(self, prefix: str) -> list[str]:
        found: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": self._opts.page_size, "_preload_content": False,
                                      "_request_timeout": self._timeout}
            if not self._opts.include_unmanaged:
                kwargs["label_selector"] = f"{MANAGED_LABEL}=true"
            if token:
                kwargs["_continue"] = token
            doc = _json(self.client.list_namespaced_secret(self.namespace, **kwargs))
            for item in doc.get("items") or []:
                name = portable_name(str((item.get("metadata") or {}).get("name", "")))
                if name is not None and name.startswith(prefix):
                    found.append(name)
            token = (doc.get("metadata") or {}).get("continue") or None
            if token is None:
                return found

    def versions(self, name: str) -> Sequence[VersionInfo]:
        raise NotSupportedError("Kubernetes Secrets keep no version history")

    def classify(self, exc: BaseException) -> Classified | None:
        if isinstance(exc, ApiException):
            return _classify_api(exc)
        if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
            exc = exc.reason
        where = f"Kubernetes API at {self._host()}"
        if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):  # NewConnectionError included
            return Classified(ErrorCode.UNAVAILABLE, f"cannot connect to the {where}: {type(exc).__name__}")
        if isinstance(exc, (urllib3.exceptions.ReadTimeoutError, socket.timeout, TimeoutError)):
            return Classified(ErrorCode.DEADLINE_EXCEEDED, f"the {where} did not answer in time")
        if isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, OSError)):
            return Classified(ErrorCode.UNAVAILABLE, f"connection to the {where} failed: {type(exc).__name__}")
        if isinstance(exc, kubernetes.config.ConfigException):
            return Classified(ErrorCode.CONFIG, f"Kubernetes client configuration: {exc}")
        return None

    def close(self) -> None:
        if self._owned:
            api_client = self.client.api_client
            api_client.close()
            api_client.rest_client.pool_manager.clear()

    # -- helpers -------------------------------------------------------------------------

    def _host(self) -> str:
        return str(getattr(self.client.api_client.configuration, "host", "?"))

    def _get(self, name: str) -> dict[str, Any]:
        obj = object_name(name)
        if len(obj) > MAX_OBJECT_NAME:
            raise NotFoundError("secret not found")  # no object can have that name
        return _json(self.client.read_namespaced_secret(
            obj, self.namespace, _preload_content=False, _request_timeout=self._timeout
        ))

    def _create(self, obj: str, kind: str, data: dict[str, bytes]) -> dict[str, Any]:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": obj, "labels": {MANAGED_LABEL: "true"}, "annotations": {KIND_ANNOTATION: kind}},
            "type": "Opaque",
            "data": {k: base64.b64encode(v).decode("ascii") for k, v in data.items()},
        }
        return _json(self.client.create_namespaced_secret(
            self.namespace, body, field_manager=self._opts.field_manager,
            _preload_content=False, _request_timeout=self._timeout,
        ))

    def _patch(self, obj: str, kind: str, data: dict[str, bytes], resource_version: str | None) -> dict[str, Any]:
        # A strategic merge patch keeps the object's type and anyone else's labels and
        # annotations, while "$patch: replace" makes the data exactly the new value.
        metadata: dict[str, Any] = {"labels": {MANAGED_LABEL: "true"}, "annotations": {KIND_ANNOTATION: kind}}
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        body = {
            "metadata": metadata,
            "data": {"$patch": "replace", **{k: base64.b64encode(v).decode("ascii") for k, v in data.items()}},
        }
        return _json(self.client.patch_namespaced_secret(
            obj, self.namespace, body, field_manager=self._opts.field_manager,
            _content_type="application/strategic-merge-patch+json",
            _preload_content=False, _request_timeout=self._timeout,
        ))

    def _upsert(self, obj: str, kind: str, data: dict[str, bytes]) -> dict[str, Any]:
        """Patch if it exists, else create; one more patch if someone created it in between."""
        try:
            return self._patch(obj, kind, data, None)
        except ApiException as exc:
            if exc.status != 404:
                raise
        try:
            return self._create(obj, kind, data)
        except ApiException as exc:
            if exc.status != 409 or _status_body(exc).get("reason") != "AlreadyExists":
                raise
        try:
            return self._patch(obj, kind, data, None)
        except ApiException as exc:
            if exc.status == 404:
                raise ConflictError("the Secret was created and deleted concurrently; put again") from exc
            raise


def _classify_api(exc: ApiException) -> Classified:
    status = _status_body(exc)
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or exc.reason or "").strip()
    code = int(exc.status or 0)
    detail = f"Kubernetes API {code or 'error'} {reason or exc.reason or ''}: {message}"[:_MAX_DETAIL]
    if code == 0:  # the client's wrapping of a TLS failure
        if "CERTIFICATE_VERIFY_FAILED" in message:
            return Classified(ErrorCode.CONFIG, detail)
        return Classified(ErrorCode.UNAVAILABLE, detail)
    if code == 409:
        if reason == "AlreadyExists":
            return Classified(ErrorCode.ALREADY_EXISTS, detail)
        return Classified(ErrorCode.CONFLICT, detail)
    if code == 422 and "immutable" in message:
        return Classified(
            ErrorCode.INVALID_ARGUMENT,
            "the Secret is immutable: Kubernetes rejects any change to its data; delete it and put it again",
        )
    by_status = {
        400: ErrorCode.INVALID_ARGUMENT,
        401: ErrorCode.UNAUTHENTICATED,
        403: ErrorCode.PERMISSION_DENIED,
        404: ErrorCode.NOT_FOUND,
        405: ErrorCode.NOT_SUPPORTED,
        410: ErrorCode.UNAVAILABLE,  # expired list continuation: the whole list is tried again
        413: ErrorCode.INVALID_ARGUMENT,
        415: ErrorCode.NOT_SUPPORTED,
        422: ErrorCode.INVALID_ARGUMENT,
        429: ErrorCode.THROTTLED,
        504: ErrorCode.DEADLINE_EXCEEDED,
    }
    if code in by_status:
        return Classified(by_status[code], detail)
    if code >= 500:
        return Classified(ErrorCode.UNAVAILABLE, detail)
    return Classified(ErrorCode.UNKNOWN, detail)


# -- opening -------------------------------------------------------------------------


def _configuration(opts: KubernetesOptions) -> tuple[Any, str | None]:
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
            ns_file = SERVICE_ACCOUNT_DIR / "namespace"
            if ns_file.is_file():
                namespace = ns_file.read_text().strip() or None
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


def _core_api(client: Any) -> Any:
    if isinstance(client, kubernetes.client.CoreV1Api):
        return client
    if isinstance(client, kubernetes.client.ApiClient):
        return kubernetes.client.CoreV1Api(client)
    raise ConfigError(f"client= must be a kubernetes CoreV1Api or ApiClient, not {type(client).__name__}")


def _pin_retries(api_client: Any) -> None:
    """Stop urllib3 from re-sending requests on its own: the store's RetryPolicy decides."""
    api_client.configuration.retries = False
    if hasattr(api_client.configuration, "client_go_retries"):
        api_client.configuration.client_go_retries = False
    pool_manager = api_client.rest_client.pool_manager
    pool_manager.connection_pool_kw["retries"] = False
    pool_manager.clear()  # pools made before keep their own retry setting


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> KubernetesDriver:
    """Open ``k8s://NAMESPACE`` (no namespace: the pod's, the kubeconfig context's, or ``default``)."""
    opts = validate(KubernetesOptions, options, what="k8s store")
    if url.path not in ("", "/"):
        raise ConfigError("k8s:// takes a namespace only, e.g. k8s://my-namespace")
    namespace = url.host or None
    if client is not None:
        api, owned = _core_api(client), False
        if namespace is None and (SERVICE_ACCOUNT_DIR / "namespace").is_file():
            namespace = (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip() or None
    else:
        cfg, implied = _configuration(opts)
        api, owned = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(cfg)), True
        namespace = namespace or implied
    namespace = namespace or "default"
    if len(namespace) > 63 or not _DNS_LABEL.fullmatch(namespace):
        raise ConfigError(f"{namespace!r} is not a Kubernetes namespace name (a DNS-1123 label)")
    _pin_retries(api.api_client)
    return KubernetesDriver(api, namespace, opts, owned=owned)
