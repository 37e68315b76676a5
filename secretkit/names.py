"""Secret names: what every store checks, the portable grammar, and each backend's rules.

Native first: a name the backend accepts is used unchanged (AWS ``prod/app+1@x``, GCP
``my_secret``, kubectl's ``zabbix-db``). The *portable* grammar is what works on every
backend: one or more segments separated by ``/``, a segment being ASCII letters, digits,
``.``, ``_`` and ``-`` that starts and ends with a letter or digit (``payments/db-password``),
at most 200 characters. A backend that cannot hold some portable names (``/`` on GCP and
Kubernetes) maps only those, never a name it holds natively; ``NameRules`` says how.
Every check runs before any I/O and states the backend's rule when it refuses a name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from secretkit.errors import InvalidArgumentError

MAX_NAME_LENGTH = 200
#: A longer name is refused before any backend rule is consulted (no backend holds it).
MAX_ANY_NAME = 4096
_SEGMENT = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_PORTABLE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FIELD = re.compile(r"[A-Za-z0-9._-]{1,253}")
PORTABLE_RULE = (
    "portable names are segments of ASCII letters, digits, '.', '_' and '-', each starting and "
    f"ending with a letter or digit, separated by single '/', at most {MAX_NAME_LENGTH} characters"
)


def _short(name: str) -> str:
    return name if len(name) <= 80 else name[:60] + "…"


def check_text(name: object, what: str = "a secret name") -> str:
    """The checks every store makes: a non-empty str of printable Unicode (no control
    characters, no lone surrogates), at most ``MAX_ANY_NAME`` characters."""
    if not isinstance(name, str):
        raise InvalidArgumentError(f"{what} must be str, not {type(name).__name__}")
    if not name:
        raise InvalidArgumentError(f"{what} must not be empty")
    if len(name) > MAX_ANY_NAME:
        raise InvalidArgumentError(f"{what} is at most {MAX_ANY_NAME} characters (got {len(name)})", name=_short(name))
    if _CONTROL.search(name):
        raise InvalidArgumentError(f"{what} must not contain control characters", name=repr(_short(name)))
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        pass  # raised outside the handler, so no traceback keeps the name's encode error
    raise InvalidArgumentError(f"{what} is not valid Unicode (it holds a lone surrogate)")


def is_portable(name: str) -> bool:
    """True if ``name`` follows the portable grammar (without raising)."""
    return len(name) <= MAX_NAME_LENGTH and _PORTABLE.fullmatch(name) is not None


def check_portable(name: object) -> str:
    """Return ``name`` if it follows the portable grammar, else ``InvalidArgumentError`` saying why."""
    text = check_text(name)
    if not is_portable(text):
        raise InvalidArgumentError(f"not a portable secret name: {PORTABLE_RULE}", name=_short(text))
    return text


def check_prefix(prefix: object) -> str:
    """A list prefix: any leading part of a name (empty lists everything)."""
    if prefix == "":
        return ""
    return check_text(prefix, "a list prefix")


def check_field_name(key: str, *, name: str) -> None:
    """Portable field names: 1-253 letters, digits, ``.``, ``_``, ``-`` (what Kubernetes data keys allow)."""
    if not _FIELD.fullmatch(key) or key in (".", ".."):
        raise InvalidArgumentError(
            f"field name {key!r} is not portable: use 1-253 letters, digits, '.', '_' or '-'", name=name
        )


@dataclass(frozen=True)
class NameRules:
    """How one backend holds names.

    ``native(name)`` says whether the backend holds ``name`` exactly as written (then it is
    used unchanged, in the portable grammar or not). A portable name it cannot hold is stored
    under ``mapped(name)`` when the backend has a mapping (GCP, Kubernetes), which must give a
    natively valid name; the driver records the name as written in the object's metadata, so
    ``list()`` shows it. Anything else is refused with ``rule``.
    """

    rule: str
    """The backend's rule in words, quoted when a name is refused."""
    native: Callable[[str], bool]
    mapped: Callable[[str], str] | None = None

    def storage_name(self, name: str) -> str:
        """The backend's name for ``name``; ``InvalidArgumentError`` (before any I/O) if none."""
        return _storage_name(self, name)

    def check(self, name: object) -> str:
        """``name`` after the checks every store makes and this backend's rules."""
        text = check_text(name)
        self.storage_name(text)
        return text

    def is_mapped(self, name: str) -> bool:
        """True if ``name`` is stored under another name (so its object records the name as written)."""
        return self.storage_name(name) != name


def _storage_name(rules: NameRules, name: str) -> str:
    # Not memoised: a check runs on misses and writes only (never on cache hits), and a memo
    # would cost every cached secret more memory than the regex costs time.
    if rules.native(name):
        return name
    if rules.mapped is not None and is_portable(name):
        stored = rules.mapped(name)
        if rules.native(stored):
            return stored
        raise InvalidArgumentError(
            f"this name maps to {stored!r}, which the backend cannot hold either ({rules.rule})", name=_short(name)
        )
    raise InvalidArgumentError(f"the backend cannot hold this name: {rules.rule}", name=_short(name))


def pattern_rule(pattern: str, max_length: int) -> Callable[[str], bool]:
    """A ``native`` test from a regular expression and a length limit."""
    compiled = re.compile(pattern)
    return lambda name: len(name) <= max_length and compiled.fullmatch(name) is not None


@lru_cache(maxsize=1)
def portable_rules() -> NameRules:
    """The rules of a store that holds exactly the portable names (memory://, file://)."""
    return NameRules(PORTABLE_RULE, is_portable)


def hashed(readable: str, name: str, *, joiner: str = "-", digits: int = 8) -> str:
    """``readable`` plus a short digest of the original ``name``: two names whose readable forms
    coincide (``a/b`` and ``a.b`` on Kubernetes) still map to two objects, and no natively valid
    name can be hit by accident."""
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:digits]
    return f"{readable}{joiner}{digest}"

