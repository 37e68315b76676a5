"""Secret references: ``NAME`` or ``NAME#FIELD``, resolved against a store to one string.

One syntax for every consumer (``store.resolve``, the pydantic-settings source, ``secretkit
run``, ``secretkit get``): a reference names a secret of the store, and optionally one field
of it after the last ``#`` (``payments/db#password``). It resolves to text, by one rule on
every backend, so an application moved from one backend to another reads the same values:

* ``NAME`` → exactly the secret's ``.text``: text as stored, octets as their UTF-8 text
  (``InvalidArgumentError`` if they are not UTF-8), a map of fields as its canonical JSON
  (sorted keys, no spaces: the text AWS and GCP hold for the same put). Text that Vault or
  Kubernetes keep as the map ``{"value": text}`` is that text (``secretkit.fields.TextForm``);
* ``NAME#FIELD`` → that field's text (``.fields[FIELD]``), for a map of fields or text holding
  a JSON object; ``InvalidArgumentError`` if the secret has no fields, ``NotFoundError`` if it
  lacks that one.

Errors name the secret and the backend, never a value. A malformed reference is refused with
``InvalidArgumentError`` before any I/O. ``json_text`` is the same value as JSON (what
``secretkit get --json`` prints).
``refreshing`` is the "the password was rotated under me" helper: call a function with the
value, and on one of the given exceptions re-read the secret past the cache and retry once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from secretkit.errors import InvalidArgumentError, NotFoundError, SecretError
from secretkit.fields import field_text, parse_fields
from secretkit.names import NameRules, check_text
from secretkit.secret import BatchResult, Secret, ViewError

__all__ = [
    "Reference",
    "ReferenceStore",
    "json_text",
    "parse",
    "refreshing",
    "resolve",
    "resolve_many",
    "text_of",
]

T = TypeVar("T")
logger = logging.getLogger("secretkit")

#: The separator between a secret's name and one of its fields.
FIELD_SEPARATOR = "#"


class ReferenceStore(Protocol):
    """What resolving references needs of a store (``SecretStore`` has it)."""

    @property
    def backend(self) -> str: ...

    @property
    def names(self) -> NameRules: ...

    def get(
        self, name: str, *, version: str | None = None, stage: str | None = None,
        max_age: float | None = None, refresh: bool = False,
    ) -> Secret: ...

    def get_many(self, names: Iterable[str]) -> BatchResult: ...

    def invalidate(self, name: str) -> None: ...


@dataclass(frozen=True)
class Reference:
    """A parsed reference: the secret's ``name`` and, optionally, one ``field`` of it."""

    name: str
    field: str | None = None

    @classmethod
    def parse(cls, reference: object) -> Reference:
        """Parse ``NAME`` or ``NAME#FIELD``; ``InvalidArgumentError`` (no I/O) if malformed.

        The field follows the *last* ``#``, so a name that holds ``#`` on a backend that
        allows it is still reachable (``a#b#field``), and a field name never holds ``#``.
        """
        if isinstance(reference, Reference):
            return reference
        text = check_text(reference, "a secret reference")
        if text != text.strip():
            raise InvalidArgumentError(f"a secret reference has no surrounding spaces: {text.strip()!r}")
        name, sep, field = text.rpartition(FIELD_SEPARATOR)
        if not sep:
            return cls(text)
        if not name:
            raise InvalidArgumentError(f"reference {text!r} has no secret name before {FIELD_SEPARATOR!r}")
        if not field:
            raise InvalidArgumentError(f"reference {text!r} has no field name after {FIELD_SEPARATOR!r}")
        return cls(name, field)

    def check(self, store: ReferenceStore) -> Reference:
        """``self`` after the store's own name rules (``InvalidArgumentError`` before any I/O)."""
        try:
            store.names.check(self.name)
        except SecretError as exc:
            exc.backend = exc.backend or store.backend
            raise
        return self

    def __str__(self) -> str:
        return self.name if self.field is None else f"{self.name}{FIELD_SEPARATOR}{self.field}"


def parse(reference: str | Reference) -> Reference:
    """``Reference.parse``: ``NAME`` or ``NAME#FIELD``, checked before any I/O."""
    return Reference.parse(reference)


def json_text(secret: Secret) -> str:
    """The secret's ``.text`` as JSON: the JSON object it holds when it is one (a map of fields,
    or text holding a JSON object), canonical (sorted keys, no spaces, non-ASCII and JSON types
    kept); else the text as a JSON string. Derived from ``.text`` alone, so it is the same on
    every backend. ``ViewError`` (an ``InvalidArgumentError`` naming the secret) for octets
    that are not text."""
    text = secret.text
    if parse_fields(text) is not None:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(text, ensure_ascii=False)


def text_of(secret: Secret, reference: Reference, *, backend: str | None = None) -> str:
    """The text ``reference`` names in ``secret`` (the module docstring states the rule); an
    error names the secret and ``backend`` (the store it came from)."""
    try:
        return _text_of(secret, reference)
    except SecretError as exc:
        exc.name = exc.name or secret.name
        exc.backend = exc.backend or backend
        raise


def _text_of(secret: Secret, reference: Reference) -> str:
    if reference.field is None:
        try:
            return secret.text
        except ViewError:
            pass  # raised below, outside the handler
        raise InvalidArgumentError(
            "the secret holds octets (or fields) that are not UTF-8 text, and a reference resolves to text",
            name=secret.name,
        )
    field = reference.field
    if not secret.value.has_fields():
        raise InvalidArgumentError(
            f"the secret holds {secret.kind.value} without fields, so it has no field {field!r}",
            name=secret.name,
        )
    raw = secret.value.raw
    fields = secret.fields
    if field in fields:
        return fields[field]
    item = raw.get(field) if isinstance(raw, Mapping) else None
    if isinstance(item, bytes) and field_text(item) is None:
        raise InvalidArgumentError(f"field {field!r} holds octets that are not text", name=secret.name)
    raise NotFoundError(f"the secret has no field {field!r}", name=secret.name)


def resolve(store: ReferenceStore, reference: str | Reference, *, refresh: bool = False) -> str:
    """Resolve one reference to text through ``store`` (its cache, unless ``refresh``)."""
    ref = Reference.parse(reference).check(store)
    return _text(store, store.get(ref.name, refresh=refresh), ref)


def resolve_many(
    store: ReferenceStore, references: Iterable[str | Reference], *, refresh: bool = False
) -> dict[Reference, str | SecretError]:
    """Resolve several references with one ``get_many`` (one batch call where the backend
    has one). Every reference is parsed and name-checked before any I/O (the first bad one
    raises ``InvalidArgumentError``); afterwards each gets its text or its own error.
    ``refresh=True`` drops the names from the store's cache first."""
    refs = list(dict.fromkeys(Reference.parse(r).check(store) for r in references))
    names = list(dict.fromkeys(ref.name for ref in refs))
    if refresh:
        for name in names:
            store.invalidate(name)
    found = store.get_many(names) if names else BatchResult({}, {})
    out: dict[Reference, str | SecretError] = {}
    for ref in refs:
        try:
            out[ref] = _text(store, found[ref.name], ref)
        except SecretError as exc:
            out[ref] = exc
    return out


def _text(store: ReferenceStore, secret: Secret, ref: Reference) -> str:
    return text_of(secret, ref, backend=store.backend)


def refreshing(
    store: ReferenceStore,
    reference: str | Reference,
    fn: Callable[[str], T],
    *,
    on: type[BaseException] | tuple[type[BaseException], ...],
) -> T:
    """Call ``fn(value)``; if it raises one of ``on`` (the password was rotated under you),
    re-read the secret bypassing the cache and call ``fn`` once more with the new value.

    If the re-read value is the same as the one rejected, there is nothing new to try: the
    original exception is raised. An exception from the second call propagates as is.
    """
    ref = Reference.parse(reference).check(store)
    if not isinstance(on, tuple):
        on = (on,)
    if not on or not all(isinstance(t, type) and issubclass(t, BaseException) for t in on):
        raise InvalidArgumentError("on= is an exception class or a non-empty tuple of them", name=ref.name)
    value = resolve(store, ref)
    try:
        return fn(value)
    except on as exc:
        fresh = resolve(store, ref, refresh=True)
        if fresh == value:
            logger.debug("%s was rejected (%s); re-read: unchanged, not retried", ref, type(exc).__name__)
            raise
        logger.debug("%s was rejected (%s); re-read a new value, retrying once", ref, type(exc).__name__)
    return fn(fresh)
