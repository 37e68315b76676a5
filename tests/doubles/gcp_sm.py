"""A wire-level double of Google Cloud Secret Manager v1, for the real client library.

One in-memory model (``SecretManagerModel``) is served two ways, on loopback ports:

* gRPC: ``google.cloud.secretmanager.v1.SecretManagerService`` with a generic handler that
  (de)serializes with the client library's own protobuf message classes;
* REST: the ``/v1/...`` HTTP bindings with proto3 JSON bodies (what ``transport="rest"`` sends).

The model follows the wire reference: responses name the project by number, version ids
count from 1 per secret and are never reused, ``latest`` is the newest version whatever its
state, version aliases (set with UpdateSecret, checked as resources.proto says) resolve on
Get/Access only, disabled/destroyed versions fail access with
FAILED_PRECONDITION, etags are checked where the API takes them, CRC32C is verified on add
and returned on access, payloads are 1..65536 bytes, lists are newest first and paged.

Test hooks: ``fail(rpc, code, times)`` queues server-side faults, ``fail_randomly(rpc, code,
probability, seed=...)`` fails calls at random (seeded) until turned off, ``injected`` counts
the faults answered, ``corrupt_next_access``
flips a payload bit (keeping the stored checksum), ``stall[rpc]`` delays one call, ``before[rpc]``
runs a callback once before a call, ``calls`` counts requests per RPC and ``last_request`` keeps
the latest request of each.
"""

from __future__ import annotations

import atexit
import itertools
import json
import random
import re
import threading
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import google_crc32c
import grpc
from google.cloud.secretmanager_v1.types import resources, service
from google.protobuf import empty_pb2, json_format, timestamp_pb2

from tests.doubles.grpc_model import ModelError, method_of, unary_handler

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
MAX_PAYLOAD = 65536
ENABLED, DISABLED, DESTROYED = 1, 2, 3
_STATE_NAMES = {ENABLED: "ENABLED", DISABLED: "DISABLED", DESTROYED: "DESTROYED"}
_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
#: A version alias (resources.proto ``version_aliases``): 1-63 ASCII letters, digits, ``_`` and
#: ``-`` starting with a letter, never ``latest`` or ``NEW``; at most 50 per secret.
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
_RESERVED_ALIASES = ("latest", "NEW")
MAX_ALIASES = 50
_NUMBER = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() would take '２' and '٣' as numbers
_ANNOTATION_KEY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")
MAX_LABELS = 64
MAX_ANNOTATIONS_SIZE = 16 * 1024  # keys and values together must be smaller than this
_PARENT = r"projects/(?P<project>[^/]+)(?:/locations/(?P<location>[^/]+))?"
_SECRET = _PARENT + r"/secrets/(?P<secret>[^/:]+)"
_VERSION = _SECRET + r"/versions/(?P<version>[^/:]+)"

Secret = resources.Secret.pb()
SecretVersion = resources.SecretVersion.pb()
Code = grpc.StatusCode

HTTP_STATUS = {
    Code.INVALID_ARGUMENT: 400, Code.FAILED_PRECONDITION: 400, Code.OUT_OF_RANGE: 400,
    Code.UNAUTHENTICATED: 401, Code.PERMISSION_DENIED: 403, Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409, Code.ABORTED: 409, Code.RESOURCE_EXHAUSTED: 429,
    Code.INTERNAL: 500, Code.UNKNOWN: 500, Code.UNIMPLEMENTED: 501, Code.UNAVAILABLE: 503,
    Code.DEADLINE_EXCEEDED: 504,
}


@dataclass
class _Version:
    number: int
    data: bytes
    crc: int
    client_crc: bool
    create_time: timestamp_pb2.Timestamp
    state: int = ENABLED
    etag: str = ""
    destroy_time: timestamp_pb2.Timestamp | None = None


@dataclass
class _Secret:
    meta: Any  # a resources.Secret protobuf (name filled in on output)
    seq: int
    versions: dict[int, _Version] = field(default_factory=dict)
    next_version: int = 1


def _etag() -> str:
    return f'"{uuid.uuid4().hex[:16]}"'


def _now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


class SecretManagerModel:
    """Secrets of one project, served at one location (None = the global endpoint)."""

    def __init__(self, project_id: str = "test-project", project_number: str = "123456789012",
                 location: str | None = None, page_size_cap: int = 25000) -> None:
        self.project_id = project_id
        self.project_number = project_number
        self.location = location
        self.page_size_cap = page_size_cap
        self.calls: Counter[str] = Counter()
        self.last_request: dict[str, Any] = {}
        self.before: dict[str, Callable[[], None]] = {}
        self.stall: dict[str, float] = {}
        self.corrupt_next_access = 0
        self._faults: list[tuple[str | None, grpc.StatusCode, str]] = []
        self._random_fault: tuple[str | None, grpc.StatusCode, float, str] | None = None
        self._fault_rng = random.Random(0)
        self.injected: Counter[str] = Counter()
        self._secrets: dict[str, _Secret] = {}
        self._seq = itertools.count()
        self._lock = threading.RLock()

    # -- test hooks ---------------------------------------------------------------------

    def fail(self, rpc: str | None, code: grpc.StatusCode, times: int = 1, message: str = "injected fault") -> None:
        """The next ``times`` calls of ``rpc`` (any RPC if None) fail with ``code``."""
        with self._lock:
            self._faults.extend([(rpc, code, message)] * times)

    def fail_randomly(self, rpc: str | None, code: grpc.StatusCode, probability: float, *, seed: int = 0,
                      message: str = "injected fault") -> None:
        """From now on each call of ``rpc`` (any RPC if None) fails with ``code`` with ``probability``.

        Draws come from ``random.Random(seed)``, so a single-threaded test sees the same
        sequence every run; ``probability=0`` turns it off. Queued ``fail`` faults go first.
        """
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability is in [0, 1]")
        with self._lock:
            self._random_fault = (rpc, code, probability, message) if probability else None
            self._fault_rng = random.Random(seed)

    def reset(self) -> None:
        with self._lock:
            self._secrets.clear()
            self._faults.clear()
            self._random_fault = None
            self.injected.clear()
            self.calls.clear()
            self.last_request.clear()
            self.before.clear()
            self.stall.clear()
            self.corrupt_next_access = 0

    def dispatch(self, rpc: str, request: Any) -> Any:
        delay = self.stall.pop(rpc, 0.0)
        if delay:
            time.sleep(delay)  # outside the lock: only this call is slow
        hook = self.before.pop(rpc, None)
        if hook is not None:
            hook()  # e.g. another writer acting just before this request arrives
        with self._lock:
            self.calls[rpc] += 1
            self.last_request[rpc] = request
            for i, (target, code, message) in enumerate(self._faults):
                if target in (None, rpc):
                    del self._faults[i]
                    self.injected[rpc] += 1
                    raise ModelError(code, message)
            if self._random_fault is not None and self._random_fault[0] in (None, rpc):
                _, code, probability, message = self._random_fault
                if self._fault_rng.random() < probability:
                    self.injected[rpc] += 1
                    raise ModelError(code, message)
            handler = method_of(self, rpc)
            return handler(request)

    # -- names --------------------------------------------------------------------------

    def _check_parent(self, project: str, location: str | None) -> None:
        if project not in (self.project_id, self.project_number):
            raise ModelError(Code.PERMISSION_DENIED, f"Permission denied on resource project {project}.")
        if location != self.location:
            where = f"location [{location}]" if location else "global secrets"
            raise ModelError(Code.INVALID_ARGUMENT, f"This endpoint does not serve {where}.")

    def _prefix(self) -> str:
        loc = f"/locations/{self.location}" if self.location else ""
        return f"projects/{self.project_number}{loc}"

    def _parse(self, pattern: str, value: str) -> dict[str, str]:
        m = re.fullmatch(pattern, value)
        if m is None:
            raise ModelError(Code.INVALID_ARGUMENT, f"Resource ID [{value}] is not in a valid format.")
        self._check_parent(m["project"], m["location"])
        if "secret" in m.groupdict() and not _ID.fullmatch(m["secret"]):
            raise ModelError(Code.INVALID_ARGUMENT, f"Resource ID [{value}] is not in a valid format.")
        return m.groupdict()

    def _secret(self, name: str) -> tuple[str, _Secret]:
        sid = self._parse(_SECRET, name)["secret"]
        found = self._secrets.get(sid)
        if found is None:
            raise ModelError(Code.NOT_FOUND, f"Secret [{self._prefix()}/secrets/{sid}] not found.")
        return sid, found

    def _version(self, name: str, *, aliases: bool = False) -> tuple[str, _Secret, _Version]:
        """The version ``name`` names: a number, ``latest``, or (``aliases``: Get and Access
        only) one of the secret's version aliases."""
        ref = self._parse(_VERSION, name)["version"]
        sid, sec = self._secret(name.rsplit("/versions/", 1)[0])
        number: int | None
        if ref == "latest":
            if not sec.versions:
                raise ModelError(Code.NOT_FOUND, f"Secret [{self._prefix()}/secrets/{sid}] not found or has no versions.")
            number = max(sec.versions)
        elif _NUMBER.fullmatch(ref):
            number = int(ref)
        elif not aliases:
            raise ModelError(Code.INVALID_ARGUMENT, f"Resource ID [{name}] is not in a valid format.")
        else:
            number = sec.meta.version_aliases.get(ref)
            if number is None:
                raise ModelError(Code.NOT_FOUND, f"Secret Version alias [{ref}] not found for secret [{sid}].")
        version = sec.versions.get(number)
        if version is None:
            raise ModelError(Code.NOT_FOUND, f"Secret Version [{self._prefix()}/secrets/{sid}/versions/{ref}] not found.")
        return sid, sec, version

    def _secret_out(self, sid: str, sec: _Secret) -> Any:
        out = Secret()
        out.CopyFrom(sec.meta)
        out.name = f"{self._prefix()}/secrets/{sid}"
        return out

    def _version_out(self, sid: str, v: _Version) -> Any:
        out = SecretVersion(
            name=f"{self._prefix()}/secrets/{sid}/versions/{v.number}", state=v.state, etag=v.etag,
            client_specified_payload_checksum=v.client_crc,
        )
        out.create_time.CopyFrom(v.create_time)
        if v.destroy_time is not None:
            out.destroy_time.CopyFrom(v.destroy_time)
        return out

    @staticmethod
    def _check_etag(given: str, current: str) -> None:
        if given and given != current:
            raise ModelError(Code.FAILED_PRECONDITION, "The etag provided in the request does not match the current etag.")

    @staticmethod
    def _page(items: list[Any], size: int, token: str, cap: int) -> tuple[list[Any], str]:
        start = int(token) if token.isdigit() else 0
        if token and not token.isdigit():
            raise ModelError(Code.INVALID_ARGUMENT, "Invalid page token.")
        size = min(size or cap, cap, 25000)
        end = start + size
        return items[start:end], (str(end) if end < len(items) else "")

    # -- secrets ------------------------------------------------------------------------

    def _create_secret(self, req: Any) -> Any:
        self._parse(_PARENT, req.parent)
        sid = req.secret_id
        if not _ID.fullmatch(sid):
            raise ModelError(Code.INVALID_ARGUMENT, f"Resource ID [{sid}] is not in a valid format.")
        if sid in self._secrets:
            raise ModelError(Code.ALREADY_EXISTS, f"Secret [{self._prefix()}/secrets/{sid}] already exists.")
        has_replication = req.secret.HasField("replication")
        if self.location is None and not has_replication:
            raise ModelError(Code.INVALID_ARGUMENT, "Field [replication] is required.")
        if self.location is not None and has_replication:
            raise ModelError(Code.INVALID_ARGUMENT, "Regional secrets do not take a replication policy.")
        if has_replication and req.secret.replication.HasField("user_managed") and not req.secret.replication.user_managed.replicas:
            raise ModelError(Code.INVALID_ARGUMENT, "Field [replication.user_managed.replicas] is required.")
        check_labels(req.secret.labels)
        check_annotations(req.secret.annotations)
        meta = Secret()
        meta.CopyFrom(req.secret)
        meta.ClearField("name")
        meta.create_time.CopyFrom(_now())
        meta.etag = _etag()
        check_aliases(meta.version_aliases, {})  # a new secret has no versions to name
        self._secrets[sid] = _Secret(meta, next(self._seq))
        return self._secret_out(sid, self._secrets[sid])

    def _get_secret(self, req: Any) -> Any:
        return self._secret_out(*self._secret(req.name))

    def _update_secret(self, req: Any) -> Any:
        sid, sec = self._secret(req.secret.name)
        self._check_etag(req.secret.etag, sec.meta.etag)
        paths = [p for p in req.update_mask.paths]
        if not paths:
            raise ModelError(Code.INVALID_ARGUMENT, "Field [update_mask] is required.")
        for path in paths:
            if path == "version_aliases":
                check_aliases(req.secret.version_aliases, sec.versions)
            if path not in ("labels", "annotations", "version_aliases"):
                raise ModelError(Code.INVALID_ARGUMENT, f"Field [{path}] cannot be updated by this double.")
            if path == "labels":
                check_labels(req.secret.labels)
            if path == "annotations":
                check_annotations(req.secret.annotations)
            sec.meta.ClearField(path)
            getattr(sec.meta, path).update(getattr(req.secret, path))
        sec.meta.etag = _etag()
        return self._secret_out(sid, sec)

    def _delete_secret(self, req: Any) -> Any:
        sid, sec = self._secret(req.name)
        self._check_etag(req.etag, sec.meta.etag)
        del self._secrets[sid]
        return empty_pb2.Empty()

    def _list_secrets(self, req: Any) -> Any:
        self._parse(_PARENT, req.parent)
        wanted = _name_filter(req.filter)
        items = sorted(((sid, s) for sid, s in self._secrets.items() if wanted(sid)), key=lambda i: -i[1].seq)
        page, token = self._page(items, req.page_size, req.page_token, self.page_size_cap)
        out = service.ListSecretsResponse.pb()(next_page_token=token, total_size=0 if req.filter else len(items))
        out.secrets.extend(self._secret_out(sid, s) for sid, s in page)
        return out

    # -- versions -----------------------------------------------------------------------

    def _add_secret_version(self, req: Any) -> Any:
        sid, sec = self._secret(req.parent)
        data = req.payload.data
        if not data:
            raise ModelError(Code.INVALID_ARGUMENT, "Field [payload] is required.")
        if len(data) > MAX_PAYLOAD:
            raise ModelError(Code.INVALID_ARGUMENT, f"Secret payload data must be no larger than {MAX_PAYLOAD} bytes.")
        crc = google_crc32c.value(data)
        client_crc = req.payload.HasField("data_crc32c")
        if client_crc and req.payload.data_crc32c != crc:
            raise ModelError(Code.INVALID_ARGUMENT, "Checksum mismatch: the data_crc32c sent does not match the payload.")
        version = _Version(sec.next_version, bytes(data), crc, client_crc, _now(), etag=_etag())
        sec.versions[version.number] = version
        sec.next_version += 1
        return self._version_out(sid, version)

    def _get_secret_version(self, req: Any) -> Any:
        sid, _, version = self._version(req.name, aliases=True)
        return self._version_out(sid, version)

    def _access_secret_version(self, req: Any) -> Any:
        sid, _, version = self._version(req.name, aliases=True)
        name = f"{self._prefix()}/secrets/{sid}/versions/{version.number}"
        if version.state != ENABLED:
            raise ModelError(Code.FAILED_PRECONDITION, f"Secret Version [{name}] is in {_STATE_NAMES[version.state]} state.")
        data = version.data
        if self.corrupt_next_access:
            self.corrupt_next_access -= 1
            data = bytes([data[0] ^ 0x01]) + data[1:]
        out = service.AccessSecretVersionResponse.pb()(name=name)
        out.payload.data = data
        out.payload.data_crc32c = version.crc
        return out

    def _list_secret_versions(self, req: Any) -> Any:
        sid, sec = self._secret(req.parent)
        states = {ENABLED, DISABLED, DESTROYED}
        if req.filter:
            m = re.fullmatch(r"state:(ENABLED|DISABLED|DESTROYED)", req.filter.strip())
            if m is None:
                raise ModelError(Code.INVALID_ARGUMENT, f"Invalid filter [{req.filter}].")
            states = {v for v, n in _STATE_NAMES.items() if n == m[1]}
        items = [v for _, v in sorted(sec.versions.items(), reverse=True) if v.state in states]
        page, token = self._page(items, req.page_size, req.page_token, self.page_size_cap)
        out = service.ListSecretVersionsResponse.pb()(next_page_token=token, total_size=0 if req.filter else len(items))
        out.versions.extend(self._version_out(sid, v) for v in page)
        return out

    def _change_state(self, req: Any, target: int) -> Any:
        sid, _, version = self._version(req.name)
        self._check_etag(req.etag, version.etag)
        if version.state == DESTROYED and target != DESTROYED:
            name = f"{self._prefix()}/secrets/{sid}/versions/{version.number}"
            raise ModelError(Code.FAILED_PRECONDITION, f"Secret Version [{name}] is in DESTROYED state.")
        version.state = target
        if target == DESTROYED and version.destroy_time is None:
            version.data = b""
            version.destroy_time = _now()
        version.etag = _etag()
        return self._version_out(sid, version)

    def _disable_secret_version(self, req: Any) -> Any:
        return self._change_state(req, DISABLED)

    def _enable_secret_version(self, req: Any) -> Any:
        return self._change_state(req, ENABLED)

    def _destroy_secret_version(self, req: Any) -> Any:
        return self._change_state(req, DESTROYED)


def _label_text(text: str, *, first: bool) -> bool:
    """``[\\p{Ll}\\p{Lo}][\\p{Ll}\\p{Lo}\\p{N}_-]*`` (``first``) or ``[\\p{Ll}\\p{Lo}\\p{N}_-]*``."""
    for i, ch in enumerate(text):
        category = unicodedata.category(ch)
        if category in ("Ll", "Lo") or (not (first and i == 0) and (category.startswith("N") or ch in "_-")):
            continue
        return False
    return True


def check_labels(labels: Any) -> None:
    """The label rules of resources.proto: at most 64; keys 1-63 characters matching
    ``[\\p{Ll}\\p{Lo}][\\p{Ll}\\p{Lo}\\p{N}_-]{0,62}``, values 0-63 matching
    ``[\\p{Ll}\\p{Lo}\\p{N}_-]{0,63}``, each at most 128 bytes of UTF-8."""
    if len(labels) > MAX_LABELS:
        raise ModelError(Code.INVALID_ARGUMENT, f"A secret can have at most {MAX_LABELS} labels.")
    for key, value in labels.items():
        if not (1 <= len(key) <= 63 and len(key.encode()) <= 128 and _label_text(key, first=True)):
            raise ModelError(Code.INVALID_ARGUMENT, f"Label key [{key}] is not valid.")
        if not (len(value) <= 63 and len(value.encode()) <= 128 and _label_text(value, first=False)):
            raise ModelError(Code.INVALID_ARGUMENT, f"Label value [{value}] of key [{key}] is not valid.")


def check_aliases(aliases: Any, versions: Any) -> None:
    """The version alias rules of resources.proto: at most 50, each name ``[A-Za-z][A-Za-z0-9_-]{0,62}``
    other than ``latest`` and ``NEW``, each naming a version the secret has."""
    if len(aliases) > MAX_ALIASES:
        raise ModelError(Code.INVALID_ARGUMENT, f"A secret can have at most {MAX_ALIASES} version aliases.")
    for alias, number in aliases.items():
        if not _ALIAS.fullmatch(alias) or alias in _RESERVED_ALIASES:
            raise ModelError(Code.INVALID_ARGUMENT, f"Version alias [{alias}] is not valid.")
        if number not in versions:
            raise ModelError(Code.INVALID_ARGUMENT, f"Version alias [{alias}] refers to a missing version [{number}].")


def check_annotations(annotations: Any) -> None:
    """The annotation rules of resources.proto: keys 1-63 characters (at most 128 bytes of
    UTF-8) that begin and end with an ASCII letter or digit and hold only those, ``-``, ``_`` and
    ``.`` in between; keys and values together smaller than 16 KiB."""
    total = 0
    for key, value in annotations.items():
        if not (_ANNOTATION_KEY.fullmatch(key) and len(key.encode()) <= 128):
            raise ModelError(Code.INVALID_ARGUMENT, f"Annotation key [{key}] is not valid.")
        total += len(key.encode()) + len(value.encode())
    if total >= MAX_ANNOTATIONS_SIZE:
        raise ModelError(
            Code.INVALID_ARGUMENT, f"The total size of annotation keys and values must be less than 16KiB (got {total} bytes)."
        )


def _name_filter(expr: str) -> Callable[[str], bool]:
    """The subset of the filter language the double understands: ``name:VALUE`` terms joined by OR."""
    if not expr.strip():
        return lambda sid: True
    terms = []
    for term in re.split(r"\s+OR\s+", expr.strip()):
        m = re.fullmatch(r'name:(?:"([^"]*)"|([A-Za-z0-9_-]+))', term.strip())
        if m is None:
            raise ModelError(Code.INVALID_ARGUMENT, f"Invalid filter [{expr}].")
        terms.append(m[1] if m[1] is not None else m[2])
    return lambda sid: any(t in sid for t in terms)


# -- gRPC -----------------------------------------------------------------------------------

#: rpc → (request class, response class); all are the client library's protobuf classes.
RPCS: dict[str, tuple[Any, Any]] = {
    "CreateSecret": (service.CreateSecretRequest.pb(), Secret),
    "GetSecret": (service.GetSecretRequest.pb(), Secret),
    "UpdateSecret": (service.UpdateSecretRequest.pb(), Secret),
    "DeleteSecret": (service.DeleteSecretRequest.pb(), empty_pb2.Empty),
    "ListSecrets": (service.ListSecretsRequest.pb(), service.ListSecretsResponse.pb()),
    "AddSecretVersion": (service.AddSecretVersionRequest.pb(), SecretVersion),
    "GetSecretVersion": (service.GetSecretVersionRequest.pb(), SecretVersion),
    "AccessSecretVersion": (service.AccessSecretVersionRequest.pb(), service.AccessSecretVersionResponse.pb()),
    "ListSecretVersions": (service.ListSecretVersionsRequest.pb(), service.ListSecretVersionsResponse.pb()),
    "DisableSecretVersion": (service.DisableSecretVersionRequest.pb(), SecretVersion),
    "EnableSecretVersion": (service.EnableSecretVersionRequest.pb(), SecretVersion),
    "DestroySecretVersion": (service.DestroySecretVersionRequest.pb(), SecretVersion),
}


def grpc_handler(model: SecretManagerModel) -> grpc.GenericRpcHandler:
    return unary_handler(SERVICE, {rpc: (req, lambda m: m.SerializeToString()) for rpc, (req, _) in RPCS.items()},
                         lambda rpc, request, _context: model.dispatch(rpc, request))


# -- REST -----------------------------------------------------------------------------------

_ROUTES: list[tuple[str, str, str, str | None]] = [
    # (method, path regex after /v1/, rpc, what the body fills: "*", a field, or None)
    ("GET", rf"(?P<parent>{_PARENT})/secrets", "ListSecrets", None),
    ("POST", rf"(?P<parent>{_PARENT})/secrets", "CreateSecret", "secret"),
    ("GET", rf"(?P<name>{_SECRET})", "GetSecret", None),
    ("PATCH", rf"(?P<secret__name>{_SECRET})", "UpdateSecret", "secret"),
    ("DELETE", rf"(?P<name>{_SECRET})", "DeleteSecret", None),
    ("POST", rf"(?P<parent>{_SECRET}):addVersion", "AddSecretVersion", "*"),
    ("GET", rf"(?P<parent>{_SECRET})/versions", "ListSecretVersions", None),
    ("GET", rf"(?P<name>{_VERSION})", "GetSecretVersion", None),
    ("GET", rf"(?P<name>{_VERSION}):access", "AccessSecretVersion", None),
    ("POST", rf"(?P<name>{_VERSION}):disable", "DisableSecretVersion", "*"),
    ("POST", rf"(?P<name>{_VERSION}):enable", "EnableSecretVersion", "*"),
    ("POST", rf"(?P<name>{_VERSION}):destroy", "DestroySecretVersion", "*"),
]


def _strip_groups(pattern: str) -> str:
    return re.sub(r"\?P<(project|location|secret|version)>", "", pattern)


_COMPILED = [(m, re.compile(_strip_groups(p)), rpc, body) for m, p, rpc, body in _ROUTES]


def rest_handler(model: SecretManagerModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not parts.path.startswith("/v1/"):
                return self._send(404, {"error": {"code": 404, "message": "Not Found", "status": "NOT_FOUND"}})
            path = parts.path[len("/v1/"):]
            for method, pattern, rpc, body_field in _COMPILED:
                m = pattern.fullmatch(path)
                if method == self.command and m is not None:
                    break
            else:
                return self._send(404, {"error": {"code": 404, "message": f"no route {path}", "status": "NOT_FOUND"}})
            request: dict[str, Any] = {}
            for key, values in parse_qs(parts.query).items():
                if not key.startswith("$"):
                    request[key] = values[-1]
            body = json.loads(raw) if raw else {}
            if body_field == "*":
                request.update(body)
            elif body_field is not None:
                request[body_field] = body
            for key, value in m.groupdict().items():
                if "__" in key:
                    outer, inner = key.split("__")
                    request.setdefault(outer, {})[inner] = value
                else:
                    request[key] = value
            req_cls, _ = RPCS[rpc]
            try:
                msg = json_format.ParseDict(request, req_cls())
            except json_format.ParseError as exc:
                return self._send(400, {"error": {"code": 400, "message": str(exc), "status": "INVALID_ARGUMENT"}})
            try:
                result = model.dispatch(rpc, msg)
            except ModelError as exc:
                status = HTTP_STATUS.get(exc.code, 500)
                return self._send(status, {"error": {"code": status, "message": exc.message, "status": exc.code.name}})
            self._send(200, json_format.MessageToDict(result))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test); nothing to answer

        do_GET = do_POST = do_PATCH = do_DELETE = _handle

    return Handler


# -- servers --------------------------------------------------------------------------------


@dataclass
class RunningDouble:
    model: SecretManagerModel
    grpc_target: str
    rest_url: str
    _grpc_server: grpc.Server
    _http: ThreadingHTTPServer

    def stop(self) -> None:
        self._grpc_server.stop(grace=None)
        self._http.shutdown()
        self._http.server_close()


_shared: dict[str, RunningDouble] = {}
_shared_lock = threading.Lock()


def shared(location: str | None = None) -> RunningDouble:
    """One running double per location for the whole test process (stopped at exit)."""
    key = location or ""
    with _shared_lock:
        if key not in _shared:
            _shared[key] = start(SecretManagerModel(location=location, page_size_cap=7))
            atexit.register(_shared[key].stop)
        return _shared[key]


def start(model: SecretManagerModel | None = None) -> RunningDouble:
    """Serve ``model`` over gRPC and REST on free loopback ports."""
    model = model or SecretManagerModel()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((grpc_handler(model),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), rest_handler(model))
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    return RunningDouble(model, f"127.0.0.1:{port}", f"http://127.0.0.1:{http.server_address[1]}", server, http)
