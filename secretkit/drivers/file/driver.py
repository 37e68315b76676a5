"""file://PATH — the driver: versioned secrets in one encrypted document (see the package docstring)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field

from secretkit.config import StoreURL, validate
from secretkit.drivers import versioned
from secretkit.drivers.base import Classified, Record, at_fork
from secretkit.drivers.file.disk import (
    check_trusted,
    fsync_dir,
    locked,
    open_nofollow,
    read_all,
    remove_stale_temporaries,
)
from secretkit.drivers.file.document import decrypt, encrypt
from secretkit.drivers.file.keys import KeySource, load_key
from secretkit.drivers.memory import capabilities
from secretkit.errors import ConfigError, ErrorCode
from secretkit.names import NameRules, portable_rules
from secretkit.secret import Value, VersionInfo

T = TypeVar("T")


class FileOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_env: str = Field("SECRETKIT_FILE_KEY", description="environment variable holding the base64 32-byte key")
    key_file: Path | None = Field(
        None, description="key file to use instead of the store's own key (created 0600 with a new store)"
    )
    keyring: bool = Field(True, description="false: never use the OS keyring; a new store's key goes to the config dir")
    max_value_bytes: int = Field(1024 * 1024, gt=0)


class FileDriver:
    """Versioned secrets in one encrypted file; semantics shared with memory://."""

    backend = "file"
    sdk_loggers: tuple[str, ...] = ()
    capabilities = capabilities(1024 * 1024)

    def __init__(self, directory: Path, key: bytes, *, max_value_bytes: int = 1024 * 1024) -> None:
        self.directory = directory
        self.capabilities = capabilities(max_value_bytes)
        self.names: NameRules = portable_rules()
        self._aead = AESGCM(key)
        self._data = directory / "store.enc"
        self._lock = threading.Lock()
        at_fork(self, FileDriver._after_fork)
        self._cached: tuple[tuple[int, int, int], versioned.Entries] | None = None

    # -- driver calls ------------------------------------------------------------------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        return versioned.read(self._load(), name, version, stage)

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        return self._mutate(
            lambda e: versioned.write(e, name, value, if_version=if_version, create_only=create_only, token=token)
        )

    def delete(self, name: str, *, purge: bool) -> None:
        self._mutate(lambda e: versioned.delete(e, name))

    def list(self, prefix: str) -> list[str]:
        return versioned.names(self._load(), prefix)

    def versions(self, name: str) -> Sequence[VersionInfo]:
        return versioned.versions(self._load(), name)

    def write_pending(self, name: str, value: Value, *, token: str, adopt: bool) -> VersionInfo:
        return self._mutate(lambda e: versioned.write_pending(e, name, value, token=token, adopt=adopt))

    def promote(self, name: str, version: str, *, if_current: str) -> VersionInfo:
        return self._mutate(lambda e: versioned.promote(e, name, version, if_current=if_current))

    def discard_pending(self, name: str, version: str) -> None:
        self._mutate(lambda e: versioned.discard_pending(e, name, version))

    def classify(self, exc: BaseException) -> Classified | None:
        if isinstance(exc, PermissionError):
            return Classified(ErrorCode.PERMISSION_DENIED, f"file store at {self.directory}: {exc.strerror}")
        if isinstance(exc, OSError):
            return Classified(ErrorCode.UNAVAILABLE, f"file store at {self.directory}: {exc.strerror}")
        return None

    def close(self) -> None:
        pass

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # a thread of the parent may have held it (mid-write) at the fork

    # -- storage -----------------------------------------------------------------------

    def _load(self) -> versioned.Entries:
        """The current document; decrypted again only when the file changed on disk."""
        with self._lock:
            fd = open_nofollow(self._data, os.O_RDONLY, "store file", missing_ok=True)
            if fd is None:
                return {}
            try:
                st = os.fstat(fd)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
                if self._cached is None or self._cached[0] != stamp:
                    self._cached = (stamp, self._decrypt(read_all(fd)))
            finally:
                os.close(fd)
            return self._cached[1]

    def _mutate(self, change: Callable[[versioned.Entries], T]) -> T:
        """Read-modify-write under the process lock and the inter-process file lock."""
        with self._lock, self._file_lock():
            remove_stale_temporaries(self.directory)
            fd = open_nofollow(self._data, os.O_RDONLY, "store file", missing_ok=True)
            if fd is None:
                entries: versioned.Entries = {}
            else:
                try:
                    entries = self._decrypt(read_all(fd))
                finally:
                    os.close(fd)
            result = change(entries)
            blob = self._encrypt(entries)
            self._atomic_write(blob)
            st = self._data.stat()
            self._cached = ((st.st_mtime_ns, st.st_size, st.st_ino), entries)
            return result

    def _file_lock(self) -> contextlib.AbstractContextManager[None]:
        return locked(self.directory)

    def _atomic_write(self, blob: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".store.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._data)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        fsync_dir(self.directory)

    def _encrypt(self, entries: versioned.Entries) -> bytes:
        return encrypt(self._aead, entries)

    def _decrypt(self, blob: bytes) -> versioned.Entries:
        return decrypt(self._aead, blob, self._data)


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> FileDriver:
    opts = validate(FileOptions, options, what="file store")
    raw = url.path if url.host in ("", "localhost") else url.host + url.path
    directory = store_directory(raw)
    try:
        with locked(directory):
            remove_stale_temporaries(directory)
            data = directory / "store.enc"
            if data.is_symlink():
                raise ConfigError(f"refusing store file {data}: it is a symbolic link")
            key = load_key(directory, KeySource(opts.key_env, opts.key_file, opts.keyring))
    except OSError as exc:
        raise ConfigError(f"cannot open file store {directory}: {exc.strerror or exc} ({exc.filename})") from None
    return FileDriver(directory, key, max_value_bytes=opts.max_value_bytes)


def store_directory(raw: str) -> Path:
    """The store's directory, created if missing; any path that cannot be one is a ConfigError."""
    if not raw:
        raise ConfigError("file:// needs a directory, e.g. file:///home/me/.secrets or file://./dev-secrets")
    if "\0" in raw:
        raise ConfigError(f"file store path {raw!r} contains a NUL byte")
    try:
        directory = Path(raw).expanduser()
    except RuntimeError as exc:  # ~user that does not exist, or no home directory at all
        raise ConfigError(f"file store path {raw!r}: {exc}") from None
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        raise ConfigError(f"file store path {directory} exists and is not a directory") from None
    except NotADirectoryError:
        raise ConfigError(f"file store path {directory}: a part of it is a file, not a directory") from None
    except OSError as exc:
        raise ConfigError(f"file store directory {directory} cannot be created: {exc.strerror or exc}") from None
    check_trusted(directory, directory.stat(), "file store directory")
    return directory
