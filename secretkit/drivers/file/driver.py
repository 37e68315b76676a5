"""file://PATH — the driver: versioned secrets in one encrypted document (see the package docstring)."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field

from secretkit.drivers import versioned
from secretkit.drivers.base import (
    Classified,
    ConfigError,
    ErrorCode,
    NameRules,
    NativeStages,
    NotFoundError,
    Record,
    StoreURL,
    Value,
    VersionInfo,
    at_fork,
    portable_rules,
    validate_options as validate,
)
from secretkit.drivers.file.disk import (
    check_trusted,
    fsync_dir,
    locked,
    open_nofollow,
    read_all,
    remove_stale_temporaries,
)
from secretkit.drivers.file.document import decrypt, encrypt
from secretkit.drivers.file.keys import LEGACY_KEY, STORE_ID, KeySource, load_key
from secretkit.drivers.memory import capabilities

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
    """Versioned secrets in one encrypted file; semantics shared with memory://.

    A store that does not exist yet is created by its first write (directory, key, store id),
    never by a read: a read of a mistyped path says that no store is there and leaves nothing
    behind. ``key`` is None until the store has one (``keys`` says where it is looked for).
    """

    backend = "file"
    protocols = (NativeStages,)
    sdk_loggers: tuple[str, ...] = ()
    sdk_value_keys: tuple[str, ...] = ()
    capabilities = capabilities(1024 * 1024)

    def __init__(
        self, directory: Path, key: bytes | None, *, keys: KeySource | None = None, max_value_bytes: int = 1024 * 1024
    ) -> None:
        self.directory = directory
        self.capabilities = capabilities(max_value_bytes)
        self.names: NameRules = portable_rules()
        self._keys = keys or KeySource()
        self._aead = AESGCM(key) if key is not None else None
        self._data = directory / "store.enc"
        self._lock = threading.Lock()
        at_fork(self, FileDriver._after_fork)
        self._cached: tuple[tuple[int, int, int], versioned.Entries] | None = None

    # -- driver calls ------------------------------------------------------------------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        return versioned.read(self._load(), name, version, stage)

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        return self._mutate(
            lambda e: versioned.write(e, name, value, if_version=if_version, create_only=create_only, token=token),
            create=True,
        )

    def delete(self, name: str, *, purge: bool) -> None:
        self._mutate(lambda e: versioned.delete(e, name))

    def list(self, prefix: str) -> list[str]:
        # a store that does not exist holds no names: listing it is not an error (a layered
        # store lists every layer), and creates nothing either
        return versioned.names(self._load(missing_ok=True), prefix)

    def versions(self, name: str) -> Sequence[VersionInfo]:
        return versioned.versions(self._load(), name)

    def write_pending(self, name: str, value: Value, *, token: str, adopt: bool) -> VersionInfo:
        return self._mutate(lambda e: versioned.write_pending(e, name, value, token=token, adopt=adopt), create=True)

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

    def _load(self, *, missing_ok: bool = False) -> versioned.Entries:
        """The current document; decrypted again only when the file changed on disk.

        A store that does not exist is a ``NotFoundError`` naming its path (``missing_ok``: empty).
        """
        with self._lock:
            fd = open_nofollow(self._data, os.O_RDONLY, "store file", missing_ok=True)
            if fd is None:
                if missing_ok or store_exists(self.directory):
                    return {}  # a store whose first write made its key, then stopped
                raise self._no_store()
            try:
                st = os.fstat(fd)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
                if self._cached is None or self._cached[0] != stamp:
                    self._cached = (stamp, self._decrypt(read_all(fd)))
            finally:
                os.close(fd)
            return self._cached[1]

    def _no_store(self) -> NotFoundError:
        return NotFoundError(
            f"no file store at {self.directory}: nothing has been written there (the first write creates it)"
        )

    def _mutate(self, change: Callable[[versioned.Entries], T], *, create: bool = False) -> T:
        """Read-modify-write under the process lock and the inter-process file lock; only a
        ``create`` change (a write) makes a store that does not exist yet."""
        with self._lock:
            if not store_exists(self.directory):
                if not create:
                    raise self._no_store()
                make_directory(self.directory)
            with self._file_lock():
                remove_stale_temporaries(self.directory)
                if self._aead is None:  # under the store lock, so two first writers make one key
                    self._aead = AESGCM(self._key(create=create))
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

    def _key(self, *, create: bool) -> bytes:
        key = load_key(self.directory, self._keys, create=create)
        if key is None:  # only a store with neither data nor key gets here, and only a write asks
            raise self._no_store()
        return key

    def _encrypt(self, entries: versioned.Entries) -> bytes:
        assert self._aead is not None  # only _mutate encrypts, after it has the key
        return encrypt(self._aead, entries)

    def _decrypt(self, blob: bytes) -> versioned.Entries:
        if self._aead is None:  # another process created the store after this one opened it
            self._aead = AESGCM(self._key(create=False))
        return decrypt(self._aead, blob, self._data)


#: The driver classes this factory opens, by the title docs/capabilities.md gives them.
DRIVERS: dict[str, type] = {"file": FileDriver}


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> FileDriver:
    opts = validate(FileOptions, options, what="file store")
    raw = url.path if url.host in ("", "localhost") else url.host + url.path
    directory = store_directory(raw)
    source = KeySource(opts.key_env, opts.key_file, opts.keyring)
    try:
        if store_exists(directory):
            with locked(directory):
                remove_stale_temporaries(directory)
                data = directory / "store.enc"
                if data.is_symlink():
                    raise ConfigError(f"refusing store file {data}: it is a symbolic link")
                key = load_key(directory, source)
        else:
            # Nothing to open yet, and opening makes nothing: the first write creates the store
            # (so a mistyped path read by `secretkit get` leaves no stray store behind). A key that
            # exists already ($SECRETKIT_FILE_KEY, a key_file) is checked now all the same.
            key = load_key(directory, source, create=False)
    except OSError as exc:
        raise ConfigError(f"cannot open file store {directory}: {exc.strerror or exc} ({exc.filename})") from None
    return FileDriver(directory, key, keys=source, max_value_bytes=opts.max_value_bytes)


def store_exists(directory: Path) -> bool:
    """True once a first write has begun making a store in ``directory`` (its key or its data);
    a lock file alone, or an empty directory, is no store."""
    return any(os.path.lexists(directory / name) for name in ("store.enc", STORE_ID, LEGACY_KEY))


def store_directory(raw: str) -> Path:
    """The store's directory, checked but not created; any path that cannot be one is a ConfigError."""
    if not raw:
        raise ConfigError("file:// needs a directory, e.g. file:///home/me/.secrets or file://./dev-secrets")
    if "\0" in raw:
        raise ConfigError(f"file store path {raw!r} contains a NUL byte")
    try:
        directory = Path(raw).expanduser()
    except RuntimeError as exc:  # ~user that does not exist, or no home directory at all
        raise ConfigError(f"file store path {raw!r}: {exc}") from None
    try:
        st = directory.stat()
    except FileNotFoundError:
        return directory  # made by the first write (make_directory)
    except NotADirectoryError:
        raise ConfigError(f"file store path {directory}: a part of it is a file, not a directory") from None
    except OSError as exc:
        raise ConfigError(f"file store path {directory}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"file store path {directory} exists and is not a directory")
    check_trusted(directory, st, "file store directory")
    return directory


def make_directory(directory: Path) -> None:
    """Create the store's directory (0700) for its first write; ConfigError if it cannot be one."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        raise ConfigError(f"file store path {directory} exists and is not a directory") from None
    except NotADirectoryError:
        raise ConfigError(f"file store path {directory}: a part of it is a file, not a directory") from None
    except OSError as exc:
        raise ConfigError(f"file store directory {directory} cannot be created: {exc.strerror or exc}") from None
    check_trusted(directory, directory.stat(), "file store directory")
