"""``secretkit`` command line: get, put, ls, rm, versions, rotate and run against one store.

The store is ``--url``, else ``SECRETKIT_URL``, else the encrypted file store in the user's
data directory (the rule of ``secretkit.open()``); the store used is said on stderr, and only
a write creates a file store. Values are read from stdin, a file or the terminal without
echo, never from argv (shell history and ``ps`` would show them).

Exit codes are those of the table in docs/cli.md (``EXIT_CODES``; a test keeps the two equal).
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, BinaryIO

from secretkit import __version__
from secretkit.errors import ErrorCode, InvalidArgumentError, SecretError
from secretkit.fields import TextForm, parse_fields
from secretkit.references import Reference, json_text, text_of
from secretkit.secret import Secret, ViewError

#: Exit status for each portable error code (docs/cli.md's table); any other error exits ``OTHER``.
EXIT_CODES = {
    ErrorCode.NOT_FOUND: 1,
    ErrorCode.INVALID_ARGUMENT: 2,
    ErrorCode.NOT_SUPPORTED: 2,
    ErrorCode.CONFLICT: 3,
    ErrorCode.ALREADY_EXISTS: 3,
    ErrorCode.PERMISSION_DENIED: 4,
    ErrorCode.UNAUTHENTICATED: 4,
    ErrorCode.UNAVAILABLE: 5,
    ErrorCode.THROTTLED: 5,
    ErrorCode.DEADLINE_EXCEEDED: 5,
    ErrorCode.CONFIG: 6,
}
OTHER = 7
USAGE = 2


def _global_options(p: argparse.ArgumentParser, default: Any) -> None:
    """The options every command takes, before or after its name (``secretkit get x --url …``)."""
    p.add_argument("--url", default=default, help="store URL (default: $SECRETKIT_URL, else the file store in your "
                                                  "data directory)")
    p.add_argument("-q", "--quiet", action="store_true", default=default, help="do not say which store is used")
    p.add_argument("--debug", action="store_true", default=default,
                   help="log backend calls to stderr (values are redacted)")


class _RenamedVersion(argparse.Action):
    """``get --version`` read a secret's version until ``secretkit --version`` could mean the
    program's version after the command name too: refused, naming the new option."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        parser.error("get --version is now get --at VERSION (secretkit --version prints the program's version)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="secretkit", description="Read and write secrets in any secretkit store.")
    p.add_argument("--version", action="version", version=f"secretkit {__version__}")
    _global_options(p, None)
    # The commands take the global options too; SUPPRESS leaves the value given before the
    # command name in place when none is given after it.
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("get", help="print a secret's value", parents=[common])
    g.add_argument("name")
    which = g.add_mutually_exclusive_group()
    which.add_argument("--at", metavar="VERSION", help="a specific version (see `secretkit versions NAME`)")
    which.add_argument("--stage", choices=("current", "previous", "pending"),
                       help="the version in this rotation stage, where the backend keeps stages")
    g.add_argument("--version", nargs="?", action=_RenamedVersion, help=argparse.SUPPRESS)
    g.add_argument("--field", help="print one field of a field secret")
    g.add_argument("--json", action="store_true", help="print the value as JSON: fields as an object, text as a string")
    g.add_argument("--raw", action="store_true", help="write the exact bytes, no trailing newline")

    u = sub.add_parser("put", help="store a new version, value from stdin, --file or the terminal (not echoed)",
                       parents=[common])
    u.add_argument("name")
    u.add_argument("--file", type=argparse.FileType("rb"), help="read the value from this file instead of stdin")
    kind = u.add_mutually_exclusive_group()
    kind.add_argument("--binary", action="store_true", help="store the input as bytes, exactly")
    kind.add_argument("--fields", action="store_true",
                      help="input is a JSON object; a value that is not a string is kept as its JSON text")
    u.add_argument("--keep-newline", action="store_true", help="keep one trailing newline of text input")
    u.add_argument("--allow-empty", action="store_true", help="store an empty value (else empty input is refused)")
    u.add_argument("--if-version", help="compare-and-set: only if the current version is this one")
    u.add_argument("--create", action="store_true", help="only if the secret does not exist yet")

    ls = sub.add_parser("ls", help="list secret names", parents=[common])
    ls.add_argument("prefix", nargs="?", default="")

    rm = sub.add_parser("rm", help="delete secrets (every name is checked before any is deleted)", parents=[common])
    rm.add_argument("names", nargs="+", metavar="NAME")
    rm.add_argument("--purge", action="store_true", help="destroy at once (no recovery window)")
    rm.add_argument("-f", "--force", action="store_true", help="no error for a name that does not exist")

    v = sub.add_parser("versions", help="list a secret's versions, newest first", parents=[common])
    v.add_argument("name")

    r = sub.add_parser("rotate", help="replace the value with a generated password, keeping the old one as previous",
                       parents=[common])
    r.add_argument("name")
    r.add_argument("--field", help="rotate this field of a field secret, keeping the others")
    r.add_argument("--if-older-than", type=_duration, metavar="AGE", help="only if current is older (e.g. 30d, 12h)")
    r.add_argument("--length", type=int, default=32, help="generated password length (default 32, at least 8)")
    r.add_argument("--resume", action="store_true", help="continue a rotation a crashed run left pending")
    r.add_argument("--allow-native-rotation", action="store_true",
                   help="rotate even though the backend rotates this secret itself (an AWS rotation Lambda)")

    x = sub.add_parser("run", help="run a command with secrets in its environment", parents=[common],
                       usage="secretkit run [--env VAR=REFERENCE]... [--env-file FILE]... [--watch] -- COMMAND [ARG...]")
    x.add_argument("--env", action="append", default=[], metavar="VAR=REFERENCE",
                   help="set VAR to the value REFERENCE names (NAME or NAME#FIELD); repeatable")
    x.add_argument("--env-file", action="append", default=[], metavar="FILE",
                   help="VAR=REFERENCE lines (blank lines and # comments allowed); repeatable")
    x.add_argument("--watch", action="store_true", help="restart the command when a referenced secret changes")
    x.add_argument("--watch-signal", type=_signal, metavar="SIG",
                   help="with --watch: send this signal (e.g. HUP) instead of restarting")
    x.add_argument("--watch-interval", type=float, default=30.0, metavar="SECONDS",
                   help="how often to check for changes where the store cannot push them (default 30)")
    x.add_argument("--stop-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="on restart, how long to wait after SIGTERM before SIGKILL (default 10)")
    x.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND", help="the command and its arguments")
    return p


def _duration(text: str) -> timedelta:
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    try:
        return timedelta(**{units[text[-1]]: float(text[:-1])})
    except (KeyError, ValueError, IndexError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30d, 12h, 90m") from None


def _signal(text: str) -> int:
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    sig = getattr(signal, name, None)
    if not isinstance(sig, signal.Signals):
        raise argparse.ArgumentTypeError(f"{text!r} is not a signal name like HUP or USR1")
    return int(sig)


def human_duration(delta: timedelta) -> str:
    """``timedelta(days=30)`` → ``"30 days"``; ``timedelta(minutes=90)`` → ``"1 hour 30 minutes"``."""
    total = delta.total_seconds()
    if total < 1:
        return f"{total:g} seconds"
    seconds = int(total)
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(parts)


def _read_value(args: argparse.Namespace, stdin: BinaryIO) -> str | bytes | dict[str, str]:
    """The value to store; a value typed at a terminal is read without echo. Errors never quote it."""
    source: BinaryIO = args.file or stdin
    if source is stdin and stdin.isatty():
        data = getpass.getpass(f"value for {args.name} (not echoed): ").encode("utf-8")
    else:
        data = source.read()
    # An empty value is almost always a mistake (a closed pipe, `< /dev/null`, Enter at the
    # prompt), and storing it would replace a good one: refused unless asked for. A lone
    # newline counts, since it is dropped below.
    if not args.allow_empty and (not data or (not args.binary and not args.keep_newline and data == b"\n")):
        raise InvalidArgumentError("the input is empty: nothing to store (pass --allow-empty to store an empty value)",
                                   name=args.name)
    if args.binary:
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgumentError("the input is not UTF-8 text; store octets with --binary") from None
    if args.fields:
        try:
            fields = json.loads(text)
        except ValueError as exc:  # the decoder's own message quotes no input, its position does
            raise InvalidArgumentError(f"--fields input is not JSON ({getattr(exc, 'msg', 'invalid')} "
                                       f"at line {getattr(exc, 'lineno', '?')} column {getattr(exc, 'colno', '?')})"
                                       ) from None
        # A number, true, false, null, a list or an object is kept as its JSON text: the very
        # function `.fields` reads JSON text with, so these fields read back alike either way.
        parsed = parse_fields(text) if isinstance(fields, dict) else None
        if parsed is None:
            raise InvalidArgumentError("--fields expects a JSON object")
        return parsed
    if not args.keep_newline and text.endswith("\n"):
        text = text[:-1]  # `echo x | secretkit put` should store "x"
    return text


def get_output(secret: Secret, *, field: str | None = None, as_json: bool = False, raw: bool = False,
               backend: str | None = None) -> bytes:
    """What ``secretkit get`` prints (without the newline): see docs/cli.md.

    The value's ``.text``, exactly what the reference ``NAME`` resolves to on every backend
    (octets that are not text as they are); ``--json`` that text as JSON (``json_text``);
    ``--field F`` that field, exactly as ``NAME#F`` resolves. Errors name the secret and
    ``backend``, say which option to use instead, and never quote the value.
    """
    if field is not None:
        data = secret.value.raw
        item = data.get(field) if isinstance(data, Mapping) else None
        if isinstance(item, bytes) and not _is_text(item):
            if raw and not as_json:
                return item
            raise InvalidArgumentError(f"field {field!r} holds octets that are not UTF-8 text; "
                                       "use --raw (without --json) to write them exactly",
                                       name=secret.name, backend=backend)
        text = text_of(secret, Reference(secret.name, field), backend=backend)
        return (json.dumps(text, ensure_ascii=False) if as_json else text).encode("utf-8")
    try:
        return json_text(secret).encode("utf-8") if as_json else secret.bytes
    except ViewError:
        pass  # raised below, outside the handler
    raise InvalidArgumentError("the secret holds octets that are not UTF-8 text (or fields that are not); "
                               "use --raw to write them exactly", name=secret.name, backend=backend)


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _warn_memory(store: Any) -> None:
    if store.backend == "memory":
        print("secretkit: warning: memory:// keeps nothing after this command exits; "
              "use --url file:///PATH or another store to keep the value", file=sys.stderr)


def _rotate(store: Any, args: argparse.Namespace) -> None:
    from secretkit.generate import generate_password

    generate_password(args.length)  # refuse a bad --length before anything is read or written

    def generate(current: Secret) -> str:
        # Called before anything is written: a secret of several fields without --field is
        # refused, never replaced by one password.
        if args.field is None:
            raw = current.value.raw
            # (text Vault or Kubernetes keep as {"value": text} counts the fields its text has, as elsewhere)
            count = len(raw) if isinstance(raw, Mapping) and not isinstance(raw, TextForm) \
                else len(current.fields) if current.value.has_fields() else 0
            if count > 1:
                raise InvalidArgumentError(
                    f"the secret has {count} fields; say which one to rotate with --field", name=current.name
                )
        return generate_password(args.length)

    _warn_memory(store)
    result = store.rotate(args.name, generate=generate, resume=args.resume, if_older_than=args.if_older_than,
                          field=args.field, allow_native_rotation=args.allow_native_rotation)
    what = f"{args.name}#{args.field}" if args.field else args.name
    if result is None:
        print(f"{args.name} is younger than {human_duration(args.if_older_than)}; not rotated", file=sys.stderr)
    else:
        print(f"rotated {what}: version {result.version} is current, {result.previous} previous", file=sys.stderr)


def _run(store: Any, args: argparse.Namespace) -> int:
    from secretkit.run import bindings_from, run

    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    bindings = bindings_from(args.env_file, args.env)
    return run(store, bindings, argv, watch=args.watch, watch_signal=args.watch_signal,
               interval=args.watch_interval, stop_timeout=args.stop_timeout)


def _remove(store: Any, args: argparse.Namespace) -> int:
    """Every name is checked first (a typo deletes nothing), then each is deleted; each failure
    is reported, and the exit status is the first failure's (docs/cli.md)."""
    failures: list[SecretError] = []
    for name in args.names:
        try:
            store.names.check(name)
        except SecretError as exc:
            exc.name, exc.backend = exc.name or name, exc.backend or store.backend
            failures.append(exc)
    if not failures:
        for name in dict.fromkeys(args.names):
            try:
                store.delete(name, purge=args.purge, missing_ok=args.force)
            except SecretError as exc:
                failures.append(exc)
    for failure in failures:
        print(f"secretkit: error: {failure}", file=sys.stderr)
    return EXIT_CODES.get(failures[0].code, OTHER) if failures else 0


def _command(store: Any, args: argparse.Namespace, out: BinaryIO) -> int:
    if args.command == "get":
        secret = store.get(args.name, version=args.at, stage=args.stage)
        payload = get_output(secret, field=args.field, as_json=args.json, raw=args.raw, backend=store.backend)
        out.write(payload if args.raw else payload + b"\n")
    elif args.command == "put":
        value = _read_value(args, sys.stdin.buffer)
        _warn_memory(store)
        info = store.put(args.name, value, if_version=args.if_version, create_only=args.create)
        print(f"stored {args.name} version {info.version}", file=sys.stderr)
    elif args.command == "ls":
        for name in store.list(args.prefix):
            out.write(name.encode() + b"\n")
    elif args.command == "rm":
        return _remove(store, args)
    elif args.command == "versions":
        for v in store.versions(args.name):
            created = v.created_at.isoformat() if v.created_at else "-"
            stages = ",".join(sorted(v.stages)) or "-"
            out.write(f"{v.version}\t{created}\t{v.state}\t{stages}\n".encode())
    elif args.command == "rotate":
        _rotate(store, args)
    elif args.command == "run":
        return _run(store, args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from secretkit.redact import install_redaction
    from secretkit.registry import open as open_store
    from secretkit.run import CommandError

    handler = logging.StreamHandler(sys.stderr)
    install_redaction(handlers=[handler])
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, handlers=[handler])
    out = sys.stdout.buffer
    try:
        # no --url: open()'s own default, so what is not found there says why that store
        with open_store(args.url) as store:
            if not args.quiet:
                print(f"secretkit: using {store.url}", file=sys.stderr)
            status = _command(store, args, out)
            out.flush()
            return status
    except SecretError as exc:
        print(f"secretkit: error: {exc}", file=sys.stderr)
        return EXIT_CODES.get(exc.code, OTHER)
    except CommandError as exc:
        print(f"secretkit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `secretkit ls | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ValueError as exc:  # nothing of ours: say what kind, never a message that may quote input
        print(f"secretkit: error: invalid input ({type(exc).__name__})", file=sys.stderr)
        return USAGE


if __name__ == "__main__":
    sys.exit(main())
