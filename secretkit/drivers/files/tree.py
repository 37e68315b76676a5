"""A consistent view of a directory tree that the kubelet (or a CSI driver, Vault Agent, Docker)
updates under our feet: every read is one generation, old or new, never a mix.

See the ``secretkit.drivers.files`` package docstring for the kubelet's update sequence and the
seqlock this module implements: read ``..data`` once, read through it, check it still names
the same generation, else start again.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import stat
from collections.abc import Callable
from typing import NoReturn, TypeVar

from secretkit.drivers.base import (
    InvalidArgumentError,
    Kind,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
    Value,
    text_form,
)

DATA_LINK = "..data"
"""The kubelet's symlink to the current timestamped directory."""
ATTEMPTS = 20  # reads restarted because a swap moved the ground; 20 swaps during one read is an outage


class Moved(Exception):
    """A ``..data`` link changed (or the directory under a read vanished) during a read: start again."""


T = TypeVar("T")


class Snapshot:
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


def file_key(field: str, st: os.stat_result) -> tuple[str, int, int, int, int]:
    return (field, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def bookkeeping(entry: str) -> bool:
    """True for the kubelet's own entries (``..data``, ``..data_tmp``, ``..2024_01_01_…``).

    The kubelet refuses payload paths with an element starting with ``..`` (AtomicWriter's
    validatePath), so no key is ever one of these; a key with one leading dot
    (``.dockerconfigjson``) is the key's own name.
    """
    return entry.startswith("..")


def data_target(directory: str) -> str | None:
    """The timestamped directory a kubelet ``..data`` link in ``directory`` names, or None.

    Only a symlink to a sibling bookkeeping entry counts, so a stray file called ``..data``
    (or a link to a key) changes nothing.
    """
    try:
        target = os.readlink(os.path.join(directory, DATA_LINK))
    except OSError:
        return None
    if "/" in target or os.sep in target or not bookkeeping(target) or target == "..":
        return None
    return target


def points_into_data(path: str) -> bool:
    """True for a kubelet per-key link (``key -> ..data/key``)."""
    try:
        target = os.readlink(path)
    except OSError:
        return False
    return target == DATA_LINK or target.startswith(DATA_LINK + "/")


class Tree:
    """The files under ``root``, read consistently (see the module docstring)."""

    def __init__(self, root: str, *, max_file_bytes: int, optional: bool, value_key: str = "value") -> None:
        self.root = root
        self._real_root = os.path.realpath(root)
        self.max_file_bytes = max_file_bytes
        self.optional = optional
        self.value_key = value_key

    def names(self) -> builtins.list[str]:
        """Every file under the root, read consistently (restarted when a swap moves the ground)."""
        for _ in range(ATTEMPTS):
            found: builtins.list[str] = []
            links: builtins.list[tuple[str, str]] = []
            try:
                self.walk(self.root, "", found, links, set())
                if not self.unchanged(links):
                    continue
            except Moved:
                continue
            except FileNotFoundError:
                try:
                    self.check_root()
                except NotFoundError:
                    return []  # an optional store whose directory is missing
                continue  # a directory vanished under the walk: a swap; look again
            return found
        raise UnavailableError(f"{self.root} kept changing while it was listed")

    def consistently(self, name: str, once: Callable[[str], T]) -> T:
        """Run ``once(name)`` until it completes without a ``..data`` swap under it."""
        for _ in range(ATTEMPTS):
            try:
                return once(name)
            except Moved:
                continue
        raise UnavailableError(f"{self.root} kept changing while the secret was read")

    def _locate(self, name: str, snapshot: Snapshot) -> str:
        """The path of ``name`` with every kubelet ``..data`` link on the way read once.

        A name found inside the current timestamped directory is read from there; a name that
        is not (a nested mount point, or a plain file beside the kubelet's entries) is read
        where it is, unless it is a per-key link into ``..data`` (a key the update dropped).
        """
        path = self.root
        for part in name.split("/"):
            target = data_target(path)
            if target is not None:
                snapshot.links.append((path, target))
                inside = os.path.join(path, target, part)
                if os.path.lexists(inside):
                    path = inside
                    snapshot.in_generation = True
                    continue
                literal = os.path.join(path, part)
                if points_into_data(literal) or not os.path.lexists(literal):
                    self._missing(snapshot)
                path = literal
                snapshot.in_generation = False
            else:
                path = os.path.join(path, part)
        target = data_target(path)
        if target is not None:  # a directory secret mounted by the kubelet: read its current generation
            snapshot.links.append((path, target))
            path = os.path.join(path, target)
            snapshot.in_generation = True
        return path

    def _inside(self, real: str) -> bool:
        return real.startswith(self._real_root.rstrip(os.sep) + os.sep)

    def _contained(self, path: str, name: str, snapshot: Snapshot) -> str:
        """The real path of ``path``; ``PermissionDeniedError`` if a symlink leads out of PATH."""
        real = os.path.realpath(path)
        if not self._inside(real):
            if not os.path.exists(real):
                self._missing(snapshot)
            raise PermissionDeniedError("a symlink leads outside the store's directory", name=name)
        return real

    def _stat(self, real: str, snapshot: Snapshot, name: str, what: str = "the secret") -> os.stat_result:
        try:
            return os.stat(real)
        except (FileNotFoundError, NotADirectoryError):
            self._missing(snapshot)
        except PermissionError:
            raise PermissionDeniedError(f"{what} is not reachable by this process", name=name) from None

    def _missing(self, snapshot: Snapshot) -> NoReturn:
        """Something on the path is gone: a swap (start again), an absent secret, or PATH itself gone."""
        if not self.unchanged(snapshot.links):
            raise Moved()
        self.check_root()
        raise NotFoundError("no such file under the store's directory")

    def check_root(self) -> None:
        """``UnavailableError`` if PATH itself is gone (an unmounted volume must not read as "no
        such secret", or a layered store would fall through to the next layer); with
        ``optional``, ``NotFoundError``."""
        if os.path.isdir(self.root):
            return
        if self.optional:
            raise NotFoundError(f"the directory {self.root} does not exist (optional store)")
        raise UnavailableError(f"the directory {self.root} does not exist (any more)")

    def unchanged(self, links: builtins.list[tuple[str, str]]) -> bool:
        return all(data_target(directory) == target for directory, target in links)

    def read_once(self, name: str) -> tuple[Value, Snapshot]:
        snapshot = Snapshot()
        real = self._contained(self._locate(name, snapshot), name, snapshot)
        st = self._stat(real, snapshot, name)
        if stat.S_ISDIR(st.st_mode):
            fields: dict[str, bytes] = {}
            total = 0
            for field, path in self._entries(real, name, snapshot):
                data, file_st = self._read_file(path, name, snapshot, field)
                total += len(data)
                if total > self.max_file_bytes:
                    raise InvalidArgumentError(
                        f"the directory's files add up to more than max_file_bytes ({self.max_file_bytes})"
                    )
                fields[field] = data
                snapshot.stats.append(file_key(field, file_st))
            # The seqlock: a kubelet generation is consistent if ..data still names it (it is never
            # changed in place); a plain directory if its files are still the ones read.
            if not self.unchanged(snapshot.links):
                raise Moved()
            if not snapshot.in_generation and not self._same_files(real, name, snapshot):
                raise Moved()
            # a mounted Secret of only the value key is how k8s:// keeps text: read it as that text
            return Value(Kind.FIELDS, text_form(fields, self.value_key)), snapshot
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArgumentError("not a regular file or a directory")
        data, file_st = self._read_file(real, name, snapshot, None)
        snapshot.stats.append(file_key("", file_st))
        return Value(Kind.BYTES, data), snapshot

    def probe_once(self, name: str) -> Snapshot:
        snapshot = Snapshot()
        real = self._contained(self._locate(name, snapshot), name, snapshot)
        st = self._stat(real, snapshot, name)
        if stat.S_ISDIR(st.st_mode):
            for field, path in self._entries(real, name, snapshot):
                snapshot.stats.append(file_key(field, self._stat(path, snapshot, name, f"field {field!r}")))
            if not self.unchanged(snapshot.links):
                raise Moved()
        else:
            snapshot.stats.append(file_key("", st))
        return snapshot

    def _entries(self, directory: str, name: str, snapshot: Snapshot) -> builtins.list[tuple[str, str]]:
        """(field, real path) of each regular file in ``directory`` (kubelet bookkeeping and subdirectories skipped)."""
        try:
            listing = sorted(os.listdir(directory))
        except (FileNotFoundError, NotADirectoryError):
            self._missing(snapshot)
        except PermissionError:
            raise PermissionDeniedError("the directory is not readable by this process", name=name) from None
        out = []
        for entry in listing:
            if bookkeeping(entry):
                continue
            real = os.path.realpath(os.path.join(directory, entry))
            if not self._inside(real):
                raise PermissionDeniedError(
                    f"field {entry!r} is a symlink leading outside the store's directory", name=name
                )
            if stat.S_ISREG(self._stat(real, snapshot, name, f"field {entry!r}").st_mode):
                out.append((entry, real))
        return out

    def _same_files(self, directory: str, name: str, snapshot: Snapshot) -> bool:
        """After reading a plain directory: are its files still the ones read (none added, removed or replaced)?"""
        try:
            now = [file_key(field, os.stat(path)) for field, path in self._entries(directory, name, snapshot)]
        except (FileNotFoundError, NotFoundError):
            return False
        return sorted(now) == sorted(snapshot.stats)

    def _read_file(self, path: str, name: str, snapshot: Snapshot, field: str | None) -> tuple[bytes, os.stat_result]:
        which = f"field {field!r}" if field is not None else "the file"
        limit = self.max_file_bytes
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

    def walk(
        self, directory: str, rel: str, found: builtins.list[str], links: builtins.list[tuple[str, str]],
        seen: set[str],
    ) -> None:
        """Every file under ``directory`` (kubelet bookkeeping skipped, generations read through ``..data``)."""
        target = data_target(directory)
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
                    if entry not in inside and not points_into_data(os.path.join(directory, entry))
                ]
        except PermissionError:
            raise PermissionDeniedError("a directory under the store is not readable by this process",
                                        name=rel.rstrip("/") or None) from None
        for entry, path in sorted(entries):
            if bookkeeping(entry):
                continue
            real = os.path.realpath(path)
            if not self._inside(real):
                continue  # leads outside PATH: not listed (a get says PermissionDeniedError)
            try:
                st = os.stat(real)
            except FileNotFoundError:
                if target is not None and not self.unchanged([(directory, target)]):
                    raise Moved() from None
                continue  # a dangling link
            except PermissionError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if real in seen:
                    continue  # a symlink loop
                self.walk(path, f"{rel}{entry}/", found, links, seen | {real})
            elif stat.S_ISREG(st.st_mode):
                found.append(f"{rel}{entry}")
