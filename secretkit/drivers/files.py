"""files://PATH — read-only: each file under PATH is a secret, its relative path the name.

This is where most deployed workloads find their secrets: a Kubernetes Secret volume, the
Secrets Store CSI driver, the Vault Agent injector and External Secrets Operator all end as
files in a directory; Docker and Compose put them in ``/run/secrets``. A file reads as its
exact octets (``Kind.BYTES``: no newline stripped; ``.text`` when UTF-8); a directory reads as
one field secret, its files the fields (``Kind.FIELDS``), which is how a mounted Kubernetes
Secret looks.

The kubelet (and the CSI driver, with the same code) updates a mounted Secret with its
AtomicWriter: it writes every key into a new timestamped directory ``..2024_01_01_00_00_00.N``,
points a temporary symlink at it, renames that over ``..data`` (atomic), adds the per-key
links ``key -> ..data/key`` for new keys, removes the links of dropped keys and deletes the old
timestamped directory. So a reader that followed ``key`` links one by one could mix two
generations. This driver instead reads the ``..data`` link of a directory ONCE per read, reads
every file through the directory it names, and checks afterwards that the link still names it
(a seqlock): if the kubelet swapped it meanwhile (and maybe began deleting the old directory),
the read starts again. Timestamped directories are never changed in place, so every read is
one generation, old or new, never a mix. Dot entries (``..data``, ``..2024_…``, hidden files)
are never names and never listed.

Version ids are a digest of what the read saw (the ``..data`` targets, and each file's device,
inode, size and modification time): a kubelet swap, a rename over a file (Vault Agent) or an
in-place rewrite that changes size or mtime gives a new id. ``current_version`` computes the
same digest with ``stat`` alone, so the cache and ``watch`` check for a change without reading
a value. ``watch`` wakes on inotify events on Linux and polls every ``poll_interval`` seconds
in any case (the floor where inotify is missing or misses an event).
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import hashlib
import os
import select
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from secretkit.config import StoreURL, validate
from secretkit.drivers.base import Capabilities, Classified, Record
from secretkit.errors import (
    ConfigError,
    ErrorCode,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    PermissionDeniedError,
    UnavailableError,
)
from secretkit.names import NameRules
from secretkit.secret import Kind, Value, VersionInfo

DATA_LINK = "..data"
"""The kubelet's symlink to the current timestamped directory."""
_ATTEMPTS = 20  # reads restarted because a swap moved the ground; 20 swaps during one read is an outage
_MAX_SEGMENT_BYTES = 255  # NAME_MAX on Linux and macOS
NAME_RULE = (
    "files:// names are relative paths under the store's directory: segments separated by single '/', "
    f"none empty or starting with '.' (dot entries are the kubelet's bookkeeping), each at most "
    f"{_MAX_SEGMENT_BYTES} bytes"
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


def _holds(name: str) -> bool:
    for segment in name.split("/"):
        if not segment or segment.startswith(".") or "\x00" in segment:
            return False
        if len(segment.encode("utf-8", "surrogatepass")) > _MAX_SEGMENT_BYTES:
            return False
    return True


class _Moved(Exception):
    """A ``..data`` link changed (or the directory under a read vanished) during a read: start again."""


T = TypeVar("T")


class _Snapshot:
    """What one read (or probe) saw: the ``..data`` links it went through, a stat key per file,
    and whether the path ended inside a kubelet generation (never changed in place)."""

    __slots__ = ("in_generation", "links", "stats")

    def __init__(self) -> None:
        self.links: list[tuple[str, str]] = []
        self.stats: list[tuple[str, int, int, int, int]] = []
        self.in_generation = False

    def version(self) -> str:
        digest = hashlib.sha256(repr((self.links, sorted(self.stats))).encode("utf-8", "surrogateescape"))
        return digest.hexdigest()[:16]


def _file_key(field: str, st: os.stat_result) -> tuple[str, int, int, int, int]:
    return (field, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _data_target(directory: str) -> str | None:
    """The timestamped directory a kubelet ``..data`` link in ``directory`` names, or None.

    Only a symlink to a sibling dot entry counts, so a stray file called ``..data`` changes nothing.
    """
    try:
        target = os.readlink(os.path.join(directory, DATA_LINK))
    except OSError:
        return None
    if "/" in target or os.sep in target or not target.startswith(".") or target in (".", ".."):
        return None
    return target


def _points_into_data(path: str) -> bool:
    """True for a kubelet per-key link (``key -> ..data/key``)."""
    try:
        target = os.readlink(path)
    except OSError:
        return False
    return target == DATA_LINK or target.startswith(DATA_LINK + "/")


class FilesDriver:
    """Read-only driver over a directory tree laid out by the kubelet, a CSI driver, Vault Agent or Docker."""

    backend = "files"
    sdk_loggers: tuple[str, ...] = ()
    # read-only: the store refuses writes before any I/O, and a layered store skips this layer for them
    capabilities = Capabilities(
        remote=False, versions=False, compare_and_set=False, create_only=False, idempotent_put=False, read_only=True,
    )

    def __init__(self, root: Path, options: FilesOptions | None = None) -> None:
        self.options = options or FilesOptions()
        self.root = str(root)
        self._real_root = os.path.realpath(self.root)
        self.names = NameRules(NAME_RULE, _holds)

    # -- reads ---------------------------------------------------------------------------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        if version is not None or stage is not None:
            raise NotSupportedError("files:// keeps no versions or stages")
        value, snapshot = self._consistently(name, self._read_once)
        return Record(value, snapshot.version())

    def current_version(self, name: str) -> str:
        return self._consistently(name, self._probe_once).version()

    def list(self, prefix: str) -> list[str]:
        for _ in range(_ATTEMPTS):
            found: builtins.list[str] = []
            links: builtins.list[tuple[str, str]] = []
            try:
                self._walk(self.root, "", found, links, set())
                if not self._unchanged(links):
                    continue
            except _Moved:
                continue
            except FileNotFoundError:
                try:
                    self._check_root()
                except NotFoundError:
                    return []  # an optional store whose directory is missing
                continue  # a directory vanished under the walk: a swap; look again
            return [name for name in found if name.startswith(prefix) and self._nameable(name)]
        raise UnavailableError(f"{self.root} kept changing while it was listed")

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
        notifier = _Inotify.create() if self.options.inotify else None
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

    # -- the consistent read -----------------------------------------------------------

    def _consistently(self, name: str, once: Callable[[str], T]) -> T:
        """Run ``once(name)`` until it completes without a ``..data`` swap under it."""
        for _ in range(_ATTEMPTS):
            try:
                return once(name)
            except _Moved:
                continue
        raise UnavailableError(f"{self.root} kept changing while the secret was read")

    def _locate(self, name: str, snapshot: _Snapshot) -> str:
        """The path of ``name`` with every kubelet ``..data`` link on the way read once.

        A name found inside the current timestamped directory is read from there; a name that
        is not (a nested mount point, or a plain file beside the kubelet's entries) is read
        where it is, unless it is a per-key link into ``..data`` (a key the update dropped).
        """
        path = self.root
        for part in name.split("/"):
            target = _data_target(path)
            if target is not None:
                snapshot.links.append((path, target))
                inside = os.path.join(path, target, part)
                if os.path.lexists(inside):
                    path = inside
                    snapshot.in_generation = True
                    continue
                literal = os.path.join(path, part)
                if _points_into_data(literal) or not os.path.lexists(literal):
                    self._missing(snapshot)
                path = literal
                snapshot.in_generation = False
            else:
                path = os.path.join(path, part)
        target = _data_target(path)
        if target is not None:  # a directory secret mounted by the kubelet: read its current generation
            snapshot.links.append((path, target))
            path = os.path.join(path, target)
            snapshot.in_generation = True
        return path

    def _inside(self, real: str) -> bool:
        return real.startswith(self._real_root.rstrip(os.sep) + os.sep)

    def _contained(self, path: str, name: str, snapshot: _Snapshot) -> str:
        """The real path of ``path``; ``PermissionDeniedError`` if a symlink leads out of PATH."""
        real = os.path.realpath(path)
        if not self._inside(real):
            if not os.path.exists(real):
                self._missing(snapshot)
            raise PermissionDeniedError("a symlink leads outside the store's directory", name=name)
        return real

    def _stat(self, real: str, snapshot: _Snapshot, name: str, what: str = "the secret") -> os.stat_result:
        try:
            return os.stat(real)
        except (FileNotFoundError, NotADirectoryError):
            self._missing(snapshot)
        except PermissionError:
            raise PermissionDeniedError(f"{what} is not reachable by this process", name=name) from None

    def _missing(self, snapshot: _Snapshot) -> NoReturn:
        """Something on the path is gone: a swap (start again), an absent secret, or PATH itself gone."""
        if not self._unchanged(snapshot.links):
            raise _Moved()
        self._check_root()
        raise NotFoundError("no such file under the store's directory")

    def _check_root(self) -> None:
        """``UnavailableError`` if PATH itself is gone (an unmounted volume must not read as "no
        such secret", or a layered store would fall through to the next layer); with
        ``optional``, ``NotFoundError``."""
        if os.path.isdir(self.root):
            return
        if self.options.optional:
            raise NotFoundError(f"the directory {self.root} does not exist (optional store)")
        raise UnavailableError(f"the directory {self.root} does not exist (any more)")

    def _unchanged(self, links: builtins.list[tuple[str, str]]) -> bool:
        return all(_data_target(directory) == target for directory, target in links)

    def _read_once(self, name: str) -> tuple[Value, _Snapshot]:
        snapshot = _Snapshot()
        real = self._contained(self._locate(name, snapshot), name, snapshot)
        st = self._stat(real, snapshot, name)
        if stat.S_ISDIR(st.st_mode):
            fields: dict[str, bytes] = {}
            total = 0
            for field, path in self._entries(real, name, snapshot):
                data, file_st = self._read_file(path, name, snapshot, field)
                total += len(data)
                if total > self.options.max_file_bytes:
                    raise InvalidArgumentError(
                        f"the directory's files add up to more than max_file_bytes ({self.options.max_file_bytes})"
                    )
                fields[field] = data
                snapshot.stats.append(_file_key(field, file_st))
            # The seqlock: a kubelet generation is consistent if ..data still names it (it is never
            # changed in place); a plain directory if its files are still the ones read.
            if not self._unchanged(snapshot.links):
                raise _Moved()
            if not snapshot.in_generation and not self._same_files(real, name, snapshot):
                raise _Moved()
            return Value(Kind.FIELDS, fields), snapshot
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArgumentError("not a regular file or a directory")
        data, file_st = self._read_file(real, name, snapshot, None)
        snapshot.stats.append(_file_key("", file_st))
        return Value(Kind.BYTES, data), snapshot

    def _probe_once(self, name: str) -> _Snapshot:
        snapshot = _Snapshot()
        real = self._contained(self._locate(name, snapshot), name, snapshot)
        st = self._stat(real, snapshot, name)
        if stat.S_ISDIR(st.st_mode):
            for field, path in self._entries(real, name, snapshot):
                snapshot.stats.append(_file_key(field, self._stat(path, snapshot, name, f"field {field!r}")))
            if not self._unchanged(snapshot.links):
                raise _Moved()
        else:
            snapshot.stats.append(_file_key("", st))
        return snapshot

    def _entries(self, directory: str, name: str, snapshot: _Snapshot) -> builtins.list[tuple[str, str]]:
        """(field, real path) of each regular file in ``directory`` (dot entries and subdirectories skipped)."""
        try:
            listing = sorted(os.listdir(directory))
        except (FileNotFoundError, NotADirectoryError):
            self._missing(snapshot)
        except PermissionError:
            raise PermissionDeniedError("the directory is not readable by this process", name=name) from None
        out = []
        for entry in listing:
            if entry.startswith("."):
                continue
            real = os.path.realpath(os.path.join(directory, entry))
            if not self._inside(real):
                raise PermissionDeniedError(
                    f"field {entry!r} is a symlink leading outside the store's directory", name=name
                )
            if stat.S_ISREG(self._stat(real, snapshot, name, f"field {entry!r}").st_mode):
                out.append((entry, real))
        return out

    def _same_files(self, directory: str, name: str, snapshot: _Snapshot) -> bool:
        """After reading a plain directory: are its files still the ones read (none added, removed or replaced)?"""
        try:
            now = [_file_key(field, os.stat(path)) for field, path in self._entries(directory, name, snapshot)]
        except (FileNotFoundError, NotFoundError):
            return False
        return sorted(now) == sorted(snapshot.stats)

    def _read_file(self, path: str, name: str, snapshot: _Snapshot, field: str | None) -> tuple[bytes, os.stat_result]:
        which = f"field {field!r}" if field is not None else "the file"
        limit = self.options.max_file_bytes
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))
        except (FileNotFoundError, NotADirectoryError):
            self._missing(snapshot)
        except PermissionError:
            raise PermissionDeniedError(f"{which} is not readable by this process", name=name) from None
        except IsADirectoryError:
            raise InvalidArgumentError(f"{which} is a directory") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise InvalidArgumentError(f"{which} is not a regular file")
            if st.st_size > limit:
                raise InvalidArgumentError(f"{which} is {st.st_size} bytes; max_file_bytes is {limit}")
            chunks = []
            size = 0
            while True:
                chunk = os.read(fd, min(limit + 1 - size, 1 << 20) or 1)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:  # it grew while we read
                    raise InvalidArgumentError(f"{which} is larger than max_file_bytes ({limit})")
            return b"".join(chunks), st
        except PermissionError:
            raise PermissionDeniedError(f"{which} is not readable by this process", name=name) from None
        finally:
            os.close(fd)

    def _walk(
        self, directory: str, rel: str, found: builtins.list[str], links: builtins.list[tuple[str, str]],
        seen: set[str],
    ) -> None:
        """Every file under ``directory`` (dot entries skipped, kubelet generations read through ``..data``)."""
        target = _data_target(directory)
        try:
            if target is None:
                entries = [(entry, os.path.join(directory, entry)) for entry in os.listdir(directory)]
            else:
                links.append((directory, target))
                inside = os.listdir(os.path.join(directory, target))
                entries = [(entry, os.path.join(directory, target, entry)) for entry in inside]
                # nested mount points beside the kubelet's entries; never the per-key links of dropped keys
                entries += [
                    (entry, os.path.join(directory, entry)) for entry in os.listdir(directory)
                    if entry not in inside and not _points_into_data(os.path.join(directory, entry))
                ]
        except PermissionError:
            raise PermissionDeniedError("a directory under the store is not readable by this process",
                                        name=rel.rstrip("/") or None) from None
        for entry, path in sorted(entries):
            if entry.startswith("."):
                continue
            real = os.path.realpath(path)
            if not self._inside(real):
                continue  # leads outside PATH: not listed (a get says PermissionDeniedError)
            try:
                st = os.stat(real)
            except FileNotFoundError:
                if target is not None and not self._unchanged([(directory, target)]):
                    raise _Moved() from None
                continue  # a dangling link
            except PermissionError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if real in seen:
                    continue  # a symlink loop
                self._walk(path, f"{rel}{entry}/", found, links, seen | {real})
            elif stat.S_ISREG(st.st_mode):
                found.append(f"{rel}{entry}")


class _Inotify:
    """Just enough inotify (through libc, no dependency) to wake a watch when a directory changes."""

    _MASK = (
        0x002 | 0x004 | 0x008 | 0x040 | 0x080 | 0x100 | 0x200 | 0x400 | 0x800
    )  # MODIFY ATTRIB CLOSE_WRITE MOVED_FROM MOVED_TO CREATE DELETE DELETE_SELF MOVE_SELF

    def __init__(self, fd: int, add: Any) -> None:
        self._fd = fd
        self._add = add

    @classmethod
    def create(cls) -> _Inotify | None:
        """A notifier, or None where inotify is unavailable (not Linux, no libc symbol, limits reached)."""
        if not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            init, add = libc.inotify_init1, libc.inotify_add_watch
        except (OSError, AttributeError):
            return None
        add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
        return cls(fd, add) if fd >= 0 else None

    def watch(self, directories: builtins.list[str]) -> None:
        # Adding an inode already watched returns its existing watch; a watch on a removed
        # directory goes away by itself, so calling this before every wait keeps the set current.
        for directory in directories:
            self._add(self._fd, os.fsencode(directory), self._MASK)

    def wait(self, timeout: float) -> bool:
        """True if an event arrived within ``timeout`` seconds (all pending events are consumed)."""
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return False
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self._fd, 65536):
                pass
        return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


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


__all__ = ["DATA_LINK", "NAME_RULE", "FilesDriver", "FilesOptions", "open_driver"]
