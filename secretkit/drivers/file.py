"""file://PATH — an encrypted local store for development and the CLI's default.

PATH is a directory holding ``store.enc`` (every secret and version, encrypted as one
AES-256-GCM blob), ``store.lock`` (an advisory lock so two processes never interleave a
read-modify-write) and, unless the key comes from the environment, ``key`` (0600).

No plaintext value touches disk: the document is encrypted in memory and written to a
temporary file that is fsynced and renamed over the old one, so a crash leaves either the
old or the new store, never a torn one. A wrong key fails to decrypt, and since every
write decrypts first, a wrong key can never overwrite anything.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import json
import os
import secrets as _random
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from secretkit.config import StoreURL, validate
from secretkit.drivers import versioned
from secretkit.drivers.base import Capabilities, Classified, Record
from secretkit.drivers.memory import capabilities
from secretkit.errors import AuthenticationError, ConfigError, DataLossError, ErrorCode
from secretkit.secret import Kind, Value, VersionInfo

try:  # POSIX advisory locks; elsewhere only the in-process lock applies
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
# Without flock a temporary may belong to a live writer in another process; only old ones are stale.
_STALE_WITHOUT_LOCK_SECONDS = 3600.0
# A file linked in from an unnamed O_TMPFILE never has a partial name to clean up after a crash.
_UNNAMED_TMP = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")
MAGIC = b"SKFS1\n"
AAD = b"secretkit file store v1"
NONCE_BYTES = 12


class FileOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_env: str = Field("SECRETKIT_FILE_KEY", description="environment variable holding the base64 32-byte key")
    key_file: Path | None = Field(None, description="key file (default: PATH/key, created 0600 with a new store)")
    max_value_bytes: int = Field(1024 * 1024, gt=0)


class FileDriver:
    """Versioned secrets in one encrypted file; semantics shared with memory://."""

    backend = "file"

    def __init__(self, directory: Path, key: bytes, *, max_value_bytes: int = 1024 * 1024) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.directory = directory
        self.capabilities: Capabilities = capabilities(max_value_bytes)
        self._aead = AESGCM(key)
        self._data = directory / "store.enc"
        self._lock = threading.Lock()
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

    # -- storage -----------------------------------------------------------------------

    def _load(self) -> versioned.Entries:
        """The current document; decrypted again only when the file changed on disk."""
        with self._lock:
            fd = _open_nofollow(self._data, os.O_RDONLY, "store file", missing_ok=True)
            if fd is None:
                return {}
            try:
                st = os.fstat(fd)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
                if self._cached is None or self._cached[0] != stamp:
                    self._cached = (stamp, self._decrypt(_read_all(fd)))
            finally:
                os.close(fd)
            return self._cached[1]

    def _mutate(self, change: Callable[[versioned.Entries], T]) -> T:
        """Read-modify-write under the process lock and the inter-process file lock."""
        with self._lock, self._file_lock():
            _remove_stale_temporaries(self.directory)
            fd = _open_nofollow(self._data, os.O_RDONLY, "store file", missing_ok=True)
            if fd is None:
                entries: versioned.Entries = {}
            else:
                try:
                    entries = self._decrypt(_read_all(fd))
                finally:
                    os.close(fd)
            result = change(entries)
            blob = self._encrypt(entries)
            self._atomic_write(blob)
            st = self._data.stat()
            self._cached = ((st.st_mtime_ns, st.st_size, st.st_ino), entries)
            return result

    def _file_lock(self) -> contextlib.AbstractContextManager[None]:
        return _locked(self.directory)

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
        _fsync_dir(self.directory)

    def _encrypt(self, entries: versioned.Entries) -> bytes:
        nonce = _random.token_bytes(NONCE_BYTES)
        plaintext = json.dumps(_to_doc(entries), separators=(",", ":")).encode()
        return MAGIC + nonce + self._aead.encrypt(nonce, plaintext, AAD)

    def _decrypt(self, blob: bytes) -> versioned.Entries:
        from cryptography.exceptions import InvalidTag

        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + NONCE_BYTES + 16:
            raise DataLossError(f"{self._data} is not a secretkit file store (bad header)")
        nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
        try:
            plaintext = self._aead.decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], AAD)
        except InvalidTag:
            raise AuthenticationError(
                f"cannot decrypt {self._data}: wrong key, or the file was altered; nothing was changed"
            ) from None
        return _from_doc(json.loads(plaintext))


def _to_doc(entries: versioned.Entries) -> dict[str, Any]:
    def value_doc(v: Value) -> Any:
        if v.kind is Kind.BYTES:
            return base64.b64encode(v.bytes).decode()
        return v.text if v.kind is Kind.TEXT else dict(v.fields)

    return {
        "format": 1,
        "secrets": {
            name: {
                "stages": e.stages,
                "versions": [
                    {"id": v.id, "kind": v.value.kind.value, "data": value_doc(v.value),
                     "created": v.created_at.isoformat(), "token": v.token}
                    for v in e.versions
                ],
            }
            for name, e in entries.items()
        },
    }


def _from_doc(doc: dict[str, Any]) -> versioned.Entries:
    def value_of(kind: str, data: Any) -> Value:
        if kind == Kind.BYTES.value:
            return Value(Kind.BYTES, base64.b64decode(data))
        return Value.of(data)

    return {
        name: versioned.Entry(
            versions=[
                versioned.Version(v["id"], value_of(v["kind"], v["data"]), datetime.fromisoformat(v["created"]), v["token"])
                for v in e["versions"]
            ],
            stages=dict(e["stages"]),
        )
        for name, e in doc["secrets"].items()
    }


def load_key(directory: Path, opts: FileOptions) -> bytes:
    """The key from ``opts.key_env``, else the key file; a new key file only for a new store.

    Call it holding the store's lock, so that concurrent first opens agree on one key.
    """
    encoded = os.environ.get(opts.key_env)
    source = f"${opts.key_env}"
    key_file = opts.key_file or directory / "key"
    if not encoded:
        source = str(key_file)
        if not key_file.exists():
            if (directory / "store.enc").exists():
                raise AuthenticationError(
                    f"file store {directory} exists but its key is missing: set {opts.key_env} or restore {key_file}"
                )
            key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _publish(key_file, (new_key() + "\n").encode())  # if another opener won, its key is read below
        # a key named by the user may be a symlink (a Kubernetes secret volume is made of them);
        # the one beside the store is ours and never is
        raw = _read_trusted(key_file, "key file", follow_symlinks=opts.key_file is not None)
        encoded = (raw or b"").decode("utf-8", "replace").strip()
    try:
        key = base64.urlsafe_b64decode(encoded.replace("+", "-").replace("/", "_") + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigError(f"the file store key in {source} must be 32 bytes, base64-encoded")
    return key


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """The store's inter-process lock (POSIX flock; elsewhere only the process lock applies)."""
    fd = _open_nofollow(directory / "store.lock", os.O_RDWR | os.O_CREAT, "lock file")
    assert fd is not None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _publish(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists; True if this call created it.

    The content is written and fsynced before the name appears (a hard link, which also
    refuses to replace an existing file), so a crash at any point leaves no file or a whole
    one, and of two racing creators exactly one wins.
    """
    if _UNNAMED_TMP:
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
        try:
            try:
                fd = os.open(".", os.O_TMPFILE | os.O_WRONLY | _O_CLOEXEC, 0o600, dir_fd=dfd)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    raise
            else:
                try:
                    _write_all(fd, data)
                    os.fsync(fd)
                    # dst_dir_fd makes CPython call linkat(..., AT_SYMLINK_FOLLOW), which links the
                    # unnamed file itself rather than the /proc symlink to it
                    os.link(f"/proc/self/fd/{fd}", path.name, dst_dir_fd=dfd)
                except FileExistsError:
                    return False
                finally:
                    os.close(fd)
                os.fsync(dfd)
                return True
        finally:
            os.close(dfd)
    # a filesystem without unnamed files: a named temporary, linked the same way
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # no hard links here (FAT, some network filesystems): create-exclusive, not atomic
            try:
                out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o600)
            except FileExistsError:
                return False
            try:
                _write_all(out, data)
                os.fsync(out)
            finally:
                os.close(out)
        _fsync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _remove_stale_temporaries(directory: Path) -> None:
    """Delete what writers killed mid-write left: each is a whole copy of the store, so a
    secret deleted since would stay decryptable from it. Call holding the store lock, under
    which no live writer has a temporary."""
    cutoff = None if fcntl is not None else time.time() - _STALE_WITHOUT_LOCK_SECONDS
    with os.scandir(directory) as entries:
        for entry in entries:
            if not (entry.name.startswith(".store.") and entry.name.endswith(".tmp")):
                continue
            if cutoff is not None and entry.stat(follow_symlinks=False).st_mtime > cutoff:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def _check_trusted(path: Path, st: os.stat_result, what: str) -> None:
    """Refuse what another user could have planted or can still change (POSIX owners and modes)."""
    if not hasattr(os, "geteuid"):
        return
    me = os.geteuid()
    if st.st_uid not in (me, 0):  # root could change anything anyway, so trusting it adds no one
        raise ConfigError(f"refusing {what} {path}: it is owned by uid {st.st_uid}, not by you (uid {me}) or root")
    loose = st.st_mode & 0o022
    if loose:
        who = " and ".join(w for bit, w in ((0o020, "group"), (0o002, "others")) if loose & bit)
        raise ConfigError(
            f"refusing {what} {path}: it is writable by {who} (mode {stat.S_IMODE(st.st_mode):o}); "
            f"if that is not on purpose, run: chmod go-w {path}"
        )


def _open_nofollow(path: Path, flags: int, what: str, *, missing_ok: bool = False) -> int | None:
    """``os.open`` that refuses a symlink in the last component (None if missing and missing_ok)."""
    if not _O_NOFOLLOW and os.path.islink(path):  # pragma: no cover - platforms without O_NOFOLLOW
        raise ConfigError(f"refusing {what} {path}: it is a symbolic link")
    try:
        return os.open(path, flags | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY, 0o600)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise
    except OSError as exc:
        # Linux and macOS say ELOOP for a symlink under O_NOFOLLOW, FreeBSD says EMLINK
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise ConfigError(f"refusing {what} {path}: it is a symbolic link") from None
        raise


def _read_trusted(path: Path, what: str, *, follow_symlinks: bool = False) -> bytes | None:
    """The content of a regular file that we or root own and only the owner can change; None if missing."""
    if follow_symlinks:
        try:
            fd: int | None = os.open(path, os.O_RDONLY | _O_CLOEXEC | _O_BINARY)
        except FileNotFoundError:
            fd = None
    else:
        fd = _open_nofollow(path, os.O_RDONLY, what, missing_ok=True)
    if fd is None:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"refusing {what} {path}: not a regular file")
        _check_trusted(path, st, what)
        return _read_all(fd)
    finally:
        os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    """Make a rename or link in ``directory`` durable (POSIX; a no-op where directories cannot be opened)."""
    if hasattr(os, "O_DIRECTORY"):
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def new_key() -> str:
    """A fresh key in the form ``SECRETKIT_FILE_KEY`` expects."""
    return base64.urlsafe_b64encode(_random.token_bytes(32)).decode()


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> FileDriver:
    opts = validate(FileOptions, options, what="file store")
    raw = url.path if url.host in ("", "localhost") else url.host + url.path
    directory = store_directory(raw)
    try:
        with _locked(directory):
            _remove_stale_temporaries(directory)
            data = directory / "store.enc"
            if data.is_symlink():
                raise ConfigError(f"refusing store file {data}: it is a symbolic link")
            key = load_key(directory, opts)
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
    _check_trusted(directory, directory.stat(), "file store directory")
    return directory
