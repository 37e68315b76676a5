"""Secret values and metadata. Nothing here ever shows a value in ``repr`` or ``str``."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Union

from secretkit.errors import InvalidArgumentError, SecretError

#: What ``put`` accepts: text, arbitrary octets, or a mapping of field name to text.
SecretInput = Union[str, bytes, bytearray, Mapping[str, str]]

MASK = "***"


class Kind(str, Enum):
    """The shape of a secret value; every backend round-trips all three exactly."""

    TEXT = "text"
    BYTES = "bytes"
    FIELDS = "fields"


class Stage:
    """Portable stage labels (AWS: AWSCURRENT/AWSPREVIOUS/AWSPENDING)."""

    CURRENT = "current"
    PREVIOUS = "previous"
    PENDING = "pending"


class Value:
    """A secret value with its kind; what drivers read and write.

    Deliberately not a dataclass: no generated ``repr`` or ``asdict`` can expose the data.
    """

    __slots__ = ("kind", "_data")

    def __init__(self, kind: Kind, data: str | bytes | Mapping[str, str]) -> None:
        self.kind = kind
        self._data = data

    @classmethod
    def of(cls, value: SecretInput) -> Value:
        """Wrap what a user passed to ``put``; reject anything else with a clear error."""
        if isinstance(value, str):
            return cls(Kind.TEXT, value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return cls(Kind.BYTES, bytes(value))
        if isinstance(value, Mapping):
            fields: dict[str, str] = {}
            for key, item in value.items():
                if not isinstance(key, str) or not isinstance(item, str):
                    raise InvalidArgumentError(
                        "field names and values must be str "
                        f"(got a {type(key).__name__} key with a {type(item).__name__} value)"
                    )
                fields[key] = item
            return cls(Kind.FIELDS, MappingProxyType(fields))
        raise InvalidArgumentError(
            f"a secret value must be str, bytes or a mapping of str to str, not {type(value).__name__}"
        )

    @property
    def text(self) -> str:
        assert isinstance(self._data, str)
        return self._data

    @property
    def bytes(self) -> builtins.bytes:
        assert isinstance(self._data, builtins.bytes)
        return self._data

    @property
    def fields(self) -> Mapping[str, str]:
        assert isinstance(self._data, Mapping)
        return self._data

    def to_bytes(self) -> builtins.bytes:
        """The portable octets: UTF-8 text, the bytes, or compact sorted JSON of the fields."""
        if self.kind is Kind.TEXT:
            return self.text.encode("utf-8")
        if self.kind is Kind.BYTES:
            return self.bytes
        return fields_to_json(self.fields).encode("utf-8")

    @property
    def size(self) -> int:
        """Size in portable octets; what a store's ``max_value_bytes`` limits."""
        return len(self.to_bytes())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Value):
            return NotImplemented
        if self.kind is not other.kind:
            return False
        if self.kind is Kind.FIELDS:
            return dict(self.fields) == dict(other.fields)
        return self._data == other._data

    def __hash__(self) -> int:
        return hash((self.kind, self.to_bytes()))

    def __repr__(self) -> str:
        return f"Value(kind={self.kind.value}, data={MASK})"

    __str__ = __repr__


def fields_to_json(fields: Mapping[str, str]) -> str:
    """Canonical JSON for a field mapping (sorted keys, no spaces, non-ASCII kept)."""
    return json.dumps(dict(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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


@dataclass(frozen=True, repr=False, slots=True)
class Secret:
    """A secret value with its metadata. Read the value through ``text``, ``bytes`` or ``fields``.

    Slotted: a cache holds many of these, and no per-instance ``__dict__`` can pick up data.
    """

    name: str
    version: str
    value: Value = field(compare=True)
    created_at: datetime | None = None
    stages: frozenset[str] = frozenset()

    @property
    def kind(self) -> Kind:
        return self.value.kind

    @property
    def text(self) -> str:
        """The value as text: text as stored, bytes decoded as UTF-8, fields as canonical JSON."""
        if self.value.kind is Kind.TEXT:
            return self.value.text
        if self.value.kind is Kind.FIELDS:
            return fields_to_json(self.value.fields)
        try:
            return self.value.bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError(
                "secret holds bytes that are not UTF-8; read .bytes instead", name=self.name
            ) from None

    @property
    def bytes(self) -> bytes:
        """The value as octets (text is UTF-8 encoded, fields are canonical JSON)."""
        return self.value.to_bytes()

    @property
    def fields(self) -> Mapping[str, str]:
        """The field mapping; raises ``SecretError`` for a text or bytes secret."""
        if self.value.kind is not Kind.FIELDS:
            raise SecretError(f"secret holds {self.value.kind.value}, not fields", name=self.name)
        return dict(self.value.fields)

    def __getitem__(self, field_name: str) -> str:
        """One field: ``secret["password"]``."""
        fields = self.fields
        try:
            return fields[field_name]
        except KeyError:
            raise KeyError(f"secret {self.name!r} has no field {field_name!r}") from None

    @property
    def info(self) -> VersionInfo:
        return VersionInfo(self.name, self.version, self.created_at, self.stages)

    def __repr__(self) -> str:
        return f"Secret(name={self.name!r}, version={self.version!r}, kind={self.kind.value}, value={MASK})"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        # Refuse silent pickling (into caches, queues, crash dumps): it would write the value out.
        raise TypeError("Secret objects are not picklable; store the name and re-read it")


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
