"""Just enough inotify (through libc via ctypes, no dependency) to wake a watch when a directory changes."""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import os
import select
import sys
from typing import Any

from secretkit.drivers.base import at_fork


class Inotify:
    """Just enough inotify (through libc, no dependency) to wake a watch when a directory changes."""

    _MASK = (
        0x002 | 0x004 | 0x008 | 0x040 | 0x080 | 0x100 | 0x200 | 0x400 | 0x800
    )  # MODIFY ATTRIB CLOSE_WRITE MOVED_FROM MOVED_TO CREATE DELETE DELETE_SELF MOVE_SELF

    def __init__(self, fd: int, add: Any) -> None:
        self._fd = fd
        self._add = add
        at_fork(self, Inotify.close)  # the instance is shared with a forked child: a child reading
        # its copy would take the parent's events; the thread that used it is not in the child

    @classmethod
    def create(cls) -> Inotify | None:
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
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
