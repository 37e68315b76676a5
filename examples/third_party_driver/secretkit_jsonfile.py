"""jsonfile:///path/to/secrets.json: secrets kept in one JSON file (an example third-party driver).

It shows the whole contract a backend implements, importing nothing of secretkit but
``secretkit.drivers.base``. The store above it checks names and values, caches, retries,
masks and audits; this module only translates each call into the file. The file holds::

    {"next": 4, "secrets": {"db/password": {"version": "3", "text": "…"},
                            "tls/key": {"version": "2", "base64": "…"},
                            "api": {"version": "1", "fields": {"user": "app", "token": "…"}}}}

One process at a time: the lock below serialises this process's threads, and each write
replaces the file atomically, but two processes writing at once would lose one's change.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from secretkit.drivers.base import (
    AlreadyExistsError,
    Capabilities,
    Classified,
    ConflictError,
    InvalidArgumentError,
    Kind,
    NotFoundError,
    NotSupportedError,
    Record,
    StoreURL,
    Value,
    VersionInfo,
    VersionProbe,
)


def encode_value(value: Value) -> dict[str, Any]:
    """The JSON a value is kept as: text as text, octets in base64, fields as an object."""
    raw = value.raw
    if value.kind is Kind.TEXT:
        return {"text": raw}
    if value.kind is Kind.BYTES:
        return {"base64": base64.b64encode(raw).decode()}  # type: ignore[arg-type]
    return {"fields": {k: v if isinstance(v, str) else {"base64": base64.b64encode(v).decode()}
                       for k, v in raw.items()}}  # type: ignore[union-attr]


def decode_value(entry: dict[str, Any]) -> Value:
    if "text" in entry:
        return Value(Kind.TEXT, entry["text"])
    if "base64" in entry:
        return Value(Kind.BYTES, base64.b64decode(entry["base64"]))
    return Value(Kind.FIELDS, {k: v if isinstance(v, str) else base64.b64decode(v["base64"])
                               for k, v in entry["fields"].items()})


class JsonFileDriver:
    """Secrets in one JSON file: current values only, with compare-and-set and create-only."""

    backend = "jsonfile"
    capabilities = Capabilities(
        remote=False,  # a local file: the store does not cache it by default
        versions=False,  # only the current value is kept
        compare_and_set=True,
        create_only=True,
        idempotent_put=False,
        max_value_bytes=65536,
    )
    #: the optional capabilities it implements; the conformance suite holds it to this list
    protocols = (VersionProbe,)
    sdk_loggers: tuple[str, ...] = ()  # no SDK below it, so nothing to mask

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    # -- the file ---------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"next": 1, "secrets": {}}
        return data

    def _save(self, data: dict[str, Any]) -> None:
        # write beside it, then rename: a reader sees the old file or the new, never half of one
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".jsonfile-")
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
        os.replace(tmp, self.path)

    def _entry(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        entry: dict[str, Any] | None = data["secrets"].get(name)
        if entry is None:
            raise NotFoundError("secret not found")  # the store adds the name and backend
        return entry

    # -- the contract (secretkit.drivers.base.Driver) ----------------------------------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        with self._lock:
            entry = self._entry(self._load(), name)
        if version is not None and version != entry["version"]:
            raise NotFoundError(f"version {version!r} not found (only the current one is kept)")
        return Record(decode_value(entry), entry["version"])

    def current_version(self, name: str) -> str:  # VersionProbe: the version, without the value
        with self._lock:
            return str(self._entry(self._load(), name)["version"])

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        with self._lock:  # the check and the write under one lock: compare-and-set is atomic
            data = self._load()
            current = data["secrets"].get(name)
            if create_only and current is not None:
                raise AlreadyExistsError("secret already exists")
            if if_version is not None and (current is None or current["version"] != if_version):
                raise ConflictError(f"the current version is not {if_version!r}")
            version = str(data["next"])
            data["next"] += 1
            data["secrets"][name] = {"version": version, **encode_value(value)}
            self._save(data)
        return VersionInfo(name=name, version=version, stages=frozenset({"current"}))

    def delete(self, name: str, *, purge: bool) -> None:
        with self._lock:
            data = self._load()
            self._entry(data, name)
            del data["secrets"][name]
            self._save(data)

    def list(self, prefix: str) -> list[str]:
        with self._lock:
            return [name for name in self._load()["secrets"] if name.startswith(prefix)]

    def versions(self, name: str) -> Sequence[VersionInfo]:
        raise NotSupportedError("jsonfile keeps only the current version")

    def classify(self, exc: BaseException) -> Classified | None:
        return None  # no SDK: it raises portable errors itself, and an OSError propagates as is

    def close(self) -> None:
        pass  # nothing held open between calls


#: The driver classes open_driver makes, by the title the capabilities table gives them.
DRIVERS = {"jsonfile (example)": JsonFileDriver}


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> JsonFileDriver:
    """``jsonfile:///path/to/secrets.json``; takes no options and no client."""
    if options or client is not None:
        raise InvalidArgumentError(f"jsonfile:// takes no options or client (got {sorted(options) or ['client']})")
    if url.host or not url.path.endswith(".json"):
        raise InvalidArgumentError("jsonfile:// takes an absolute path to a .json file: jsonfile:///path/to/secrets.json")
    return JsonFileDriver(Path(url.path))
