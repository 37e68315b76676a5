"""files://PATH — the driver: a read-only translation of the portable calls onto a ``Tree``."""

from __future__ import annotations

import builtins
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from secretkit.drivers.base import (
    Capabilities,
    ChangeStream,
    Classified,
    ConfigError,
    ErrorCode,
    InvalidArgumentError,
    NameRules,
    NotFoundError,
    NotSupportedError,
    Record,
    StoreURL,
    Value,
    VersionInfo,
    VersionProbe,
    validate_options as validate,
)
from secretkit.drivers.files.inotify import Inotify
from secretkit.drivers.files.tree import Tree, bookkeeping

_MAX_SEGMENT_BYTES = 255  # NAME_MAX on Linux and macOS
NAME_RULE = (
    "files:// names are relative paths under the store's directory: segments separated by single '/', "
    "none empty, '.' or starting with '..' (the kubelet's own entries such as '..data'; one leading dot, "
    f"as in '.dockerconfigjson', is part of a name), each at most {_MAX_SEGMENT_BYTES} bytes"
)
READ_ONLY = (
    "files:// is read-only: the files belong to whatever mounted them (kubelet, CSI driver, Vault Agent, Docker)"
)



class FilesOptions(BaseModel):
    """Options of ``files://PATH`` (URL query, keyword arguments or config file)."""

    model_config = ConfigDict(extra="forbid")

    max_file_bytes: int = Field(
        1024 * 1024, gt=0,
        description="largest file read (and largest total of a directory read as fields); a larger one is "
        "InvalidArgumentError naming the secret",
    )
    poll_interval: float = Field(
        1.0, gt=0, description="seconds between checks of a watched secret (the floor; inotify wakes it sooner)"
    )
    inotify: bool = Field(True, description="on Linux, wake watches on inotify events instead of only polling")
    optional: bool = Field(
        False, description="a missing PATH reads as an empty store (every get NotFoundError) instead of an error"
    )
    value_key: str = Field(
        "value", min_length=1,
        description="a directory holding only this file reads as the text (or octets) in it: a mounted Kubernetes "
        "Secret in which k8s:// keeps text, read as k8s:// reads it",
    )


def _holds(name: str) -> bool:
    for segment in name.split("/"):
        if not segment or segment == "." or bookkeeping(segment) or "\x00" in segment:
            return False
        if len(segment.encode("utf-8", "surrogatepass")) > _MAX_SEGMENT_BYTES:
            return False
    return True


class FilesDriver:
    """Read-only driver over a directory tree laid out by the kubelet, a CSI driver, Vault Agent or Docker."""

    backend = "files"
    protocols = (VersionProbe, ChangeStream)
    sdk_loggers: tuple[str, ...] = ()
    sdk_value_keys: tuple[str, ...] = ()
    # read-only: the store refuses writes before any I/O, and a layered store skips this layer for them
    capabilities = Capabilities(
        remote=False, versions=False, compare_and_set=False, create_only=False, idempotent_put=False, read_only=True,
    )

    def __init__(self, root: Path, options: FilesOptions | None = None) -> None:
        self.options = options or FilesOptions()
        self.root = str(root)
        self.names = NameRules(NAME_RULE, _holds)
        self._tree = Tree(self.root, max_file_bytes=self.options.max_file_bytes, optional=self.options.optional,
                          value_key=self.options.value_key)

    # -- reads ---------------------------------------------------------------------------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        if version is not None or stage is not None:
            raise NotSupportedError("files:// keeps no versions or stages")
        value, snapshot = self._tree.consistently(name, self._tree.read_once)
        return Record(value, snapshot.version())

    def current_version(self, name: str) -> str:
        return self._tree.consistently(name, self._tree.probe_once).version()

    def list(self, prefix: str) -> list[str]:
        return [name for name in self._tree.names() if name.startswith(prefix) and self._nameable(name)]

    def versions(self, name: str) -> Sequence[VersionInfo]:
        raise NotSupportedError("files:// keeps no version history")

    def _nameable(self, name: str) -> bool:
        """Only names ``get`` accepts are listed (a file name with a control character is not one)."""
        try:
            self.names.check(name)
        except InvalidArgumentError:
            return False
        return True

    # -- writes --------------------------------------------------------------------------

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        raise NotSupportedError(READ_ONLY)

    def delete(self, name: str, *, purge: bool) -> None:
        raise NotSupportedError(READ_ONLY)

    def classify(self, exc: BaseException) -> Classified | None:
        if isinstance(exc, PermissionError):
            return Classified(ErrorCode.PERMISSION_DENIED, f"files:// at {self.root}: {exc.strerror}")
        if isinstance(exc, OSError):
            return Classified(ErrorCode.UNAVAILABLE, f"files:// at {self.root}: {exc.strerror}")
        return None

    def close(self) -> None:
        pass

    # -- watching ------------------------------------------------------------------------

    def watch_versions(self, name: str, stop: threading.Event) -> Iterator[str | None]:
        """The current version now and after every change (None while missing), until ``stop``.

        Wakes on inotify events where available and re-checks every ``poll_interval`` seconds
        regardless, so a change is noticed within ``poll_interval`` even without inotify.
        """
        seen = self._version_or_none(name)
        yield seen
        interval = self.options.poll_interval
        step = min(interval, 0.2)  # how often ``stop`` is looked at
        notifier = Inotify.create() if self.options.inotify else None
        last_check = time.monotonic()
        try:
            while not stop.is_set():
                if notifier is not None:
                    notifier.watch(self._watch_dirs(name))
                    woke = notifier.wait(step)
                else:
                    stop.wait(step)
                    woke = False
                now = time.monotonic()
                if stop.is_set() or (not woke and now - last_check < interval):
                    continue
                last_check = now
                version = self._version_or_none(name)
                if version != seen:
                    seen = version
                    yield version
        finally:
            if notifier is not None:
                notifier.close()

    def _version_or_none(self, name: str) -> str | None:
        try:
            return self.current_version(name)
        except NotFoundError:
            return None

    def _watch_dirs(self, name: str) -> builtins.list[str]:
        """The directories whose entries can change ``name``: PATH and each one on the way down."""
        dirs = [self.root]
        path = self.root
        for part in name.split("/"):
            path = os.path.join(path, part)
            if os.path.isdir(path):
                dirs.append(path)
        return dirs


#: The driver classes this factory opens, by the title docs/capabilities.md gives them.
DRIVERS: dict[str, type] = {"files": FilesDriver}


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> FilesDriver:
    opts = validate(FilesOptions, options, what="files store")
    raw = url.path if url.host in ("", "localhost") else url.host + url.path
    if not raw:
        raise ConfigError("files:// needs a directory, e.g. files:///var/run/secrets/app or files:///run/secrets")
    root = Path(raw).expanduser()
    if not root.is_dir() and not opts.optional:
        problem = "is not a directory" if root.exists() else "does not exist"
        raise ConfigError(f"files:// directory {root} {problem} (add ?optional=true to read a missing one as empty)")
    return FilesDriver(root, opts)
