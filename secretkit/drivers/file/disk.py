"""Trusted file operations of the file store: the store lock, files that appear whole or not
at all, cleanup after killed writers, and refusing what another user could plant."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from secretkit.drivers.base import ConfigError

try:  # POSIX advisory locks; elsewhere only the in-process lock applies
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
# Without flock a temporary may belong to a live writer in another process; only old ones are stale.
_STALE_WITHOUT_LOCK_SECONDS = 3600.0
# A file linked in from an unnamed O_TMPFILE never has a partial name to clean up after a crash.
UNNAMED_TMP = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")


#: The lock files' descriptors open in this process. An flock belongs to the open file, which a
#: fork shares: a child keeping its copy would hold the lock for every process long after the
#: parent's holder closed its own, so a forked child closes them at once. ``_held_guard`` makes
#: opening (closing) a descriptor and adding (removing) it one step a fork cannot split.
_held: set[int] = set()
_held_guard = threading.Lock()


def _close_held_in_child() -> None:
    global _held_guard
    for fd in _held:
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()
    _held_guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=lambda: _held_guard.acquire(),
        after_in_parent=lambda: _held_guard.release(),
        after_in_child=_close_held_in_child,
    )


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """The store's inter-process lock (POSIX flock; elsewhere only the process lock applies)."""
    with _held_guard:
        fd = open_nofollow(directory / "store.lock", os.O_RDWR | os.O_CREAT, "lock file")
        assert fd is not None
        _held.add(fd)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with _held_guard:
            _held.discard(fd)
            os.close(fd)  # closing releases the flock


def publish(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists; True if this call created it.

    The content is written and fsynced before the name appears (a hard link, which also
    refuses to replace an existing file), so a crash at any point leaves no file or a whole
    one, and of two racing creators exactly one wins.
    """
    if UNNAMED_TMP:
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | O_CLOEXEC)
        try:
            try:
                fd = os.open(".", os.O_TMPFILE | os.O_WRONLY | O_CLOEXEC, 0o600, dir_fd=dfd)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    raise
            else:
                try:
                    write_all(fd, data)
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
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # no hard links here (FAT, some network filesystems): create-exclusive, not atomic
            try:
                out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_CLOEXEC, 0o600)
            except FileExistsError:
                return False
            try:
                write_all(out, data)
                os.fsync(out)
            finally:
                os.close(out)
        fsync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def remove_stale_temporaries(directory: Path) -> None:
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


def check_trusted(path: Path, st: os.stat_result, what: str) -> None:
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


def open_nofollow(path: Path, flags: int, what: str, *, missing_ok: bool = False) -> int | None:
    """``os.open`` that refuses a symlink in the last component (None if missing and missing_ok)."""
    if not _O_NOFOLLOW and os.path.islink(path):  # pragma: no cover - platforms without O_NOFOLLOW
        raise ConfigError(f"refusing {what} {path}: it is a symbolic link")
    try:
        return os.open(path, flags | _O_NOFOLLOW | O_CLOEXEC | _O_BINARY, 0o600)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise
    except OSError as exc:
        # Linux and macOS say ELOOP for a symlink under O_NOFOLLOW, FreeBSD says EMLINK
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise ConfigError(f"refusing {what} {path}: it is a symbolic link") from None
        raise


def read_trusted(path: Path, what: str, *, follow_symlinks: bool = False) -> bytes | None:
    """The content of a regular file that we or root own and only the owner can change; None if missing."""
    if follow_symlinks:
        try:
            fd: int | None = os.open(path, os.O_RDONLY | O_CLOEXEC | _O_BINARY)
        except FileNotFoundError:
            fd = None
    else:
        fd = open_nofollow(path, os.O_RDONLY, what, missing_ok=True)
    if fd is None:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"refusing {what} {path}: not a regular file")
        check_trusted(path, st, what)
        return read_all(fd)
    finally:
        os.close(fd)


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(directory: Path) -> None:
    """Make a rename or link in ``directory`` durable (POSIX; a no-op where directories cannot be opened)."""
    if hasattr(os, "O_DIRECTORY"):
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
