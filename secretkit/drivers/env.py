"""env:// — read-only: secrets from the process environment.

Twelve-factor apps, Kubernetes ``env``/``envFrom``, Compose ``environment:``, CI variables and
the Vault Agent's env templates all hand secrets over as environment variables. ``env://``
reads them through the same ``SecretStore`` API as every other backend.

The name → variable rule (``variable_name``), exactly:

1. A name may hold ASCII letters, digits and ``/ . _ -`` (at least one character); any other
   character has no form in a portable variable name, so such a name is refused with
   ``InvalidArgumentError`` before the environment is read.
2. Each of ``/ . -`` becomes ``_``; letters are upper-cased; ``_`` and digits stay.
3. The store's prefix (``env://?prefix=APP_``) is put in front, as given.
4. The result must be a portable variable name (``[A-Za-z_][A-Za-z0-9_]*``): without a prefix, a
   name that starts with a digit is refused.

So ``payments/db-password`` → ``PAYMENTS_DB_PASSWORD``, and with ``?prefix=APP_`` →
``APP_PAYMENTS_DB_PASSWORD``. The rule is many-to-one: ``a/b``, ``a.b``, ``a-b``, ``a_b`` and
``A_B`` all name the one variable ``A_B``, and all read the same value (the environment has one
variable there, so they are one secret spelt several ways).

``list(prefix)`` yields nothing on a store without a prefix (the whole environment is not a
secret namespace). With one, it yields a name for every variable under the store's prefix whose
rest is upper-case letters, digits and ``_``: the list prefix as given followed by the rest of
the variable in lower case (``list()`` → ``payments_db_password``; ``list("payments/")`` →
``payments/db_password``). Each such name maps back to its variable by the rule above.
Variables with lower-case letters or other characters after the prefix cannot be reached by a
name and are not listed.

Values are text (``Kind.TEXT``) exactly as the variable holds them; a variable holding a JSON
object reads as fields through the value's own view while ``.text`` stays exact. On POSIX a
variable whose octets are not UTF-8 reads as ``Kind.BYTES``. The version id is a digest of the
value, so ``watch`` and the cache notice a change (in this process: the environment of a
running process changes only through ``os.environ``).
"""

from __future__ import annotations

import builtins
import hashlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from secretkit.drivers.base import (
    Capabilities,
    Classified,
    ConfigError,
    InvalidArgumentError,
    Kind,
    NameRules,
    NotFoundError,
    NotSupportedError,
    Record,
    StoreURL,
    Value,
    VersionInfo,
    VersionProbe,
    validate_options as validate,
)

_NAME = re.compile(r"[A-Za-z0-9._/-]+")
_SEPARATORS = re.compile(r"[./-]")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LISTED_REST = re.compile(r"[A-Z0-9_]*")
NAME_RULE = (
    "env:// names hold ASCII letters, digits and '/', '.', '_', '-'; the variable is PREFIX + the name "
    "upper-cased with '/', '.' and '-' as '_', and must be a portable variable name ([A-Za-z_][A-Za-z0-9_]*)"
)
READ_ONLY = "env:// is read-only: secrets come from the process environment"


def variable_name(name: str, prefix: str = "") -> str:
    """The environment variable that holds ``name`` on a store with ``prefix`` (the module
    docstring states the rule); ``InvalidArgumentError`` for a name with no variable."""
    if not _NAME.fullmatch(name):
        raise InvalidArgumentError(f"this name has no environment variable: {NAME_RULE}")
    variable = prefix + _SEPARATORS.sub("_", name).upper()
    if not _VARIABLE.fullmatch(variable):
        raise InvalidArgumentError(f"this name maps to {variable!r}, not a portable variable name: {NAME_RULE}")
    return variable


def _holds(prefix: str) -> Callable[[str], bool]:
    def holds(name: str) -> bool:
        try:
            variable_name(name, prefix)
        except InvalidArgumentError:
            return False
        return True

    return holds


class EnvOptions(BaseModel):
    """Options of ``env://`` (URL query, keyword arguments or config file)."""

    model_config = ConfigDict(extra="forbid")

    prefix: str = Field("", description="put in front of every variable name, e.g. APP_; list() needs one")

    @field_validator("prefix")
    @classmethod
    def _portable(cls, value: str) -> str:
        if value and not _VARIABLE.fullmatch(value):
            raise ValueError("a prefix is the start of a portable variable name: [A-Za-z_][A-Za-z0-9_]*")
        return value


class EnvDriver:
    """Read-only driver over ``os.environ`` (read at every call, so changes in the process are seen)."""

    backend = "env"
    protocols = (VersionProbe,)
    sdk_loggers: tuple[str, ...] = ()
    sdk_value_keys: tuple[str, ...] = ()
    # read-only: the store refuses writes before any I/O, and a layered store skips this layer for them
    capabilities = Capabilities(
        remote=False, versions=False, compare_and_set=False, create_only=False, idempotent_put=False, read_only=True,
    )

    def __init__(self, prefix: str = "", environ: Mapping[str, str] | None = None) -> None:
        """``environ`` replaces ``os.environ`` (tests, or a dotenv file parsed by the caller)."""
        self.prefix = prefix
        self._environ = environ
        self.names = NameRules(NAME_RULE, _holds(prefix))

    def variable(self, name: str) -> str:
        """The variable this store reads for ``name``."""
        return variable_name(name, self.prefix)

    # -- reads ---------------------------------------------------------------------------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        if version is not None or stage is not None:
            raise NotSupportedError("env:// keeps no versions or stages")
        raw = self._raw(self.variable(name))
        try:
            value = Value(Kind.TEXT, raw.decode("utf-8"))
        except UnicodeDecodeError:
            value = Value(Kind.BYTES, raw)
        return Record(value, _digest(raw))

    def current_version(self, name: str) -> str:
        return _digest(self._raw(self.variable(name)))

    def list(self, prefix: str) -> list[str]:
        if not self.prefix or (prefix and not re.fullmatch(r"[A-Za-z0-9._/-]*", prefix)):
            return []
        start = self.prefix + _SEPARATORS.sub("_", prefix).upper()
        found = []
        for variable in self._variables():
            if not variable.startswith(start):
                continue
            rest = variable[len(start):]
            if not _LISTED_REST.fullmatch(rest):
                continue
            name = prefix + rest.lower()
            if not name:
                continue  # the store's prefix alone: no name maps to it
            try:
                if self.variable(name) == variable:
                    found.append(name)
            except InvalidArgumentError:
                continue
        return found

    def versions(self, name: str) -> Sequence[VersionInfo]:
        raise NotSupportedError("env:// keeps no version history")

    # -- writes --------------------------------------------------------------------------

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        raise NotSupportedError(READ_ONLY)

    def delete(self, name: str, *, purge: bool) -> None:
        raise NotSupportedError(READ_ONLY)

    def classify(self, exc: BaseException) -> Classified | None:
        return None  # nothing below raises anything but portable errors

    def close(self) -> None:
        pass

    # -- the environment -----------------------------------------------------------------

    def _raw(self, variable: str) -> bytes:
        """The variable's octets: on POSIX exactly as the process got them (``os.environb``)."""
        if self._environ is not None:
            text = self._environ.get(variable)
            raw = None if text is None else text.encode("utf-8", "surrogateescape")
        elif os.supports_bytes_environ:
            raw = os.environb.get(os.fsencode(variable))
        else:  # pragma: no cover - Windows: the environment is text
            text = os.environ.get(variable)
            raw = None if text is None else text.encode("utf-8", "surrogatepass")
        if raw is None:
            raise NotFoundError(f"no environment variable {variable}")
        return raw

    def _variables(self) -> builtins.list[str]:
        return list(self._environ if self._environ is not None else os.environ)


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


#: The driver classes this factory opens, by the title docs/capabilities.md gives them.
DRIVERS: dict[str, type] = {"env": EnvDriver}


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> EnvDriver:
    if url.host or url.path.strip("/"):
        raise ConfigError("env:// takes no host or path; give a variable prefix as env://?prefix=APP_")
    opts = validate(EnvOptions, options, what="env store")
    return EnvDriver(opts.prefix)


__all__ = ["DRIVERS", "NAME_RULE", "EnvDriver", "EnvOptions", "open_driver", "variable_name"]
