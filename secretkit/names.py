"""The portable name grammar, and a reversible escape that drivers use for what their backend lacks.

A portable name is one or more segments separated by ``/``; a segment is ASCII letters,
digits, ``.``, ``_`` and ``-``, starting and ending with a letter or digit
(``payments/db-password``, ``App_1/api.key``). At most 200 characters, so every backend's
encoding still fits its own limit. Checked before any I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from secretkit.errors import InvalidArgumentError

MAX_NAME_LENGTH = 200
_SEGMENT = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_NAME = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_FIELD = re.compile(r"[A-Za-z0-9._-]{1,253}")


def check_name(name: object) -> str:
    """Return ``name`` if it is portable, else raise ``InvalidArgumentError`` saying why."""
    if not isinstance(name, str):
        raise InvalidArgumentError(f"a secret name must be str, not {type(name).__name__}")
    if not name:
        raise InvalidArgumentError("a secret name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgumentError(
            f"a secret name is at most {MAX_NAME_LENGTH} characters (got {len(name)})", name=name[:40] + "…"
        )
    if not _NAME.fullmatch(name):
        raise InvalidArgumentError(
            "not a portable secret name: use segments of letters, digits, '.', '_' and '-', "
            "each starting and ending with a letter or digit, separated by single '/'",
            name=name,
        )
    return name


def is_portable(name: str) -> bool:
    """True if ``name`` follows the portable grammar (without raising)."""
    return len(name) <= MAX_NAME_LENGTH and _NAME.fullmatch(name) is not None


def check_prefix(prefix: object) -> str:
    """A list prefix is any leading part of a portable name (it may end in ``/`` or mid-segment)."""
    if not isinstance(prefix, str):
        raise InvalidArgumentError(f"a prefix must be str, not {type(prefix).__name__}")
    if prefix and not re.fullmatch(r"[A-Za-z0-9._/-]*", prefix):
        raise InvalidArgumentError(f"prefix {prefix!r} has characters no portable name can contain")
    return prefix


def check_field_name(key: str, *, name: str) -> None:
    """Field names: letters, digits, ``.``, ``_``, ``-`` (what Kubernetes data keys allow), 1-253."""
    if not _FIELD.fullmatch(key) or key in (".", ".."):
        raise InvalidArgumentError(
            f"field name {key!r} is not portable: use 1-253 letters, digits, '.', '_' or '-'", name=name
        )


def escape(name: str, keep: Callable[[str], bool], marker: str) -> str:
    """Reversibly encode every character ``keep`` rejects (and ``marker`` itself) as ``marker`` + 2 hex digits.

    gocloud's blob drivers escape keys the same way; ``unescape`` inverts it exactly.
    """
    out = []
    for ch in name:
        if ch != marker and keep(ch):
            out.append(ch)
        else:
            out.append(f"{marker}{ord(ch):02x}")
    return "".join(out)


def unescape(encoded: str, marker: str) -> str:
    """Invert ``escape``; raises ``ValueError`` on a malformed escape."""
    out = []
    i = 0
    while i < len(encoded):
        ch = encoded[i]
        if ch == marker:
            hexpair = encoded[i + 1 : i + 3]
            if len(hexpair) != 2 or not all(c in "0123456789abcdef" for c in hexpair):
                raise ValueError(f"malformed escape in {encoded!r}")
            out.append(chr(int(hexpair, 16)))
            i += 3
        else:
            out.append(ch)
            i += 1
    return "".join(out)
