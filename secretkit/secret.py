"""Secret values and metadata. Nothing here ever shows a value in ``repr``, ``str`` or a pickle.

A ``Value`` keeps exactly what the backend holds, in the shape the backend holds it (one
text, one octet string, or a map of fields), and derives every other view on demand:

* ``.text`` — the stored text exactly; octets decoded as UTF-8; a map of fields as its
  canonical JSON (sorted keys, no spaces: the text AWS and GCP hold for the same put);
* ``.bytes`` — the stored octets; the UTF-8 of the text view otherwise;
* ``.fields`` — a map's text fields; text (or UTF-8 octets) that is a JSON object, with any
  non-string JSON value given as its JSON text (as Vault's own CLI shows it);
* ``.field_bytes(key)`` — the octets of one field, also one that is not text.

Vault and Kubernetes keep text as a map of one field (``value``), which their drivers hand over
as a ``TextForm``: it reads as the text it holds, so ``.text`` is the same on every backend.
The field helpers (``TextForm``, ``fields_to_json``, ``parse_fields``) live in the leaf module
``secretkit.fields``; they stay importable from here.

So whatever wrote a secret (secretkit, the backend's CLI, Terraform, another SDK), every view
that makes sense works, and what you put comes back exactly through the same view.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from types import MappingProxyType
from typing import SupportsIndex, Union

from secretkit.errors import InvalidArgumentError, NotFoundError, SecretError
from secretkit.fields import MASK, field_text, json_text, sized_field

# Re-exported: these names were importable from here before they moved to the leaf
# ``secretkit.fields``, and drivers and docs outside this package still import them from here.
from secretkit.fields import FieldValue as FieldValue
from secretkit.fields import TextForm as TextForm
from secretkit.fields import fields_to_json as fields_to_json
from secretkit.fields import parse_fields as parse_fields
from secretkit.fields import text_form as text_form

#: What ``put`` accepts: text, arbitrary octets, or a mapping of field name to text (a field
#: may hold octets where the backend keeps octets per field, as Kubernetes does).
SecretInput = Union[str, bytes, bytearray, Mapping[str, Union[str, bytes]]]


class Kind(str, Enum):
    """The shape a backend holds a value in: one text, one octet string, or a map of fields."""

    TEXT = "text"
    BYTES = "bytes"
    FIELDS = "fields"


class Stage:
    """Portable stage labels (AWS: AWSCURRENT/AWSPREVIOUS/AWSPENDING)."""

    CURRENT = "current"
    PREVIOUS = "previous"
    PENDING = "pending"


class ViewError(InvalidArgumentError):
    """The secret has no such view (e.g. ``.fields`` of text that is not a JSON object)."""


def same_value(a: Value, b: Value) -> bool:
    """True if ``a`` and ``b`` are one stored value: equal, or one is the ``TextForm`` in which
    the backend keeps the other (text or octets written, ``{"value": ...}`` read back)."""
    if a == b:
        return True
    for form, other in ((a.raw, b.raw), (b.raw, a.raw)):
        if isinstance(form, TextForm) and isinstance(other, (str, builtins.bytes)):
            return _octets(form.item) == _octets(other)
    return False


def _octets(data: str | builtins.bytes) -> builtins.bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


class Value:
    """A secret value as the backend holds it; what drivers read and write.

    Deliberately not a dataclass: no generated ``repr`` or ``asdict`` can expose the data.
    """

    __slots__ = ("_data", "kind")

    def __init__(self, kind: Kind, data: str | builtins.bytes | Mapping[str, FieldValue]) -> None:
        self.kind = kind
        self._data = data

    @classmethod
    def of(cls, value: SecretInput) -> Value:
        """Wrap what a user passed to ``put``; reject anything else with a clear error (never the value)."""
        if isinstance(value, str):
            _check_text(value, "the value")
            return cls(Kind.TEXT, value)
        if isinstance(value, (builtins.bytes, bytearray, memoryview)):
            return cls(Kind.BYTES, builtins.bytes(value))
        if isinstance(value, Mapping):
            fields: dict[str, str | builtins.bytes] = {}
            for key, item in value.items():
                if not isinstance(key, str) or not isinstance(item, (str, builtins.bytes, bytearray)):
                    raise InvalidArgumentError(
                        "field names must be str and field values str or bytes "
                        f"(got a {type(key).__name__} key with a {type(item).__name__} value)"
                    )
                _check_text(key, "a field name")
                if isinstance(item, str):
                    _check_text(item, f"field {key!r}")
                fields[key] = item if isinstance(item, str) else builtins.bytes(item)
            return cls(Kind.FIELDS, MappingProxyType(fields))
        raise InvalidArgumentError(
            f"a secret value must be str, bytes or a mapping of str to str, not {type(value).__name__}"
        )

    # -- what is stored --------------------------------------------------------------

    @property
    def raw(self) -> str | builtins.bytes | Mapping[str, FieldValue]:
        """The value exactly as held: a str, bytes, or a read-only map (drivers encode this)."""
        return self._data

    @property
    def map(self) -> Mapping[str, FieldValue]:
        """The stored map of a ``FIELDS`` value."""
        if not isinstance(self._data, Mapping):
            raise ViewError(f"the value holds {self.kind.value}, not a map of fields")
        return self._data

    # -- views -----------------------------------------------------------------------

    @property
    def text(self) -> str:
        data = self._data
        if isinstance(data, str):
            return data
        if isinstance(data, builtins.bytes):
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                pass  # raised below, outside the handler: the decode error holds the octets
            raise ViewError("the secret holds octets that are not UTF-8 text; read .bytes instead")
        if isinstance(data, TextForm):
            text = field_text(data.item)
            if text is None:
                raise ViewError("the secret holds octets that are not UTF-8 text; read .bytes instead")
            return text
        binary = [k for k, v in data.items() if field_text(v) is None]
        if binary:
            raise ViewError(f"fields {binary} hold octets that are not text; read them with field_bytes()")
        return fields_to_json(data)

    @property
    def bytes(self) -> builtins.bytes:
        data = self._data
        if isinstance(data, builtins.bytes):
            return data
        if isinstance(data, str):
            return data.encode("utf-8")
        if isinstance(data, TextForm):
            item = data.item
            return item if isinstance(item, builtins.bytes) else item.encode("utf-8")
        return self.text.encode("utf-8")

    @property
    def fields(self) -> Mapping[str, str]:
        data = self._data
        if isinstance(data, TextForm):
            # text that is a JSON object has its members as fields, as it has on every backend;
            # any other text keeps the one field it is stored in (Vault Agent's `.Data.data.value`)
            text = field_text(data.item)
            parsed = parse_fields(text) if text is not None else None
            if parsed is not None:
                return parsed
        if isinstance(data, Mapping):
            out = {}
            for key, item in data.items():
                text = field_text(item)
                if text is not None:  # octet fields: field_bytes()
                    out[key] = text
            return out
        try:
            text = self.text
        except ViewError:
            text = None
        parsed = parse_fields(text) if text is not None else None
        if parsed is None:
            raise ViewError(f"the secret holds {self.kind.value} that is not a JSON object, so it has no fields")
        return parsed

    def field_bytes(self, key: str) -> builtins.bytes:
        data = self._data
        if isinstance(data, Mapping) and not (isinstance(data, TextForm) and key not in data):
            if key not in data:
                raise NotFoundError(f"the secret has no field {key!r}")
            item = data[key]
            if isinstance(item, builtins.bytes):
                return item
            return (item if isinstance(item, str) else json_text(item)).encode("utf-8")
        fields = self.fields
        if key not in fields:
            raise NotFoundError(f"the secret has no field {key!r}")
        return fields[key].encode("utf-8")

    def has_fields(self) -> bool:
        """True if ``.fields`` works: a map, or text that is a JSON object."""
        try:
            self.fields
        except ViewError:
            return False
        return True

    @property
    def size(self) -> int:
        """Size in octets: of the text (UTF-8) or bytes, or of a map's canonical JSON exactly as
        ``fields_to_json`` writes it, escapes included (``"\\u0001"`` is six octets): the
        ``SecretString`` AWS stores and the payload GCP stores. A field of octets that are not
        UTF-8 (no JSON holds them) counts as its base64 text."""
        data = self._data
        if isinstance(data, str):
            return len(data.encode("utf-8"))
        if isinstance(data, builtins.bytes):
            return len(data)
        # Measured on the encoding itself: counting by hand missed escapes and the commas.
        sized = {key: sized_field(item) for key, item in data.items()}
        return len(fields_to_json(sized).encode("utf-8"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Value):
            return NotImplemented
        if self.kind is not other.kind:
            return False
        if isinstance(self._data, Mapping) and isinstance(other._data, Mapping):
            return dict(self._data) == dict(other._data)
        return self._data == other._data

    def __hash__(self) -> int:
        data = self._data
        return hash((self.kind, tuple(sorted(data)) if isinstance(data, Mapping) else data))

    def __repr__(self) -> str:
        return f"Value(kind={self.kind.value}, data={MASK})"

    __str__ = __repr__

    # Every serialisation hook refuses (pickle, copyreg, shelve, multiprocessing and some crash
    # reporters call one of them), and a copy is this object itself: it cannot change, so a
    # copy would only be a second place holding the data.
    def __getstate__(self) -> object:
        raise TypeError(_NOT_PICKLABLE.format(what="secret values"))

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError(_NOT_PICKLABLE.format(what="secret values"))

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[object, ...]:
        raise TypeError(_NOT_PICKLABLE.format(what="secret values"))

    def __copy__(self) -> Value:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Value:
        return self


_NOT_PICKLABLE = "{what} are not picklable; store the name and re-read it"


def _check_text(text: str, what: str) -> None:
    """Text every backend can encode: no lone surrogates (they have no UTF-8 form)."""
    try:
        text.encode("utf-8")
        return
    except UnicodeEncodeError:
        pass  # raised below, outside the handler: the encode error holds the text
    raise InvalidArgumentError(f"{what} is not valid Unicode text (it holds a lone surrogate)")


@dataclass(frozen=True)
class VersionInfo:
    """One version of a secret, without its value.

    ``state`` is ``"enabled"``, ``"disabled"``, ``"deleted"`` (soft, recoverable) or
    ``"destroyed"``; ``stages`` holds portable labels such as ``"current"`` (and, on AWS,
    the native labels too).
    """

    name: str
    version: str
    created_at: datetime | None = None
    stages: frozenset[str] = frozenset()
    state: str = "enabled"

    @property
    def is_current(self) -> bool:
        return Stage.CURRENT in self.stages


class Secret:
    """A secret value with its metadata. Read the value through ``text``, ``bytes``,
    ``fields``, ``secret["field"]`` or ``field_bytes("field")``.

    Slotted and immutable: a cache holds many of these, and no per-instance ``__dict__`` can
    pick up data.
    """

    # The value's shape and data are kept here directly rather than in a Value object: a cache
    # holds many secrets, and one object less per secret is a tenth of a cached 1 KB secret.
    # ``_refresh_at`` belongs to the cache of the store that read this secret (secretkit/cache.py):
    # a slot here saves wrapping each cached secret in one more object.
    __slots__ = ("_created", "_data", "_refresh_at", "name", "stages", "version")

    name: str
    version: str
    stages: frozenset[str]
    _data: str | builtins.bytes | Mapping[str, FieldValue]
    _created: float | None
    _refresh_at: float

    def __init__(
        self, name: str, version: str, value: Value, created_at: datetime | None = None,
        stages: frozenset[str] = frozenset(),
    ) -> None:
        setter = object.__setattr__
        setter(self, "name", name)
        setter(self, "version", version)
        setter(self, "_data", value.raw)
        # a timestamp is a third of a datetime's size, and a cache holds many secrets
        setter(self, "_created", None if created_at is None else (
            created_at if created_at.tzinfo is not None else created_at.replace(tzinfo=timezone.utc)).timestamp())
        setter(self, "stages", stages)

    def __setattr__(self, attr: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    @property
    def kind(self) -> Kind:
        """The shape the backend holds the value in (see ``Kind``)."""
        data = self._data
        return Kind.TEXT if isinstance(data, str) else Kind.BYTES if isinstance(data, builtins.bytes) else Kind.FIELDS

    @property
    def created_at(self) -> datetime | None:
        """When this version was created (UTC), where the backend says."""
        return None if self._created is None else datetime.fromtimestamp(self._created, timezone.utc)

    @property
    def value(self) -> Value:
        """The value as the backend holds it (``.raw``), with every view."""
        return Value(self.kind, self._data)

    @property
    def text(self) -> str:
        """The value as text (see the module docstring for how each shape reads)."""
        try:
            return self.value.text
        except ViewError as exc:
            raise self._named(exc)

    @property
    def bytes(self) -> builtins.bytes:
        """The value as octets."""
        try:
            return self.value.bytes
        except ViewError as exc:
            raise self._named(exc)

    @property
    def fields(self) -> Mapping[str, str]:
        """The text fields: a map's fields, or those of text that is a JSON object."""
        try:
            return self.value.fields
        except ViewError as exc:
            raise self._named(exc)

    def field_bytes(self, key: str) -> builtins.bytes:
        """The octets of field ``key`` (for fields that are not text, e.g. a keystore)."""
        try:
            return self.value.field_bytes(key)
        except SecretError as exc:
            raise self._named(exc)

    def __getitem__(self, field_name: str) -> str:
        """One field: ``secret["password"]``; ``KeyError`` if there is no such field."""
        fields = self.fields
        try:
            return fields[field_name]
        except KeyError:
            hint = "; it holds octets: use field_bytes()" if self._has_octet_field(field_name) else ""
            raise KeyError(f"secret {self.name!r} has no text field {field_name!r}{hint}") from None

    def get(self, field_name: str, default: str | None = None) -> str | None:
        """One field, or ``default`` when the secret has no such text field."""
        try:
            return self[field_name]
        except KeyError:
            return default

    def _has_octet_field(self, field_name: str) -> bool:
        return isinstance(self._data, Mapping) and field_name in self._data

    def _named(self, exc: SecretError) -> SecretError:
        exc.name = exc.name or self.name
        return exc

    @property
    def info(self) -> VersionInfo:
        return VersionInfo(self.name, self.version, self.created_at, self.stages)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return (self.name, self.version, self.value, self.created_at, self.stages) == (
            other.name, other.version, other.value, other.created_at, other.stages
        )

    def __hash__(self) -> int:
        return hash((self.name, self.version))

    def __repr__(self) -> str:
        return f"Secret(name={self.name!r}, version={self.version!r}, kind={self.kind.value}, value={MASK})"

    __str__ = __repr__

    # Refuse silent pickling (into caches, queues, crash dumps): it would write the value out.
    # Every hook refuses, as Value's do; copies are the object itself (it is immutable).
    def __getstate__(self) -> object:
        raise TypeError(_NOT_PICKLABLE.format(what="Secret objects"))

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError(_NOT_PICKLABLE.format(what="Secret objects"))

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[object, ...]:
        raise TypeError(_NOT_PICKLABLE.format(what="Secret objects"))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Secret:
        return self


class BatchResult(Mapping[str, Secret]):
    """What ``get_many`` returns: the secrets found, and a per-name error for the others.

    Indexing a name that failed raises that name's error.
    """

    def __init__(self, secrets: dict[str, Secret], errors: dict[str, SecretError]) -> None:
        self.secrets = secrets
        self.errors = errors

    def __getitem__(self, name: str) -> Secret:
        if name in self.errors:
            raise self.errors[name]
        return self.secrets[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.secrets)

    def __len__(self) -> int:
        return len(self.secrets)

    def __repr__(self) -> str:
        return f"BatchResult(found={sorted(self.secrets)}, errors={sorted(self.errors)})"
