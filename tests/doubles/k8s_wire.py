"""What the ``kubectl`` binary needs from the Kubernetes API double, beyond the Secrets API.

* Discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/authentication.k8s.io``
  and ``/apis/authentication.k8s.io/v1`` (plain JSON: kubectl falls back to it from the
  aggregated discovery format it asks for first).
* Protobuf request bodies: ``kubectl create secret`` sends the Secret as
  ``application/vnd.kubernetes.protobuf`` (the ``k8s\\0`` envelope around a ``runtime.Unknown``
  holding the ``v1.Secret`` message). ``secret_from_protobuf`` turns it into the JSON
  document the double handles; answers stay JSON, which kubectl accepts.
* Tables: ``kubectl get`` asks for ``application/json;as=Table;v=v1;g=meta.k8s.io``, which
  the API server answers with a ``Table`` (NAME, TYPE, DATA, AGE) of
  ``PartialObjectMetadata`` rows.

Field numbers are those of ``k8s.io/api/core/v1/generated.proto`` and
``k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto``.
"""

from __future__ import annotations

import base64
import copy
from datetime import datetime, timezone
from typing import Any

PROTOBUF = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"
VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "gitCommit": "0" * 40, "gitTreeState": "clean",
           "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.4", "compiler": "gc", "platform": "linux/amd64"}
_AUTH_GROUP = "authentication.k8s.io"


# -- discovery -------------------------------------------------------------------------


def discovery(path: str, server: str) -> dict[str, Any] | None:
    """The discovery document at ``path``, or None if ``path`` is not a discovery path."""
    path = path.rstrip("/") or "/"
    if path == "/version":
        return dict(VERSION)
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}]}
    if path == "/api/v1":
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret",
             "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
             "storageVersionHash": "S6u1pOWzb84="},
            {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
             "verbs": ["get", "list"], "shortNames": ["ns"]},
        ]}
    group = {"name": _AUTH_GROUP, "versions": [{"groupVersion": f"{_AUTH_GROUP}/v1", "version": "v1"}],
             "preferredVersion": {"groupVersion": f"{_AUTH_GROUP}/v1", "version": "v1"}}
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}
    if path == f"/apis/{_AUTH_GROUP}":
        return {"kind": "APIGroup", "apiVersion": "v1", **group}
    if path == f"/apis/{_AUTH_GROUP}/v1":
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{_AUTH_GROUP}/v1", "resources": [
            {"name": "tokenreviews", "singularName": "tokenreview", "namespaced": False, "kind": "TokenReview",
             "verbs": ["create"]}]}
    return None


# -- protobuf --------------------------------------------------------------------------


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of every field of a message: ints for varints, bytes otherwise."""
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            out.append((number, value))
        elif wire == 2:
            length, i = _varint(buf, i)
            out.append((number, buf[i:i + length]))
            i += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            out.append((number, buf[i:i + size]))
            i += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return out


def _map_entry(buf: bytes) -> tuple[str, bytes]:
    entry = dict(_fields(buf))
    key, value = entry.get(1, b""), entry.get(2, b"")
    assert isinstance(key, bytes) and isinstance(value, bytes)
    return key.decode(), value


def _owner_reference(buf: bytes) -> dict[str, Any]:
    names = {1: "kind", 3: "name", 4: "uid", 5: "apiVersion", 6: "controller", 7: "blockOwnerDeletion"}
    ref: dict[str, Any] = {}
    for number, value in _fields(buf):
        if number in names:
            ref[names[number]] = bool(value) if isinstance(value, int) else value.decode()
    return ref


def _object_meta(buf: bytes) -> dict[str, Any]:
    strings = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    meta: dict[str, Any] = {}
    for number, value in _fields(buf):
        if number in strings and isinstance(value, bytes):
            meta[strings[number]] = value.decode()
        elif number in (11, 12) and isinstance(value, bytes):
            key, item = _map_entry(value)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = item.decode()
        elif number == 13 and isinstance(value, bytes):
            meta.setdefault("ownerReferences", []).append(_owner_reference(value))
        elif number == 14 and isinstance(value, bytes):
            meta.setdefault("finalizers", []).append(value.decode())
    return meta


def secret_from_protobuf(raw: bytes) -> dict[str, Any]:
    """The JSON form of a ``v1.Secret`` sent as ``application/vnd.kubernetes.protobuf``."""
    if not raw.startswith(_MAGIC):
        raise ValueError("a protobuf body starts with the k8s\\0 envelope")
    unknown = dict(_fields(raw[len(_MAGIC):]))
    type_meta = dict(_fields(unknown.get(1, b"")))  # type: ignore[arg-type]
    kind = type_meta.get(2, b"")
    if kind != b"Secret":
        raise ValueError(f"the double decodes protobuf Secrets only, not {kind!r}")
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret"}
    for number, value in _fields(unknown.get(2, b"")):  # type: ignore[arg-type]
        if number == 1 and isinstance(value, bytes):
            body["metadata"] = _object_meta(value)
        elif number == 2 and isinstance(value, bytes):
            key, item = _map_entry(value)
            body.setdefault("data", {})[key] = base64.b64encode(item).decode()
        elif number == 3 and isinstance(value, bytes):
            body["type"] = value.decode()
        elif number == 4 and isinstance(value, bytes):
            key, item = _map_entry(value)
            body.setdefault("stringData", {})[key] = item.decode()
        elif number == 5 and isinstance(value, int):
            body["immutable"] = bool(value)
    return body


# -- tables ----------------------------------------------------------------------------


def wants_table(accept: str) -> bool:
    """True when the client's Accept header asks for a meta.k8s.io Table first."""
    first = accept.split(",")[0]
    return "as=Table" in first and "g=meta.k8s.io" in first


def _age(created: str) -> str:
    try:
        then = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return "<unknown>"
    seconds = max(0, int((datetime.now(timezone.utc) - then).total_seconds()))
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


def table(items: list[dict[str, Any]], resource_version: str) -> dict[str, Any]:
    """Secrets as the API server's Table: NAME, TYPE, DATA (number of keys), AGE."""
    columns = [("Name", "string", "name"), ("Type", "string", ""), ("Data", "string", ""), ("Age", "string", "")]
    rows = []
    for item in items:
        meta = copy.deepcopy(item["metadata"])
        rows.append({
            "cells": [meta["name"], item.get("type", "Opaque"), len(item.get("data") or {}),
                      _age(str(meta.get("creationTimestamp", "")))],
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
        })
    return {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [{"name": n, "type": t, "format": f, "description": n, "priority": 0}
                              for n, t, f in columns],
        "rows": rows,
    }
