"""Strong random values for rotation: passwords and tokens (the ``secrets`` module's CSPRNG)."""

from __future__ import annotations

import secrets
import string

from secretkit.errors import InvalidArgumentError

_SYMBOLS = "-_.,:;!@#%^*+="
MIN_PASSWORD_LENGTH = 8


def generate_password(length: int = 32) -> str:
    """A random password with lower, upper, digits and shell-safe symbols (at least one of each)."""
    if isinstance(length, bool) or not isinstance(length, int) or length < MIN_PASSWORD_LENGTH:
        raise InvalidArgumentError(f"a generated password has at least {MIN_PASSWORD_LENGTH} characters (got {length!r})")
    alphabet = string.ascii_letters + string.digits + _SYMBOLS
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and any(c.isdigit() for c in candidate)
            and any(c in _SYMBOLS for c in candidate)
        ):
            return candidate


def generate_token(nbytes: int = 32) -> str:
    """A random URL-safe token of ``nbytes`` of entropy."""
    return secrets.token_urlsafe(nbytes)
