"""``secretkit`` command line: get, put, ls, rm, versions, rotate against one store.

The store is ``--url``, else ``SECRETKIT_URL``, else the encrypted file store in the user's
data directory; the store used is said on stderr. Values are read from stdin or a file,
never from argv (shell history and ``ps`` would show them).

Exit codes: 0 ok, 1 not found, 2 usage or invalid input, 3 conflict or already exists,
4 permission or authentication, 5 unavailable or throttled, 6 configuration, 7 other error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import BinaryIO

from secretkit.errors import ErrorCode, SecretError

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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="secretkit", description="Read and write secrets in any secretkit store.")
    p.add_argument("--url", help="store URL (default: $SECRETKIT_URL, else the file store in your data directory)")
    p.add_argument("-q", "--quiet", action="store_true", help="do not say which store is used")
    p.add_argument("--debug", action="store_true", help="log backend calls to stderr (values are redacted)")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("get", help="print a secret's value")
    g.add_argument("name")
    g.add_argument("--version", help="a specific version")
    g.add_argument("--field", help="print one field of a fields secret")
    g.add_argument("--json", action="store_true", help="print fields (or text) as JSON")
    g.add_argument("--raw", action="store_true", help="write the exact bytes, no trailing newline")

    u = sub.add_parser("put", help="store a new version, value from stdin or --file")
    u.add_argument("name")
    u.add_argument("--file", type=argparse.FileType("rb"), help="read the value from this file instead of stdin")
    kind = u.add_mutually_exclusive_group()
    kind.add_argument("--binary", action="store_true", help="store the input as bytes, exactly")
    kind.add_argument("--fields", action="store_true", help="input is a JSON object of string fields")
    u.add_argument("--keep-newline", action="store_true", help="keep one trailing newline of text input")
    u.add_argument("--if-version", help="compare-and-set: only if the current version is this one")
    u.add_argument("--create", action="store_true", help="only if the secret does not exist yet")

    ls = sub.add_parser("ls", help="list secret names")
    ls.add_argument("prefix", nargs="?", default="")

    rm = sub.add_parser("rm", help="delete a secret")
    rm.add_argument("name")
    rm.add_argument("--purge", action="store_true", help="destroy at once (no recovery window)")
    rm.add_argument("-f", "--force", action="store_true", help="no error if it does not exist")

    v = sub.add_parser("versions", help="list a secret's versions, newest first")
    v.add_argument("name")

    r = sub.add_parser("rotate", help="replace the value with a generated password, keeping the old one as previous")
    r.add_argument("name")
    r.add_argument("--if-older-than", type=_duration, metavar="AGE", help="only if current is older (e.g. 30d, 12h)")
    r.add_argument("--length", type=int, default=32, help="generated password length (default 32)")
    r.add_argument("--resume", action="store_true", help="continue a rotation a crashed run left pending")
    return p


def _duration(text: str) -> timedelta:
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    try:
        return timedelta(**{units[text[-1]]: float(text[:-1])})
    except (KeyError, ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30d, 12h, 90m") from None


def _read_value(args: argparse.Namespace, stdin: BinaryIO) -> str | bytes | dict[str, str]:
    source: BinaryIO = args.file or stdin
    if source is stdin and stdin.isatty():
        print("reading the value from stdin; end with Ctrl-D", file=sys.stderr)
    data = source.read()
    if args.binary:
        return data
    text = data.decode("utf-8")  # UnicodeDecodeError is reported as invalid input
    if args.fields:
        fields = json.loads(text)
        if not isinstance(fields, dict):
            raise ValueError("--fields expects a JSON object of strings")
        return fields
    if not args.keep_newline and text.endswith("\n"):
        text = text[:-1]  # `echo x | secretkit put` should store "x"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from secretkit.config import default_url
    from secretkit.redact import install_redaction
    from secretkit.registry import open as open_store

    handler = logging.StreamHandler(sys.stderr)
    install_redaction(handlers=[handler])
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, handlers=[handler])
    url = args.url or default_url()
    out = sys.stdout.buffer
    try:
        with open_store(url) as store:
            if not args.quiet:
                print(f"secretkit: using {store.url}", file=sys.stderr)
            if args.command == "get":
                secret = store.get(args.name, version=args.version)
                if args.field:
                    payload = secret[args.field].encode()
                elif args.json:
                    payload = json.dumps(secret.fields if secret.kind.value == "fields" else secret.text).encode()
                else:
                    payload = secret.bytes
                out.write(payload if args.raw else payload + b"\n")
            elif args.command == "put":
                value = _read_value(args, sys.stdin.buffer)
                info = store.put(args.name, value, if_version=args.if_version, create_only=args.create)
                print(f"stored {args.name} version {info.version}", file=sys.stderr)
            elif args.command == "ls":
                for name in store.list(args.prefix):
                    out.write(name.encode() + b"\n")
            elif args.command == "rm":
                store.delete(args.name, purge=args.purge, missing_ok=args.force)
            elif args.command == "versions":
                for v in store.versions(args.name):
                    created = v.created_at.isoformat() if v.created_at else "-"
                    stages = ",".join(sorted(v.stages)) or "-"
                    out.write(f"{v.version}\t{created}\t{v.state}\t{stages}\n".encode())
            elif args.command == "rotate":
                from secretkit.rotation import generate_password

                result = store.rotate(
                    args.name,
                    generate=lambda current: generate_password(args.length),
                    resume=args.resume,
                    if_older_than=args.if_older_than,
                )
                if result is None:
                    print(f"{args.name} is younger than {args.if_older_than}; not rotated", file=sys.stderr)
                else:
                    print(f"rotated {args.name}: version {result.version} is current, {result.previous} previous",
                          file=sys.stderr)
            out.flush()
    except SecretError as exc:
        print(f"secretkit: error: {exc}", file=sys.stderr)
        return EXIT_CODES.get(exc.code, 7)
    except KeyError as exc:
        print(f"secretkit: error: {exc.args[0]}", file=sys.stderr)
        return 1
    except (ValueError, UnicodeDecodeError) as exc:  # bad --fields JSON, non-UTF-8 text input
        print(f"secretkit: error: invalid input: {type(exc).__name__}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `secretkit ls | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
