"""The wire calls on Secrets: ``CoreV1Api`` with JSON documents in and out.

Responses are read raw (``_preload_content=False``) and parsed as JSON, so the driver sees
exactly what the API server sent (the same on old and new clients, no model round trip).
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from secretkit.drivers.kubernetes.errors import is_status
from secretkit.drivers.base import request_timeout

STRATEGIC_MERGE = "application/strategic-merge-patch+json"


def parse(response: Any) -> dict[str, Any]:
    """The JSON body of a raw response; the connection goes back to the pool."""
    try:
        raw = response.data
    finally:
        release = getattr(response, "release_conn", None)
        if release is not None:
            release()
    doc = json.loads(raw) if raw else {}
    return doc if isinstance(doc, dict) else {}


class SecretsApi:
    """Secrets of one namespace (others by ``namespace=``), through a ``CoreV1Api``."""

    def __init__(self, core: Any, namespace: str, *, timeout: float, field_manager: str) -> None:
        self.core = core
        self.namespace = namespace
        self.timeout = timeout
        self.field_manager = field_manager

    def _timeout(self) -> float:
        """This request's timeout: the option, capped at what is left of the store's attempt (the
        client's timeouts are per socket read; the store bounds the whole attempt, and this ends
        a request it has given up on as soon as the client can, and sends no further one)."""
        return request_timeout(self.timeout)

    def get(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        return parse(self.core.read_namespaced_secret(
            name, namespace or self.namespace, _preload_content=False, _request_timeout=self._timeout()))

    def find(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object, or None if there is none (404)."""
        try:
            return self.get(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        return parse(self.core.create_namespaced_secret(
            namespace or self.namespace, body, field_manager=self.field_manager,
            _preload_content=False, _request_timeout=self._timeout()))

    def patch(self, name: str, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """A strategic merge patch: maps merge key by key, ``None`` deletes a key and
        ``"$patch": "replace"`` inside a map replaces it; ``metadata.resourceVersion`` in the
        body is a precondition (409 Conflict when stale)."""
        return parse(self.core.patch_namespaced_secret(
            name, namespace or self.namespace, body, field_manager=self.field_manager,
            _content_type=STRATEGIC_MERGE, _preload_content=False, _request_timeout=self._timeout()))

    def replace(self, name: str, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        return parse(self.core.replace_namespaced_secret(
            name, namespace or self.namespace, body, field_manager=self.field_manager,
            _preload_content=False, _request_timeout=self._timeout()))

    def delete(self, name: str, namespace: str | None = None, *, resource_version: str | None = None) -> None:
        """Delete; with ``resource_version`` only that state of the object (409 otherwise)."""
        body = {"preconditions": {"resourceVersion": resource_version}} if resource_version else None
        parse(self.core.delete_namespaced_secret(
            name, namespace or self.namespace, body=body, _preload_content=False, _request_timeout=self._timeout()))

    def delete_if_there(self, name: str, namespace: str | None = None, *, resource_version: str | None = None) -> bool:
        """Delete; False when it is already gone (or, with ``resource_version``, was replaced)."""
        try:
            self.delete(name, namespace, resource_version=resource_version)
        except ApiException as exc:
            if exc.status == 404 or (resource_version is not None and is_status(exc, 409)):
                return False
            raise
        return True

    def list_page(self, *, label_selector: str | None = None, field_selector: str | None = None,
                  limit: int | None = None, cont: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"_preload_content": False, "_request_timeout": self._timeout()}
        if label_selector:
            kwargs["label_selector"] = label_selector
        if field_selector:
            kwargs["field_selector"] = field_selector
        if limit:
            kwargs["limit"] = limit
        if cont:
            kwargs["_continue"] = cont
        return parse(self.core.list_namespaced_secret(self.namespace, **kwargs))
