"""``secretkit run``: start a command with secrets in its environment, and nowhere else.

Every ``VAR=REFERENCE`` (from ``--env`` and ``--env-file``) is resolved *before* the command
starts, with one ``get_many``; a reference that cannot be resolved stops everything with its
error. The values go only into the child's environment: never into argv, never printed,
never logged. Signals sent to ``secretkit run`` are forwarded to the command, and its exit
status becomes ours (``128 + N`` when it died of signal ``N``). With ``watch``, a change of a
referenced secret restarts the command with the new values (or sends it a signal).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

from secretkit.errors import InvalidArgumentError, SecretError
from secretkit.references import Reference, resolve_many
from secretkit.store import SecretStore
from secretkit.watch import Watcher

__all__ = [
    "FORWARDED_SIGNALS",
    "Binding",
    "CommandError",
    "bindings_from",
    "parse_binding",
    "parse_env_file",
    "resolve_bindings",
    "run",
]

logger = logging.getLogger("secretkit")

#: Signals ``secretkit run`` passes on to the command.
FORWARDED_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)
#: Signals a terminal sends to its whole foreground process group (the command gets them directly).
_KEYBOARD_SIGNALS = frozenset(getattr(signal, name) for name in ("SIGINT", "SIGQUIT") if hasattr(signal, name))

_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Binding:
    """One ``VAR=REFERENCE``; ``origin`` says where it was written (``--env``, ``FILE:LINE``)."""

    var: str
    reference: Reference
    origin: str

    def __str__(self) -> str:
        return f"{self.var}={self.reference}"


class CommandError(Exception):
    """The command could not be started; ``exit_code`` is 127 (not found) or 126 (not runnable)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def parse_binding(text: str, origin: str = "--env") -> Binding:
    """``VAR=REFERENCE`` (spaces around ``=`` allowed); ``InvalidArgumentError`` if malformed."""
    var, sep, reference = text.partition("=")
    var, reference = var.strip(), reference.strip()
    if not sep or not reference:
        raise InvalidArgumentError(f"{origin}: expected VAR=REFERENCE, e.g. DB_PASSWORD=payments/db#password")
    if not _VAR.fullmatch(var):
        raise InvalidArgumentError(f"{origin}: {var!r} is not an environment variable name (letters, digits, _)")
    try:
        return Binding(var, Reference.parse(reference), origin)
    except InvalidArgumentError as exc:
        exc.message = f"{origin}: {var}: {exc.message}"
        raise


def parse_env_file(path: str | os.PathLike[str]) -> list[Binding]:
    """The ``VAR=REFERENCE`` lines of an env file: blank lines and lines starting with ``#``
    are skipped; a variable set twice in one file is an error. No quoting, no inline comments
    (``#`` after a name is the field separator)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise InvalidArgumentError(f"cannot read env file {str(path)!r}: {reason}") from None
    out: list[Binding] = []
    seen: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        binding = parse_binding(stripped, f"{path}:{number}")
        if binding.var in seen:
            raise InvalidArgumentError(f"{binding.origin}: {binding.var} is already set at {seen[binding.var]}")
        seen[binding.var] = binding.origin
        out.append(binding)
    return out


def bindings_from(env_files: Iterable[str], env_args: Iterable[str]) -> list[Binding]:
    """Files in order, then ``--env`` values; a later binding of a variable replaces an earlier one."""
    merged: dict[str, Binding] = {}
    for path in env_files:
        for binding in parse_env_file(path):
            merged[binding.var] = binding
    for text in env_args:
        binding = parse_binding(text)
        merged[binding.var] = binding
    return list(merged.values())


def resolve_bindings(store: SecretStore, bindings: Sequence[Binding], *, refresh: bool = False) -> dict[str, str]:
    """Every binding's value, read with one ``get_many``; the first failure raises its
    ``SecretError`` with a message naming the variable and the reference (never a value)."""
    for binding in bindings:  # every name against the store's rules before any I/O
        try:
            binding.reference.check(store)
        except SecretError as exc:
            raise _named(exc, binding) from None
    results = resolve_many(store, [b.reference for b in bindings], refresh=refresh)
    values: dict[str, str] = {}
    for binding in bindings:
        outcome = results[binding.reference]
        if isinstance(outcome, SecretError):
            raise _named(outcome, binding)
        values[binding.var] = outcome
    return values


def _named(exc: SecretError, binding: Binding) -> SecretError:
    exc.message = f"cannot resolve {binding} ({binding.origin}): {exc.message}"
    return exc


class _Forwarder:
    """Passes the signals ``secretkit run`` receives on to the current child."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.pending: list[int] = []
        self._saved: dict[int, object] = {}
        self._tty: int | None = None

    def __enter__(self) -> _Forwarder:
        try:  # to tell a Ctrl-C the terminal sent to the whole group from a `kill -INT` to us
            self._tty = os.open("/dev/tty", os.O_RDONLY | getattr(os, "O_NOCTTY", 0))
        except OSError:
            self._tty = None
        for sig in FORWARDED_SIGNALS:
            self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        if self._tty is not None:
            os.close(self._tty)

    def _terminal_group_got_it(self, signum: int) -> bool:
        """A keyboard signal while we are the terminal's foreground group: the terminal sent it
        to the command as well, so forwarding it would deliver it twice."""
        if signum not in _KEYBOARD_SIGNALS or self._tty is None:
            return False
        try:
            return os.tcgetpgrp(self._tty) == os.getpgrp()
        except OSError:
            return False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._terminal_group_got_it(signum):
            return
        child = self.child
        if child is None or child.returncode is not None:
            self.pending.append(signum)
            return
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    def started(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child
        while self.pending:
            try:
                child.send_signal(self.pending.pop(0))
            except ProcessLookupError:
                return


def _start(argv: Sequence[str], values: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, **values}
    try:
        return subprocess.Popen(list(argv), env=env)
    except FileNotFoundError:
        raise CommandError(f"command not found: {argv[0]!r}", 127) from None
    except PermissionError:
        raise CommandError(f"command cannot be run (permission denied): {argv[0]!r}", 126) from None
    except OSError as exc:
        raise CommandError(f"command cannot be run: {argv[0]!r}: {exc.strerror or type(exc).__name__}", 126) from None


def exit_status(returncode: int) -> int:
    """The shell's convention: the command's exit code, or 128 + N if signal N killed it."""
    return 128 - returncode if returncode < 0 else returncode


def _stop(child: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def run(
    store: SecretStore,
    bindings: Sequence[Binding],
    argv: Sequence[str],
    *,
    watch: bool = False,
    watch_signal: int | None = None,
    interval: float = 30.0,
    stop_timeout: float = 10.0,
    err: TextIO | None = None,
) -> int:
    """Resolve ``bindings``, run ``argv`` with the values added to its environment, and return
    its exit status (``128 + N`` if signal ``N`` killed it).

    Raises the ``SecretError`` of the first reference that cannot be resolved (before the
    command starts) and ``CommandError`` when the command cannot be started. With ``watch``
    (implied by ``watch_signal``), each referenced secret is watched (``store.watch``, every
    ``interval`` seconds where the backend cannot push changes); when a value the command got
    changes, the command is restarted with the new values (SIGTERM, then SIGKILL after
    ``stop_timeout`` seconds) or, with ``watch_signal``, sent that signal instead.
    """
    if not argv:
        raise InvalidArgumentError("no command to run: secretkit run [--env VAR=REF] [--env-file FILE] -- COMMAND ...")
    err = err or sys.stderr
    watch = (watch or watch_signal is not None) and bool(bindings)
    changed = threading.Event()
    watchers: list[Watcher] = []
    try:
        if watch:  # before the values are read, so no change between the two goes unseen
            for binding in bindings:
                binding.reference.check(store)
            for name in dict.fromkeys(b.reference.name for b in bindings):
                watchers.append(store.watch(name, lambda _secret: changed.set(), interval=interval))
        values = resolve_bindings(store, bindings)
        logger.debug("run: starting %s with %s from secrets", argv[0], ", ".join(sorted(values)) or "nothing")
        with _Forwarder() as forwarder:
            child = _start(argv, values)
            forwarder.started(child)
            if not watch:
                return exit_status(child.wait())
            while True:
                try:
                    return exit_status(child.wait(timeout=0.1))
                except subprocess.TimeoutExpired:
                    pass
                if not changed.is_set():
                    continue
                changed.clear()
                try:
                    fresh = resolve_bindings(store, bindings)
                except SecretError as exc:
                    print(f"secretkit: a secret changed, but the command keeps its values: {exc}", file=err)
                    continue
                if fresh == values:
                    continue
                names = ", ".join(sorted(k for k in fresh if fresh[k] != values.get(k)))
                values = fresh
                if watch_signal is not None:
                    print(f"secretkit: {names} changed; sending {signal.Signals(watch_signal).name}", file=err)
                    child.send_signal(watch_signal)
                    continue
                print(f"secretkit: {names} changed; restarting the command", file=err)
                forwarder.child = None
                _stop(child, stop_timeout)
                child = _start(argv, values)
                forwarder.started(child)
    finally:
        for watcher in watchers:
            watcher.stop()
