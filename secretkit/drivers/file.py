"""file://PATH — an encrypted local store for development and the CLI's default.

PATH is a directory holding ``store.enc`` (every secret and version, encrypted as one
AES-256-GCM blob), ``store.lock`` (an advisory lock so two processes never interleave a
read-modify-write) and ``store.id`` (a random name for the store; not a secret).

The key is kept out of PATH, so a copy of the directory (a backup, a tarball, a synced
folder) decrypts nothing. It is, in this order: ``$SECRETKIT_FILE_KEY``; the file named by
the ``key_file`` option; else the store's own key, found by its store id in the OS keyring
(with the optional ``keyring`` package) or in ``<config dir>/secretkit/keys/<id>.key``.
The store's own key records the real path of the directory it was made for, and a
directory at any other path is refused: a copy on the same machine, as the same user,
finds the key by id but is not given it. Stores made by older versions keep ``PATH/key``
beside the data; that still opens, with a warning, until ``migrate_legacy_key`` moves it.

No plaintext value touches disk: the document is encrypted in memory and written to a
temporary file that is fsynced and renamed over the old one, so a crash leaves either the
old or the new store, never a torn one. A wrong key fails to decrypt, and since every
write decrypts first, a wrong key can never overwrite anything. The key and the store id
are created whole or not at all and, when two processes create a store at once, once.

The directory, the key and the files in PATH are trusted only if owned by the user (or
root) and not writable by group or others, and never through a symlink in PATH.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import json
import logging
import os
import re
import secrets as _random
import stat
import sys
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
from secretkit.names import NameRules, portable_rules
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
STORE_ID = "store.id"
LEGACY_KEY = "key"
KEYRING_SERVICE = "secretkit-file-store"
_KEY_FORMAT = "secretkit-file-store-key/1"
_STORE_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
_IN_KEYRING = "keyring"  # where a store's own key went, when not in a key file
MAGIC = b"SKFS1\n"
AAD = b"secretkit file store v1"
NONCE_BYTES = 12

log = logging.getLogger("secretkit.file")
_warned_legacy: set[str] = set()


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

    def __init__(self, directory: Path, key: bytes, *, max_value_bytes: int = 1024 * 1024) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.directory = directory
        self.capabilities: Capabilities = capabilities(max_value_bytes)
        self.names: NameRules = portable_rules()
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
        raw = v.raw
        if isinstance(raw, bytes):
            return base64.b64encode(raw).decode()
        if isinstance(raw, str):
            return raw
        # octet fields (as Kubernetes keeps them) are marked, text fields stay plain strings
        return {k: {"base64": base64.b64encode(x).decode()} if isinstance(x, bytes) else x for k, x in raw.items()}

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
        if kind == Kind.TEXT.value:
            return Value(Kind.TEXT, data)
        return Value(Kind.FIELDS, {
            k: base64.b64decode(x["base64"]) if isinstance(x, dict) and "base64" in x else x for k, x in data.items()
        })

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
    """The key from ``opts.key_env``, else ``opts.key_file``, else the store's own key (made
    for a new store). Call it holding the store's lock, so concurrent first opens agree on one key.
    """
    encoded = os.environ.get(opts.key_env)
    if encoded:
        return _parse_key(encoded, f"${opts.key_env}")[0]
    if opts.key_file is not None:
        return _named_key(directory, opts.key_file.expanduser(), opts)
    return _own_key(directory, opts)


def _named_key(directory: Path, key_file: Path, opts: FileOptions) -> bytes:
    # a key the user names may be a symlink (a Kubernetes secret volume is made of them)
    raw = _read_trusted(key_file, "key file", follow_symlinks=True)
    if raw is None:
        if (directory / "store.enc").exists():
            raise AuthenticationError(
                f"file store {directory} exists but its key is missing: set {opts.key_env} or restore {key_file}"
            )
        key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _publish(key_file, (new_key() + "\n").encode())  # if another opener won, its key is read below
        raw = _read_trusted(key_file, "key file", follow_symlinks=True) or b""
    return _parse_key(raw.decode("utf-8", "replace"), str(key_file))[0]


def _own_key(directory: Path, opts: FileOptions) -> bytes:
    store_id = _read_store_id(directory)
    legacy = directory / LEGACY_KEY
    legacy_raw = _read_trusted(legacy, "key file")
    has_data = (directory / "store.enc").exists()
    if store_id is None:
        if legacy_raw is not None and (legacy_raw.strip() or has_data):
            _warn_legacy(directory)
            return _parse_key(legacy_raw.decode("utf-8", "replace"), str(legacy))[0]
        if legacy_raw is not None:  # empty, and no data: an older secretkit was killed creating the store
            legacy.unlink()
        if has_data:
            raise AuthenticationError(
                f"file store {directory} exists but its key is missing: set {opts.key_env} or key_file= to its key"
            )
        return _create_own_key(directory, opts)
    found = _find_own_key(store_id, opts)
    if isinstance(found, list):
        if legacy_raw is not None and legacy_raw.strip():  # a migration that stopped half-way
            _warn_legacy(directory)
            return _parse_key(legacy_raw.decode("utf-8", "replace"), str(legacy))[0]
        raise AuthenticationError(
            f"file store {directory} exists but its key is missing: it is not in {' nor in '.join(found)}. "
            f"Set {opts.key_env} or key_file= to its key (a copy of a store's directory never carries its key)"
        )
    key, record, location = found
    here = os.path.realpath(directory)
    if record.get("directory") != here or record.get("store_id") != store_id:
        explicit = (
            f'{opts.key_env}="$(keyring get {KEYRING_SERVICE} {store_id})"'
            if location == _IN_KEYRING
            else f"key_file={location}"
        )
        raise AuthenticationError(
            f"the key of file store {directory} belongs to another directory, {record.get('directory')}: "
            f"this one is a copy, or was moved, and is not given that key by default. "
            f"If it is yours, pass the key explicitly: {explicit} (see docs/backends/file.md)"
        )
    if legacy_raw is not None:
        log.warning(
            "file store %s: remove %s, a leftover of a key migration; its key is in %s", directory, legacy, location
        )
    return key


def _create_own_key(directory: Path, opts: FileOptions) -> bytes:
    """A new key under a new store id. The key is saved before the id appears in the directory,
    so a store id always has its key; a crash in between leaves only an unused key behind."""
    store_id = _random.token_hex(16)
    key = _random.token_bytes(32)
    location = _save_own_key(directory, store_id, key, opts)
    try:
        created = _publish(directory / STORE_ID, (store_id + "\n").encode())
    except BaseException:
        _forget_own_key(store_id, location)
        raise
    if not created:  # another process linked its id first (possible only without flock)
        _forget_own_key(store_id, location)
        return _own_key(directory, opts)
    return key


def _save_own_key(directory: Path, store_id: str, key: bytes, opts: FileOptions) -> str:
    """Keep the key in the OS keyring if there is one, else in the key directory; where it went."""
    record = json.dumps({
        "format": _KEY_FORMAT,
        "store_id": store_id,
        "directory": os.path.realpath(directory),
        "key": base64.urlsafe_b64encode(key).decode(),
    })
    ring = _os_keyring() if opts.keyring else None
    if ring is not None:
        try:
            ring.set_password(KEYRING_SERVICE, store_id, record)
            # some backends accept a write they cannot read back (a locked or read-only collection)
            if ring.get_password(KEYRING_SERVICE, store_id) == record:
                return _IN_KEYRING
        except Exception as exc:  # noqa: BLE001 - any keyring failure: the key directory still works
            log.debug("the OS keyring refused the key of file store %s (%s); using the key directory", directory, exc)
        with contextlib.suppress(Exception):
            ring.delete_password(KEYRING_SERVICE, store_id)
    path = key_directory(create=True) / f"{store_id}.key"
    if not _publish(path, record.encode() + b"\n"):
        raise ConfigError(f"refusing to overwrite key file {path}")  # a random 128-bit id does not collide
    return str(path)


def _forget_own_key(store_id: str, location: str) -> None:
    if location == _IN_KEYRING:
        ring = _os_keyring()
        if ring is not None:
            with contextlib.suppress(Exception):
                ring.delete_password(KEYRING_SERVICE, store_id)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(location)


def _find_own_key(store_id: str, opts: FileOptions) -> tuple[bytes, dict[str, Any], str] | list[str]:
    """The key saved for ``store_id``, its record and where it is; else the places looked in."""
    looked = []
    keys = key_directory(create=False)
    path = keys / f"{store_id}.key"
    raw = _read_trusted(path, "key file") if keys.exists() else None
    if raw is not None:
        key, record = _parse_key(raw.decode("utf-8", "replace"), str(path))
        return key, record or {}, str(path)
    looked.append(str(path))
    ring = _os_keyring() if opts.keyring else None
    if ring is not None:
        try:
            value = ring.get_password(KEYRING_SERVICE, store_id)
        except Exception as exc:  # noqa: BLE001 - a locked or unreachable keyring is reported, not raised
            looked.append(f"the OS keyring, which failed: {type(exc).__name__}: {exc}")
        else:
            if value:
                key, record = _parse_key(value, f"the OS keyring entry {KEYRING_SERVICE}/{store_id}")
                return key, record or {}, _IN_KEYRING
            looked.append(f"the OS keyring ({KEYRING_SERVICE}/{store_id})")
    return looked


def _parse_key(text: str, source: str) -> tuple[bytes, dict[str, Any] | None]:
    """A key written as base64, or a key record (a store's own key file or keyring entry)."""
    text = text.strip()
    record: dict[str, Any] | None = None
    encoded = text
    if text.startswith("{"):
        try:
            record = json.loads(text)
            encoded = record["key"]
            if not isinstance(encoded, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"the file store key in {source} is not a secretkit key record") from None
    try:
        key = base64.urlsafe_b64decode(encoded.replace("+", "-").replace("/", "_") + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigError(f"the file store key in {source} must be 32 bytes, base64-encoded")
    return key, record


def _read_store_id(directory: Path) -> str | None:
    raw = _read_trusted(directory / STORE_ID, "store id file")
    if raw is None:
        return None
    store_id = raw.decode("ascii", "replace").strip()
    if not _STORE_ID_PATTERN.fullmatch(store_id):
        raise ConfigError(f"{directory / STORE_ID} does not hold a secretkit store id (32 hex digits)")
    return store_id


def _warn_legacy(directory: Path) -> None:
    if str(directory) not in _warned_legacy:
        _warned_legacy.add(str(directory))
        log.warning(
            "file store %s keeps its key beside its data (%s), so any copy of the directory decrypts it; "
            "move it with secretkit.drivers.file.migrate_legacy_key(%r) (see docs/backends/file.md)",
            directory, directory / LEGACY_KEY, str(directory),
        )


def _os_keyring() -> Any:
    """The ``keyring`` package's backend, or None where it is not installed or has no usable backend."""
    try:
        import keyring
        from keyring.backends import chainer, fail, null
    except ImportError:
        return None
    try:
        ring = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - a broken keyring configuration is no keyring
        return None
    if isinstance(ring, (fail.Keyring, null.Keyring)):
        return None
    if isinstance(ring, chainer.ChainerBackend) and not ring.backends:
        return None
    return ring


def user_config_dir() -> Path:
    """secretkit's per-user configuration directory: ``$XDG_CONFIG_HOME/secretkit`` or
    ``~/.config/secretkit`` on Linux, the platform's application folder elsewhere."""
    try:
        if sys.platform == "win32":
            base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        elif sys.platform == "darwin":
            base = Path.home() / "Library" / "Application Support"
        else:
            xdg = os.environ.get("XDG_CONFIG_HOME", "")
            base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".config"  # the spec ignores relative ones
    except RuntimeError as exc:
        raise ConfigError(f"no home directory to keep file store keys in ({exc}); use SECRETKIT_FILE_KEY") from None
    return base / "secretkit"


def key_directory(*, create: bool = False) -> Path:
    """Where file stores keep their own keys when there is no OS keyring: ``<config dir>/keys`` (0700)."""
    keys = user_config_dir() / "keys"
    if create:
        keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    if keys.exists():
        _check_trusted(keys, keys.stat(), "key directory")
    return keys


def migrate_legacy_key(path: str | os.PathLike[str], *, keyring: bool = True) -> str:
    """Move the key of a store made by an older secretkit out of its directory; where it went.

    ``PATH/key`` becomes the store's own key (OS keyring, else key directory), bound to the
    directory's path, and is deleted only once the key is checked against the store and in
    its new place. If interrupted, run it again.
    """
    directory = Path(os.fspath(path)).expanduser()
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a file store directory")
    _check_trusted(directory, directory.stat(), "file store directory")
    opts = FileOptions(keyring=keyring)
    legacy = directory / LEGACY_KEY
    with _locked(directory):
        raw = _read_trusted(legacy, "key file")
        if raw is None or not raw.strip():
            raise ConfigError(f"file store {directory} has no key beside its data ({legacy}): nothing to move")
        key = _parse_key(raw.decode("utf-8", "replace"), str(legacy))[0]
        fd = _open_nofollow(directory / "store.enc", os.O_RDONLY, "store file", missing_ok=True)
        if fd is not None:
            try:
                FileDriver(directory, key)._decrypt(_read_all(fd))  # the wrong key raises; nothing is moved
            finally:
                os.close(fd)
        store_id = _read_store_id(directory)
        if store_id is None:
            store_id = _random.token_hex(16)
            location = _save_own_key(directory, store_id, key, opts)
            if not _publish(directory / STORE_ID, (store_id + "\n").encode()):  # pragma: no cover - under the lock
                _forget_own_key(store_id, location)
                raise ConfigError(f"file store {directory} got a store id while migrating; run it again")
        else:  # an earlier run stopped before deleting the old key
            found = _find_own_key(store_id, opts)
            if isinstance(found, list) or found[0] != key:
                raise ConfigError(
                    f"file store {directory} has a store id whose key is not the one in {legacy}; nothing was changed"
                )
            location = found[2]
        legacy.unlink()
        _fsync_dir(directory)
    _warned_legacy.discard(str(directory))
    return f"the OS keyring ({KEYRING_SERVICE}/{store_id})" if location == _IN_KEYRING else location


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
