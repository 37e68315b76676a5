"""A loopback double of the Kubernetes API server: core/v1 Secrets and TokenReview.

Built from the wire reference (backends.md §4), it lets the real ``kubernetes`` client talk
to something that behaves like kube-apiserver, with no cluster:

Secrets (``/api/v1/namespaces/{ns}/secrets[/{name}]``)
  * GET one, GET list (``labelSelector`` with ``=``, ``==``, ``!=``, ``in``, ``notin``,
    ``key``, ``!key``; ``fieldSelector`` on ``metadata.name``, ``metadata.namespace``,
    ``type``; ``limit``/``continue`` paging over a consistent snapshot sorted by name, with
    ``remainingItemCount``; a malformed token is 400, an expired one 410 Expired),
    POST (create), PUT (replace), PATCH and DELETE (optional DeleteOptions preconditions).
  * PATCH content types: ``application/strategic-merge-patch+json`` (maps merge key by key,
    ``null`` deletes a key, ``"$patch": "replace"`` replaces a map) and
    ``application/merge-patch+json`` (RFC 7386). JSON patch and server-side apply answer
    415 here (the real server supports them; secretkit does not use them).
  * Objects: ``apiVersion``/``kind`` (omitted on list items), ``metadata`` with ``uid``,
    ``resourceVersion`` (one counter for every write, like etcd's revision),
    ``creationTimestamp``, labels, annotations, ``ownerReferences`` (deleting an object
    deletes, at once, the objects of its namespace it alone owns: the garbage collector); ``type`` (default ``Opaque``, unchangeable);
    ``data`` as std base64 (400 on bad base64); ``stringData`` merged into ``data`` on
    write and never returned; ``immutable`` (then data changes and unsetting it are 422).
  * Validation (422 Invalid with ``details.causes``): DNS-1123 subdomain names, data keys
    ``[-._a-zA-Z0-9]+`` (not ``.``/``..``), at most 1 MiB of decoded data.
  * Concurrency: ``metadata.resourceVersion`` in a PUT or PATCH body must equal the stored
    one (409 Conflict); a create of an existing name is 409 AlreadyExists; a PUT without
    resourceVersion is unconditional; an unparseable resourceVersion is a 500 InternalError
    quoting the parser (as apiserver's registry does).
  * Every error is a ``Status`` object with ``reason``, ``message``, ``details`` and
    ``code`` (400/401/403/404/409/410/415/422, plus injected faults).

Authentication and authorization
  * When ``tokens`` is set, requests need ``Authorization: Bearer <token>`` (any case of
    "bearer"); else 401 ``Unauthorized``. A token maps to a user name and the verbs it may
    use (``get list watch create update patch delete``; None = all), everywhere or only in
    the ``namespaces`` given (like a RoleBinding; ``elsewhere``: its verbs in the others);
    others get 403 Forbidden with the apiserver's message.

TokenReview (``POST /apis/authentication.k8s.io/v1/tokenreviews``)
  * For Vault's Kubernetes auth method: the caller authenticates like any request; the body
    is a ``TokenReview`` with ``spec.token`` (and optional ``spec.audiences``). Tokens added
    with ``add_service_account(token, namespace, name, audiences=...)`` review as
    authenticated with ``user.username`` ``system:serviceaccount:NS:NAME``, ``user.uid``,
    ``user.groups`` (``system:serviceaccounts``, ``system:serviceaccounts:NS``,
    ``system:authenticated``) and ``status.audiences``; unknown tokens, or audiences that do
    not intersect the token's, review as ``authenticated: false`` with ``status.error``.

Test controls: ``add_user(token, User(...))``, ``fail_next(status, count, reason)`` answers the next requests with an
error Status (``Retry-After`` on 429), ``requests`` records (method, path, query,
content type) of every request, ``expire_continue_tokens()``, ``seed(...)`` stores an
object as kubectl would, ``reset()``.
Watch (``GET .../secrets?watch=true``)
  * Newline-delimited JSON events (``ADDED``, ``MODIFIED``, ``DELETED``) over chunked
    encoding, filtered by ``labelSelector``/``fieldSelector``; from ``resourceVersion`` (or,
    without one, the current objects as ``ADDED`` first); the stream ends after
    ``timeoutSeconds``, with a ``BOOKMARK`` carrying the latest resourceVersion when
    ``allowWatchBookmarks`` is set. The history keeps the last ``EVENT_WINDOW`` events;
    ``compact()`` drops it, and resuming from before that is an ``ERROR`` event with a 410
    ``Expired`` Status, as the apiserver answers.

kubectl
  * Discovery documents, protobuf Secret bodies and Table answers (``k8s_wire``), so the
    real ``kubectl`` binary works against the double (over http it sends no token: use a
    double made without ``tokens``).

Not modelled: field managers/managedFields, dryRun, DeleteCollection, other kinds.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.doubles import k8s_wire

MAX_SECRET_BYTES = 1024 * 1024
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
_DNS_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
    "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_SECRETS = re.compile(r"^/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?/?$")
_TOKENREVIEW = "/apis/authentication.k8s.io/v1/tokenreviews"
ALL_VERBS = frozenset({"get", "list", "create", "update", "patch", "delete"})


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            doc["details"] = self.details
        return doc


def _invalid(name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid, as apiserver words it: ``Secret "x" is invalid: field: message``."""
    text = ", ".join(f"{fld}: {msg}" for _, fld, msg in causes)
    return ApiError(422, "Invalid", f'Secret "{name}" is invalid: {text}', {
        "name": name, "kind": "Secret",
        "causes": [{"reason": r, "message": m, "field": f} for r, f, m in causes],
    })


def _not_found(name: str) -> ApiError:
    return ApiError(404, "NotFound", f'secrets "{name}" not found', {"name": name, "kind": "secrets"})


@dataclass
class User:
    name: str
    verbs: frozenset[str] | None = None  # None: every verb
    #: the namespaces those verbs apply in (None: every namespace); elsewhere, only ``elsewhere``
    namespaces: frozenset[str] | None = None
    elsewhere: frozenset[str] = frozenset()


@dataclass
class ServiceAccount:
    namespace: str
    name: str
    uid: str
    audiences: list[str]


@dataclass
class _Snapshot:
    items: list[dict[str, Any]]
    resource_version: str


@dataclass
class FakeKubeState:
    """Everything the double stores; guarded by ``lock``."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    revision: int = 1000
    tokens: dict[str, User] | None = None
    service_accounts: dict[str, ServiceAccount] = field(default_factory=dict)
    snapshots: dict[str, _Snapshot] = field(default_factory=dict)
    faults: list[tuple[int, str] | None] = field(default_factory=list)
    requests: list[tuple[str, str, str, str]] = field(default_factory=list)
    #: Watch history: (resourceVersion, event type, namespace, object); the oldest are dropped
    #: (like etcd compaction) and a watch from before ``compacted`` is answered 410 Expired.
    events: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    compacted: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)


class FakeKubeAPI:
    """The server: ``with FakeKubeAPI() as api: api.url`` (threaded, loopback, free port)."""

    def __init__(self, tokens: dict[str, User] | None = None) -> None:
        self.state = FakeKubeState(tokens=tokens)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeKubeAPI:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-kube-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeKubeAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls -------------------------------------------------------------------

    @property
    def requests(self) -> list[tuple[str, str, str, str]]:
        return self.state.requests

    def fail_next(self, status: int, count: int = 1, reason: str = "ServiceUnavailable", *, after: int = 0) -> None:
        """Answer ``count`` requests with ``status``, after letting ``after`` requests through."""
        with self.state.lock:
            self.state.faults.extend([None] * after + [(status, reason)] * count)

    def compact(self) -> None:
        """Forget the watch history (etcd compaction): resuming a watch from any older
        resourceVersion is then answered with a 410 Expired ERROR event."""
        with self.state.lock:
            self.state.events.clear()
            self.state.compacted = self.state.revision

    def expire_continue_tokens(self) -> None:
        with self.state.lock:
            self.state.snapshots.clear()

    def add_user(self, token: str, user: User) -> None:
        """Accept ``token`` as ``user`` (needs a double made with ``tokens``)."""
        with self.state.lock:
            if self.state.tokens is None:
                raise ValueError("this double authenticates nobody: make it with tokens={...}")
            self.state.tokens[token] = user

    def add_service_account(self, token: str, namespace: str, name: str,
                            audiences: list[str] | None = None, uid: str | None = None) -> ServiceAccount:
        sa = ServiceAccount(namespace, name, uid or str(uuid.uuid4()), audiences or ["https://kubernetes.default.svc"])
        with self.state.lock:
            self.state.service_accounts[token] = sa
        return sa

    def seed(self, namespace: str, name: str, data: dict[str, bytes], *, labels: dict[str, str] | None = None,
             annotations: dict[str, str] | None = None, type_: str = "Opaque", immutable: bool | None = None) -> str:
        """Store an object directly (as ``kubectl create secret`` would); returns its resourceVersion."""
        body: dict[str, Any] = {"metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
                                "type": type_, "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
        if immutable is not None:
            body["immutable"] = immutable
        with self.state.lock:
            return str(_create(self.state, namespace, body)["metadata"]["resourceVersion"])

    def stored(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self.state.lock:
            obj = self.state.objects.get((namespace, name))
            return copy.deepcopy(obj)

    def reset(self) -> None:
        with self.state.lock:
            self.state.objects.clear()
            self.state.snapshots.clear()
            self.state.faults.clear()
            self.state.requests.clear()
            self.state.service_accounts.clear()
            self.state.events.clear()
            self.state.compacted = self.state.revision


# -- HTTP ----------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    state: FakeKubeState
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        state = self.state
        with state.lock:
            state.requests.append((method, parts.path, parts.query, content_type))
            fault = state.faults.pop(0) if state.faults else None
        try:
            if fault is not None:
                code, reason = fault
                headers = {"Retry-After": "1"} if code == 429 else {}
                raise ApiError(code, reason, f"injected {code} {reason}", headers=headers)
            user = self._authenticate()
            match = _SECRETS.match(parts.path)
            if method == "GET" and query.get("watch") in ("true", "1") and match and match.group(2) is None:
                _authorize(user, "watch", match.group(1), None)
                try:
                    self._watch(match.group(1), query)
                except (BrokenPipeError, ConnectionResetError):  # the client stopped watching
                    self.close_connection = True
                return
            if method == "GET" and (found := k8s_wire.discovery(parts.path, self.headers.get("Host") or "")):
                self._send(200, found)
                return
            if method in ("POST", "PUT") and content_type == k8s_wire.PROTOBUF and match:
                try:
                    raw = json.dumps(k8s_wire.secret_from_protobuf(raw)).encode()
                except (ValueError, IndexError, AssertionError) as exc:
                    raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format: {exc}") from None
            elif method in ("POST", "PUT") and content_type not in ("", "application/json"):
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                               "accepted media types include: application/json, application/vnd.kubernetes.protobuf")
            status, body = self._route(method, parts.path, query, content_type, raw, user)
            if method == "GET" and match and k8s_wire.wants_table(self.headers.get("Accept") or ""):
                body = _as_table(body)
            self._send(status, body)
        except ApiError as err:
            self._send(err.code, err.status(), err.headers)

    def _authenticate(self) -> User | None:
        if self.state.tokens is None:
            return None
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        user = self.state.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user

    def _route(self, method: str, path: str, query: dict[str, str], content_type: str, raw: bytes,
               user: User | None) -> tuple[int, dict[str, Any]]:
        if path.rstrip("/") == _TOKENREVIEW:
            if method != "POST":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            _authorize(user, "create", "", None, resource="tokenreviews", group="authentication.k8s.io")
            return 201, _token_review(self.state, _body(raw))
        match = _SECRETS.match(path)
        if match is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        namespace, name = match.group(1), match.group(2)
        state = self.state
        if name is None:
            if method == "GET":
                _authorize(user, "list", namespace, None)
                return 200, _list(state, namespace, query)
            if method == "POST":
                _authorize(user, "create", namespace, None)
                with state.lock:
                    return 201, _external(_create(state, namespace, _body(raw)), with_kind=True)
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
        if verb is None:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        _authorize(user, verb, namespace, name)
        with state.lock:
            if method == "GET":
                obj = state.objects.get((namespace, name))
                if obj is None:
                    raise _not_found(name)
                return 200, _external(obj, with_kind=True)
            if method == "PUT":
                return 200, _external(_replace(state, namespace, name, _body(raw)), with_kind=True)
            if method == "PATCH":
                return 200, _external(_patch(state, namespace, name, content_type, raw), with_kind=True)
            return 200, _delete(state, namespace, name, _body(raw) if raw else {})

    def _watch(self, namespace: str, query: dict[str, str]) -> None:
        """A watch: newline-delimited JSON events over chunked encoding until timeoutSeconds."""
        state = self.state
        labels = _label_matcher(query.get("labelSelector", ""))
        fields = _field_matcher(query.get("fieldSelector", ""), namespace)
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def emit(kind: str, obj: dict[str, Any]) -> None:
            line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()

        with state.lock:
            since = query.get("resourceVersion") or ""
            if since in ("", "0"):  # "most recent": the current objects as ADDED, then changes
                start = state.revision
                for (ns, _), obj in sorted(state.objects.items()):
                    if ns == namespace and labels(obj["metadata"].get("labels") or {}) and fields(obj):
                        emit("ADDED", _external(obj, with_kind=True))
            else:
                start = int(since)
        if start < state.compacted:
            emit("ERROR", {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": f"too old resource version: {start} ({state.compacted})",
                           "reason": "Expired", "code": 410})
        else:
            newest = start
            while (left := deadline - time.monotonic()) > 0:
                with state.lock:
                    fresh = [(rv, kind, obj) for rv, kind, ns, obj in state.events
                             if rv > start and ns == namespace and labels(obj["metadata"].get("labels") or {})
                             and fields(obj)]
                    newest = state.revision
                for rv, kind, obj in fresh:
                    emit(kind, _external(obj, with_kind=True))
                start = max([start, *(rv for rv, _, _ in fresh)])
                if not fresh:
                    with state.changed:
                        state.changed.wait(min(left, 0.1))
            if bookmarks:
                emit("BOOKMARK", {"kind": "Secret", "apiVersion": "v1", "metadata": {"resourceVersion": str(newest)}})
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)


def _as_table(body: dict[str, Any]) -> dict[str, Any]:
    """A Secret or SecretList answer as the Table ``kubectl get`` asks for."""
    if body.get("kind") == "Secret":
        return k8s_wire.table([body], str(body["metadata"]["resourceVersion"]))
    table = k8s_wire.table(list(body.get("items") or []), str(body["metadata"]["resourceVersion"]))
    if body["metadata"].get("continue"):
        table["metadata"]["continue"] = body["metadata"]["continue"]
    return table


def _body(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw or b"{}")
    except ValueError as exc:
        raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
    return doc


def _authorize(user: User | None, verb: str, namespace: str, name: str | None, *,
               resource: str = "secrets", group: str = "") -> None:
    if user is None:
        return
    allowed = user.verbs if user.namespaces is None or namespace in user.namespaces else user.elsewhere
    if allowed is None or verb in allowed:
        return
    subject = f'{resource} "{name}"' if name else resource
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    raise ApiError(403, "Forbidden", f'{subject} is forbidden: User "{user.name}" cannot {verb} resource '
                   f'"{resource}" in API group "{group}"{where}', {"name": name or "", "kind": resource})


# -- objects -------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bump(state: FakeKubeState) -> str:
    state.revision += 1
    return str(state.revision)


def _external(obj: dict[str, Any], *, with_kind: bool) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    if with_kind:
        out = {"kind": "Secret", "apiVersion": "v1", **out}
    return out


def _decoded_data(name: str, body: dict[str, Any]) -> dict[str, bytes]:
    """``data`` decoded (400 on bad base64, as the JSON decoder fails) with ``stringData`` merged over it."""
    data: dict[str, bytes] = {}
    raw = body.get("data") or {}
    if not isinstance(raw, dict):
        raise ApiError(400, "BadRequest", "json: cannot unmarshal into Go struct field Secret.data of type map[string][]uint8")
    for key, value in raw.items():
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ApiError(400, "BadRequest", "json: cannot unmarshal into Go struct field Secret.data of type []uint8")
        try:
            data[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "BadRequest", f"illegal base64 data in Secret.data[{key}]") from None
    string_data = body.get("stringData") or {}
    for key, value in string_data.items():
        if not isinstance(value, str):
            raise ApiError(400, "BadRequest", "json: cannot unmarshal into Go struct field Secret.stringData of type string")
        data[key] = value.encode("utf-8")
    return data


def _validate(name: str, data: dict[str, bytes]) -> None:
    causes: list[tuple[str, str, str]] = []
    if not name:
        causes.append(("FieldValueRequired", "metadata.name", "Required value: name or generateName is required"))
    elif len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        causes.append(("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {_DNS_SUBDOMAIN_MSG}'))
    total = 0
    for key, value in data.items():
        if key in (".", "..") or len(key) > 253 or not _KEY.fullmatch(key):
            causes.append(("FieldValueInvalid", f"data[{key}]",
                           f'Invalid value: "{key}": a valid config key must consist of alphanumeric characters, '
                           "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                           "validation is '[-._a-zA-Z0-9]+')"))
        total += len(value)
    if total > MAX_SECRET_BYTES:
        causes.append(("FieldValueTooLong", "data", f"Too long: must have at most {MAX_SECRET_BYTES} bytes"))
    if causes:
        raise _invalid(name, causes)


def _encode(data: dict[str, bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v).decode() for k, v in sorted(data.items())}


#: Watch events kept; older ones are compacted away.
EVENT_WINDOW = 1000


def _record(state: FakeKubeState, kind: str, namespace: str, obj: dict[str, Any]) -> None:
    """Append a watch event (caller holds ``state.lock``) and wake the open watches."""
    state.events.append((int(obj["metadata"]["resourceVersion"]), kind, namespace, copy.deepcopy(obj)))
    if len(state.events) > EVENT_WINDOW:
        dropped = state.events[: len(state.events) - EVENT_WINDOW]
        del state.events[: len(dropped)]
        state.compacted = dropped[-1][0]
    with state.changed:
        state.changed.notify_all()


def _create(state: FakeKubeState, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    name = str(meta.get("name") or "")
    if meta.get("namespace") not in (None, "", namespace):
        raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
    data = _decoded_data(name, body)
    _validate(name, data)
    if (namespace, name) in state.objects:
        raise ApiError(409, "AlreadyExists", f'secrets "{name}" already exists', {"name": name, "kind": "secrets"})
    obj: dict[str, Any] = {
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                     "resourceVersion": _bump(state), "creationTimestamp": _now()},
        "type": body.get("type") or "Opaque",
    }
    for key in ("labels", "annotations"):
        if meta.get(key):
            obj["metadata"][key] = dict(meta[key])
    if meta.get("ownerReferences"):
        obj["metadata"]["ownerReferences"] = copy.deepcopy(meta["ownerReferences"])
    if data:
        obj["data"] = _encode(data)
    if body.get("immutable") is not None:
        obj["immutable"] = bool(body["immutable"])
    state.objects[(namespace, name)] = obj
    _record(state, "ADDED", namespace, obj)
    return obj


def _update(state: FakeKubeState, namespace: str, name: str, new: dict[str, Any]) -> dict[str, Any]:
    """Shared tail of PUT and PATCH: preconditions, validation, immutability, store."""
    old = state.objects.get((namespace, name))
    if old is None:
        raise _not_found(name)
    meta = new.get("metadata") or {}
    if meta.get("name") not in (None, name):
        raise ApiError(400, "BadRequest", f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
    wanted = meta.get("resourceVersion")
    if wanted not in (None, ""):
        if not str(wanted).isdigit():
            # apiserver's registry parses it with strconv.ParseUint and passes the error on
            # unwrapped, which the handler turns into a 500 (read from the apiserver source)
            raise ApiError(500, "InternalError", f'strconv.ParseUint: parsing "{wanted}": invalid syntax',
                           {"causes": [{"message": f'strconv.ParseUint: parsing "{wanted}": invalid syntax'}]})
        if str(wanted) != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on secrets "{name}": the object has been '
                           "modified; please apply your changes to the latest version and try again",
                           {"name": name, "kind": "secrets"})
    data = _decoded_data(name, new)
    _validate(name, data)
    new_type = new.get("type") or "Opaque"
    if new_type != old.get("type", "Opaque"):
        raise _invalid(name, [("FieldValueInvalid", "type", f'Invalid value: "{new_type}": field is immutable')])
    old_data = {k: base64.b64decode(v) for k, v in (old.get("data") or {}).items()}
    if old.get("immutable"):
        causes = []
        if new.get("immutable") is not True:
            causes.append(("FieldValueForbidden", "immutable", "Forbidden: field is immutable when `immutable` is set"))
        if data != old_data:
            causes.append(("FieldValueForbidden", "data", "Forbidden: field is immutable when `immutable` is set"))
        if causes:
            raise _invalid(name, causes)
    stored: dict[str, Any] = {
        "metadata": {**{k: old["metadata"][k] for k in ("name", "namespace", "uid", "creationTimestamp")},
                     "resourceVersion": _bump(state)},
        "type": new_type,
    }
    for key in ("labels", "annotations"):
        if meta.get(key):
            stored["metadata"][key] = {k: v for k, v in meta[key].items() if v is not None}
    if meta.get("ownerReferences"):
        stored["metadata"]["ownerReferences"] = copy.deepcopy(meta["ownerReferences"])
    if data:
        stored["data"] = _encode(data)
    if new.get("immutable") is not None:
        stored["immutable"] = bool(new["immutable"])
    state.objects[(namespace, name)] = stored
    _record(state, "MODIFIED", namespace, stored)
    return stored


def _replace(state: FakeKubeState, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    if (namespace, name) not in state.objects:
        raise _not_found(name)  # Secrets do not allow create-on-update
    return _update(state, namespace, name, body)


def _merge(target: Any, patch: Any, strategic: bool) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if strategic and patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if strategic and patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if strategic and key.startswith("$"):
            raise ApiError(400, "BadRequest", f"unknown patch directive {key!r}")
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value, strategic)
    return result


def _patch(state: FakeKubeState, namespace: str, name: str, content_type: str, raw: bytes) -> dict[str, Any]:
    if content_type not in ("application/strategic-merge-patch+json", "application/merge-patch+json"):
        raise ApiError(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - accepted '
                       "media types include: application/strategic-merge-patch+json, application/merge-patch+json")
    old = state.objects.get((namespace, name))
    if old is None:
        raise _not_found(name)
    patch = _body(raw)
    current = copy.deepcopy(old)
    current["metadata"].pop("resourceVersion")  # only a resourceVersion in the patch is a precondition
    merged = _merge(current, patch, strategic=content_type.startswith("application/strategic"))
    return _update(state, namespace, name, merged)


def _delete(state: FakeKubeState, namespace: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
    obj = state.objects.get((namespace, name))
    if obj is None:
        raise _not_found(name)
    pre = options.get("preconditions") or {}
    for key in ("resourceVersion", "uid"):
        if pre.get(key) not in (None, obj["metadata"][key]):
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on secrets "{name}": Precondition failed: '
                           f"{key}: {pre[key]}, {key}: {obj['metadata'][key]}", {"name": name, "kind": "secrets"})
    _remove(state, namespace, name)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "kind": "secrets", "uid": obj["metadata"]["uid"]}}


def _remove(state: FakeKubeState, namespace: str, name: str) -> None:
    """Delete an object, then (as the garbage collector does, here at once) every object of
    the namespace whose only owner it was."""
    obj = state.objects.pop((namespace, name))
    gone = copy.deepcopy(obj)
    gone["metadata"]["resourceVersion"] = _bump(state)
    _record(state, "DELETED", namespace, gone)
    uid = obj["metadata"]["uid"]
    for (ns, other), dependent in list(state.objects.items()):
        owners = dependent["metadata"].get("ownerReferences") or []
        if ns == namespace and owners and all(ref.get("uid") == uid for ref in owners):
            _remove(state, ns, other)


# -- list ----------------------------------------------------------------------------


def _label_matcher(selector: str) -> Any:
    terms = []
    for part in re.split(r",(?![^()]*\))", selector.strip()) if selector.strip() else []:
        part = part.strip()
        m = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", part)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            terms.append((m.group(1), m.group(2), values))
            continue
        m = re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)", part)
        if m:
            terms.append((m.group(1), "!=" if m.group(2) == "!=" else "=", {m.group(3)}))
            continue
        m = re.fullmatch(r"(!?)([\w./-]+)", part)
        if m:
            terms.append((m.group(2), "!exists" if m.group(1) else "exists", set()))
            continue
        raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")

    def matches(labels: dict[str, str]) -> bool:
        for key, op, values in terms:
            present = key in labels
            if op == "exists" and not present:
                return False
            if op == "!exists" and present:
                return False
            if op in ("=", "in") and (not present or labels[key] not in values):
                return False
            if op in ("!=", "notin") and present and labels[key] in values:
                return False
        return True

    return matches


def _field_matcher(selector: str, namespace: str) -> Any:
    terms = []
    for part in [p for p in selector.split(",") if p.strip()]:
        m = re.fullmatch(r"\s*([\w.]+)\s*(==|=|!=)\s*(\S*)\s*", part)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid selector: {part!r}")
        if m.group(1) not in ("metadata.name", "metadata.namespace", "type"):
            raise ApiError(400, "BadRequest", f'"{m.group(1)}" is not a known field selector: only "metadata.name", '
                           '"metadata.namespace", "type"')
        terms.append((m.group(1), m.group(2) == "!=", m.group(3)))

    def matches(obj: dict[str, Any]) -> bool:
        fields = {"metadata.name": obj["metadata"]["name"], "metadata.namespace": namespace,
                  "type": obj.get("type", "Opaque")}
        return all((fields[f] != v) if negate else (fields[f] == v) for f, negate, v in terms)

    return matches


def _list(state: FakeKubeState, namespace: str, query: dict[str, str]) -> dict[str, Any]:
    try:
        limit = int(query.get("limit") or 0)
    except ValueError:
        raise ApiError(400, "BadRequest", f"invalid limit {query['limit']!r}") from None
    token = query.get("continue") or ""
    with state.lock:
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
                snap_id, start = str(decoded["s"]), int(decoded["i"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                raise ApiError(400, "BadRequest", "continue key is not valid: illegal base64 data") from None
            snapshot = state.snapshots.get(snap_id)
            if snapshot is None:
                raise ApiError(410, "Expired", "The provided continue parameter is too old to display a consistent "
                               "list result. You can start a new list without the continue parameter.", {})
        else:
            labels = _label_matcher(query.get("labelSelector", ""))
            fields = _field_matcher(query.get("fieldSelector", ""), namespace)
            items = [copy.deepcopy(obj) for (ns, _), obj in sorted(state.objects.items())
                     if ns == namespace and labels(obj["metadata"].get("labels") or {}) and fields(obj)]
            snap_id, start = uuid.uuid4().hex, 0
            snapshot = _Snapshot(items, str(state.revision))
        page = snapshot.items[start:start + limit] if limit > 0 else snapshot.items[start:]
        end = start + len(page)
        meta: dict[str, Any] = {"resourceVersion": snapshot.resource_version}
        if end < len(snapshot.items):
            state.snapshots[snap_id] = snapshot
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"s": snap_id, "i": end}).encode()).decode()
            meta["remainingItemCount"] = len(snapshot.items) - end
        else:
            state.snapshots.pop(snap_id, None)
    return {"kind": "SecretList", "apiVersion": "v1", "metadata": meta, "items": page}


# -- TokenReview ---------------------------------------------------------------------


def _token_review(state: FakeKubeState, body: dict[str, Any]) -> dict[str, Any]:
    spec = body.get("spec") or {}
    token = str(spec.get("token") or "")
    wanted = list(spec.get("audiences") or [])
    status: dict[str, Any]
    with state.lock:
        sa = state.service_accounts.get(token)
    if sa is None:
        status = {"authenticated": False, "error": "[invalid bearer token, token lookup failed]"}
    else:
        audiences = [a for a in wanted if a in sa.audiences] if wanted else list(sa.audiences)
        if wanted and not audiences:
            status = {"authenticated": False, "error": "[invalid bearer token, token audiences "
                      f"{json.dumps(sa.audiences)} is invalid for the target audiences {json.dumps(wanted)}]"}
        else:
            status = {"authenticated": True, "audiences": audiences, "user": {
                "username": f"system:serviceaccount:{sa.namespace}:{sa.name}", "uid": sa.uid,
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa.namespace}",
                           "system:authenticated"]}}
    return {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}


# -- a process-wide instance for test modules ----------------------------------------

_shared: FakeKubeAPI | None = None
_shared_lock = threading.Lock()

#: Tokens of the shared double: one that may do everything, one that may do nothing.
ADMIN_TOKEN = "admin-token"
NOBODY_TOKEN = "nobody-token"


def shared() -> FakeKubeAPI:
    """One double per test process (started on first use, stopped at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            import atexit

            _shared = FakeKubeAPI(tokens={
                ADMIN_TOKEN: User("system:serviceaccount:secretkit:admin"),
                NOBODY_TOKEN: User("system:serviceaccount:app:nobody", frozenset()),
            }).start()
            atexit.register(_shared.stop)
        return _shared


def iter_pages(api: FakeKubeAPI) -> Iterator[tuple[str, str]]:
    """(path, query) of every list request seen so far."""
    for method, path, query, _ in api.requests:
        if method == "GET" and path.endswith("/secrets"):
            yield path, query
