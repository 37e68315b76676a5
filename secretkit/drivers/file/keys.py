"""Where a file store's key lives, and how it is made: kept out of the store's directory.

In this order: ``$SECRETKIT_FILE_KEY``; the ``key_file`` option; else the store's own key,
found by the store id (``PATH/store.id``) in the OS keyring (with the optional ``keyring``
package) or in ``<config dir>/secretkit/keys/<id>.key``, and bound to the directory's real
path, so a copy of the directory is not given it. A key appears whole or not at all.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import re
import secrets as _random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secretkit.drivers.file.disk import (
    check_trusted,
    fsync_dir,
    locked,
    open_nofollow,
    publish,
    read_all,
    read_trusted,
)
from secretkit.drivers.file.document import decrypt
from secretkit.drivers.base import AuthenticationError, ConfigError

STORE_ID = "store.id"
LEGACY_KEY = "key"
KEYRING_SERVICE = "secretkit-file-store"
_KEY_FORMAT = "secretkit-file-store-key/1"
_STORE_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
_IN_KEYRING = "keyring"  # where a store's own key went, when not in a key file

log = logging.getLogger("secretkit.file")
_warned_legacy: set[str] = set()


@dataclass(frozen=True)
class KeySource:
    """Where to look for a store's key (the file store's key options)."""

    key_env: str = "SECRETKIT_FILE_KEY"
    key_file: Path | None = None
    keyring: bool = True


def load_key(directory: Path, source: KeySource, *, create: bool = True) -> bytes | None:
    """The key from ``source.key_env``, else ``source.key_file``, else the store's own key.

    A store without a key yet gets one only with ``create`` (its first write); without it,
    None, and nothing is written. Create holding the store's lock, so concurrent first
    writers agree on one key; finding an existing key needs no lock.
    """
    encoded = os.environ.get(source.key_env)
    if encoded:
        return _parse_key(encoded, f"${source.key_env}")[0]
    if source.key_file is not None:
        return _named_key(directory, source.key_file.expanduser(), source, create)
    return _own_key(directory, source, create)


def _named_key(directory: Path, key_file: Path, source: KeySource, create: bool) -> bytes | None:
    has_data = (directory / "store.enc").exists()  # first: see _own_key
    # a key the user names may be a symlink (a Kubernetes secret volume is made of them)
    raw = read_trusted(key_file, "key file", follow_symlinks=True)
    if raw is None:
        if has_data:
            raise AuthenticationError(
                f"file store {directory} exists but its key is missing: set {source.key_env} or restore {key_file}"
            )
        if not create:
            return None
        key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        publish(key_file, (new_key() + "\n").encode())  # if another opener won, its key is read below
        raw = read_trusted(key_file, "key file", follow_symlinks=True) or b""
    return _parse_key(raw.decode("utf-8", "replace"), str(key_file))[0]


def _own_key(directory: Path, source: KeySource, create: bool = True) -> bytes | None:
    # Data first, then the key: a first write makes the key (and id) before the data, so data
    # seen here has a key to find below even without the store lock (a reader's open), while
    # the other order could miss a key made in between and call an existing store keyless.
    has_data = (directory / "store.enc").exists()
    store_id = _read_store_id(directory)
    legacy = directory / LEGACY_KEY
    legacy_raw = read_trusted(legacy, "key file")
    if store_id is None:
        if legacy_raw is not None and (legacy_raw.strip() or has_data):
            _warn_legacy(directory)
            return _parse_key(legacy_raw.decode("utf-8", "replace"), str(legacy))[0]
        if has_data:
            raise AuthenticationError(
                f"file store {directory} exists but its key is missing: set {source.key_env} or key_file= to its key"
            )
        if not create:
            return None
        if legacy_raw is not None:  # empty, and no data: an older secretkit was killed creating the store
            legacy.unlink()
        return _create_own_key(directory, source)
    found = _find_own_key(store_id, source)
    if isinstance(found, list):
        if legacy_raw is not None and legacy_raw.strip():  # a migration that stopped half-way
            _warn_legacy(directory)
            return _parse_key(legacy_raw.decode("utf-8", "replace"), str(legacy))[0]
        raise AuthenticationError(
            f"file store {directory} exists but its key is missing: it is not in {' nor in '.join(found)}. "
            f"Set {source.key_env} or key_file= to its key (a copy of a store's directory never carries its key)"
        )
    key, record, location = found
    here = os.path.realpath(directory)
    if record.get("directory") != here or record.get("store_id") != store_id:
        explicit = (
            f'{source.key_env}="$(keyring get {KEYRING_SERVICE} {store_id})"'
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


def _create_own_key(directory: Path, source: KeySource) -> bytes:
    """A new key under a new store id. The key is saved before the id appears in the directory,
    so a store id always has its key; a crash in between leaves only an unused key behind."""
    store_id = _random.token_hex(16)
    key = _random.token_bytes(32)
    location = _save_own_key(directory, store_id, key, source)
    try:
        created = publish(directory / STORE_ID, (store_id + "\n").encode())
    except BaseException:
        _forget_own_key(store_id, location)
        raise
    if not created:  # another process linked its id first (possible only without flock)
        _forget_own_key(store_id, location)
        theirs = _own_key(directory, source)
        assert theirs is not None  # the winner's id is there, so its key is found or the lookup raised
        return theirs
    return key


def _save_own_key(directory: Path, store_id: str, key: bytes, source: KeySource) -> str:
    """Keep the key in the OS keyring if there is one, else in the key directory; where it went."""
    record = json.dumps({
        "format": _KEY_FORMAT,
        "store_id": store_id,
        "directory": os.path.realpath(directory),
        "key": base64.urlsafe_b64encode(key).decode(),
    })
    ring = os_keyring() if source.keyring else None
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
    if not publish(path, record.encode() + b"\n"):
        raise ConfigError(f"refusing to overwrite key file {path}")  # a random 128-bit id does not collide
    return str(path)


def _forget_own_key(store_id: str, location: str) -> None:
    if location == _IN_KEYRING:
        ring = os_keyring()
        if ring is not None:
            with contextlib.suppress(Exception):
                ring.delete_password(KEYRING_SERVICE, store_id)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(location)


def _find_own_key(store_id: str, source: KeySource) -> tuple[bytes, dict[str, Any], str] | list[str]:
    """The key saved for ``store_id``, its record and where it is; else the places looked in."""
    looked = []
    keys = key_directory(create=False)
    path = keys / f"{store_id}.key"
    raw = read_trusted(path, "key file") if keys.exists() else None
    if raw is not None:
        key, record = _parse_key(raw.decode("utf-8", "replace"), str(path))
        return key, record or {}, str(path)
    looked.append(str(path))
    ring = os_keyring() if source.keyring else None
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
    raw = read_trusted(directory / STORE_ID, "store id file")
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


def os_keyring() -> Any:
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
        check_trusted(keys, keys.stat(), "key directory")
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
    check_trusted(directory, directory.stat(), "file store directory")
    source = KeySource(keyring=keyring)
    legacy = directory / LEGACY_KEY
    with locked(directory):
        raw = read_trusted(legacy, "key file")
        if raw is None or not raw.strip():
            raise ConfigError(f"file store {directory} has no key beside its data ({legacy}): nothing to move")
        key = _parse_key(raw.decode("utf-8", "replace"), str(legacy))[0]
        fd = open_nofollow(directory / "store.enc", os.O_RDONLY, "store file", missing_ok=True)
        if fd is not None:
            try:
                decrypt(AESGCM(key), read_all(fd), directory / "store.enc")  # the wrong key raises; nothing moves
            finally:
                os.close(fd)
        store_id = _read_store_id(directory)
        if store_id is None:
            store_id = _random.token_hex(16)
            location = _save_own_key(directory, store_id, key, source)
            if not publish(directory / STORE_ID, (store_id + "\n").encode()):  # pragma: no cover - under the lock
                _forget_own_key(store_id, location)
                raise ConfigError(f"file store {directory} got a store id while migrating; run it again")
        else:  # an earlier run stopped before deleting the old key
            found = _find_own_key(store_id, source)
            if isinstance(found, list) or found[0] != key:
                raise ConfigError(
                    f"file store {directory} has a store id whose key is not the one in {legacy}; nothing was changed"
                )
            location = found[2]
        legacy.unlink()
        fsync_dir(directory)
    _warned_legacy.discard(str(directory))
    return f"the OS keyring ({KEYRING_SERVICE}/{store_id})" if location == _IN_KEYRING else location


def new_key() -> str:
    """A fresh key in the form ``SECRETKIT_FILE_KEY`` expects."""
    return base64.urlsafe_b64encode(_random.token_bytes(32)).decode()
