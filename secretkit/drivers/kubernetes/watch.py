"""``ChangeStream`` on Kubernetes: follow one Secret with the API server's watch.

Each watch request lasts ``watch_timeout`` seconds and resumes from the last resourceVersion
seen, so no change is missed between requests; when the server has compacted that version
away (410 Expired) the object is listed again and watching restarts from there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from secretkit.drivers.kubernetes.api import SecretsApi
from secretkit.drivers.kubernetes.codec import resource_version


def watch_versions(api: SecretsApi, obj_name: str, watch_timeout: int, stop: threading.Event) -> Iterator[str | None]:
    """Yield the object's resourceVersion now and on every change (None while it does not
    exist) until ``stop`` is set."""
    selector = f"metadata.name={obj_name}"
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
        yield from _follow(api, selector, watch, watch_timeout, stop)
    except Exception:
        if not stop.is_set():
            raise  # else: the closer cut the stream
    finally:
        done.set()


def _follow(api: SecretsApi, selector: str, watch: Any, watch_timeout: int,
            stop: threading.Event) -> Iterator[str | None]:
    last: str | None = None
    resume: str | None = None
    first = True
    while not stop.is_set():
        if resume is None:  # (re)list: the current state, and the version to watch from
            doc = api.list_page(field_selector=selector)
            items = doc.get("items") or []
            current = resource_version(items[0]) if items else None
            resume = resource_version(doc) or None
            if first or current != last:
                first, last = False, current
                yield current
        try:
            for event in watch.stream(
                api.core.list_namespaced_secret, api.namespace, field_selector=selector,
                resource_version=resume, timeout_seconds=watch_timeout, allow_watch_bookmarks=True,
                _request_timeout=watch_timeout + api.timeout,
            ):
                resume = resource_version(event.get("raw_object") or {}) or resume
                if event.get("type") == "BOOKMARK":
                    continue
                version = None if event.get("type") == "DELETED" else resume
                if version != last:
                    last = version
                    yield version
                if stop.is_set():
                    return
        except ApiException as exc:
            if exc.status != 410:  # 410 Expired: our resume point was compacted away; list again
                raise
            resume = None
