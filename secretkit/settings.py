"""A pydantic-settings source that fills settings fields from secrets (``pip install 'secretkit[settings]'``,
pydantic-settings >= 2.4).

    from typing import Annotated
    from pydantic import SecretStr
    from pydantic_settings import BaseSettings
    from secretkit.settings import SecretRef, SecretsSource

    class Settings(BaseSettings):
        db_password: Annotated[SecretStr, SecretRef("payments/db#password")]

        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                       file_secret_settings):
            return init_settings, env_settings, dotenv_settings, SecretsSource(settings_cls, url="memory://")

Which secret fills a field: the reference in its ``SecretRef`` (``NAME`` or ``NAME#FIELD``, see
``secretkit.references``); else, only when the source has a ``prefix``, the secret named
``prefix + field name`` (``prefix="payments/"``: field ``api_key`` → secret ``payments/api_key``).
Other fields are left to the other sources.

Every secret the settings need is read with one ``get_many`` (one AWS BatchGetSecretValue call
for up to 20 names), through the store's cache. Every field gets what the reference resolves to
(``NAME``: the secret's ``.text``, the same on every backend; ``NAME#FIELD``: that field): a
field typed as a nested model, a dict or a list parses it as JSON (a map of fields is its JSON
object); ``bytes``/``SecretBytes`` fields get the octets (``.bytes``). Values reach pydantic as
strings whose ``repr`` is masked, so neither ``repr(settings)`` (with ``SecretStr``/
``SecretBytes`` fields) nor a ``ValidationError`` shows them.

A missing secret (or field of a secret) of a required field that no higher-priority source
set is a ``ValidationError`` naming the field and the reference; a field with a default keeps
it. Any other store error (outage, permission, a ``#FIELD`` on a secret without fields) is
raised as the ``SecretError`` it is, never disguised as missing configuration.

After a rotation, ``Settings()`` re-reads through the store's cache (new values once cached
entries expire); ``fresh_settings(Settings)`` re-reads every secret from the backend now.

One store for one app: ``shared_store(url)`` is the store the source opened for ``url``, so the
rest of the application (``AsyncSecretStore(shared_store())`` in an async app) reads through
the cache ``Settings()`` filled, with the same SDK client.
"""

from __future__ import annotations

import builtins
import contextvars
import dataclasses
import json
import threading
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, Union

from pydantic import BaseModel, Json, SecretBytes, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from secretkit import forking
from secretkit.errors import ConfigError, InvalidArgumentError, NotFoundError
from secretkit.references import Reference, text_of
from secretkit.secret import Secret
from secretkit.store import SecretStore

__all__ = ["SecretRef", "SecretsSource", "fresh_settings", "secret_reference", "shared_store"]

S = TypeVar("S", bound=BaseSettings)

_JSON: type = Json  # pydantic's Json[T] is Annotated[T, Json()]: such a field wants the JSON text
_REFRESH: contextvars.ContextVar[bool] = contextvars.ContextVar("secretkit_settings_refresh", default=False)


class SecretRef:
    """``Annotated[SecretStr, SecretRef("payments/db#password")]``: the secret that fills a field.

    The reference is parsed at once, so a malformed one fails when the class is defined.
    """

    __slots__ = ("reference",)

    def __init__(self, reference: str) -> None:
        self.reference = Reference.parse(reference)

    def __repr__(self) -> str:
        return f"SecretRef({str(self.reference)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretRef) and other.reference == self.reference

    def __hash__(self) -> int:
        return hash(self.reference)


class SecretText(str):
    """A value read from a secret on its way to pydantic: a ``str`` whose ``repr`` is masked, so a
    ``ValidationError`` (``input_value='***'``) or a debug dump of a source's data never shows
    it. pydantic stores plain ``str`` in the model."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


class SecretOctets(builtins.bytes):
    """``SecretText`` for ``bytes`` and ``SecretBytes`` fields."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "b'***'"


@dataclass(frozen=True)
class _Slot:
    """One settings field filled from a secret: the key it goes under and what fills it."""

    field_name: str
    key: str
    field: FieldInfo
    reference: Reference


def secret_reference(settings_cls: type[BaseSettings], field_name: str, *, prefix: str | None = None) -> str | None:
    """The reference that fills ``field_name`` (its ``SecretRef``, else ``prefix + field name``
    when a prefix is given), e.g. for ``store.refreshing``; None if no secret fills it."""
    field = settings_cls.model_fields[field_name]
    ref = _reference_for(field_name, field, prefix)
    return None if ref is None else str(ref)


def _reference_for(field_name: str, field: FieldInfo, prefix: str | None) -> Reference | None:
    for item in field.metadata:
        if isinstance(item, SecretRef):
            return item.reference
    if prefix is None:
        return None
    return Reference.parse(prefix + field_name)


class SecretsSource(PydanticBaseSettingsSource):
    """A pydantic-settings source reading fields from a secretkit store.

    ``store=`` an open ``SecretStore``, or ``url=`` a store URL (one store per URL is opened
    and shared in the process, ``shared_store(url)``, so its cache serves every ``Settings()``
    and the rest of the app); neither means ``$SECRETKIT_URL``, else the encrypted file store
    in the user's data directory.
    ``prefix``: fields without a ``SecretRef`` are filled from the secret ``prefix + field
    name``; without a prefix they are left to other sources.
    """

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        *,
        store: SecretStore | None = None,
        url: str | None = None,
        prefix: str | None = None,
    ) -> None:
        super().__init__(settings_cls)
        if store is not None and url is not None:
            raise ConfigError("pass store= or url=, not both")
        if prefix is not None and not isinstance(prefix, str):
            raise InvalidArgumentError(f"prefix is a str, not {type(prefix).__name__}")
        self.store = store if store is not None else shared_store(url)
        self.prefix = prefix
        self.slots: list[_Slot] = []
        for field_name, field in settings_cls.model_fields.items():
            ref = _reference_for(field_name, field, prefix)
            if ref is not None:  # every name checked against the store's rules now, before any I/O
                self.slots.append(_Slot(field_name, _key(field_name, field), field, ref.check(self.store)))

    def __repr__(self) -> str:
        return f"SecretsSource({self.settings_cls.__name__}, store={self.store.url!r}, prefix={self.prefix!r})"

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """pydantic-settings' per-field hook; unused, as ``__call__`` reads every field in one batch."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        names = list(dict.fromkeys(slot.reference.name for slot in self.slots))
        if not names:
            return {}
        if _REFRESH.get():
            for name in names:
                self.store.invalidate(name)
        found = self.store.get_many(names)
        # What higher-priority sources set (pydantic-settings >= 2.4); without it a missing secret
        # is left to pydantic's own "Field required", as it cannot tell whether another source set it.
        above: Mapping[str, Any] | None = getattr(self, "current_state", None)
        data: dict[str, Any] = {}
        problems: list[InitErrorDetails] = []
        for slot in self.slots:
            try:
                data[slot.key] = self._value(found[slot.reference.name], slot)
            except NotFoundError as exc:
                if above is not None and slot.field.is_required() and slot.key not in above \
                        and slot.field_name not in above:
                    what = "not found" if slot.reference.name in found.errors else f"not found: {exc.message}"
                    problems.append(_problem(slot, "secret_not_found", what, self.store))
            except _NotJSON:
                problems.append(_problem(slot, "secret_not_json", "does not hold the JSON this field needs",
                                         self.store))
        if problems:
            raise ValidationError.from_exception_data(self.settings_cls.__name__, problems)
        return data

    def _value(self, secret: Secret, slot: _Slot) -> Any:
        ref = slot.reference
        annotation = _unwrap(slot.field.annotation)
        backend = self.store.backend
        if annotation in (builtins.bytes, SecretBytes):
            if ref.field is not None:
                text_of(secret, ref, backend=backend)  # the same errors as a text field (no fields, missing field)
                return SecretOctets(secret.field_bytes(ref.field))
            return SecretOctets(secret.bytes)  # of a map of fields, the UTF-8 of its JSON (its .text)
        if _is_complex(annotation) and not any(isinstance(m, _JSON) for m in slot.field.metadata):
            text = text_of(secret, ref, backend=backend)
            try:
                document = json.loads(text)
            except ValueError:
                raise _NotJSON from None  # the decoder's message quotes the text
            return _masked(document)
        return SecretText(text_of(secret, ref, backend=backend))


class _NotJSON(Exception):
    pass


def _problem(slot: _Slot, kind: str, what: str, store: SecretStore) -> InitErrorDetails:
    message = f"secret reference '{{reference}}' {what} (store {{store}})"
    error = PydanticCustomError(kind, message, {"reference": str(slot.reference), "store": store.url})
    return InitErrorDetails(type=error, loc=(slot.key,), input=str(slot.reference))


def _masked(document: Any) -> Any:
    if isinstance(document, str):
        return SecretText(document)
    if isinstance(document, dict):
        return {key: _masked(item) for key, item in document.items()}
    if isinstance(document, list):
        return [_masked(item) for item in document]
    return document


def _key(field_name: str, field: FieldInfo) -> str:
    """Where pydantic expects the field's value: its alias when it has a plain one."""
    alias = field.validation_alias if isinstance(field.validation_alias, str) else field.alias
    return alias or field_name


def _unwrap(annotation: Any) -> Any:
    """``X`` of ``Optional[X]`` / ``X | None`` / ``Annotated[X, ...]``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin is Union or type(annotation).__name__ == "UnionType":
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _is_complex(annotation: Any) -> bool:
    """Fields pydantic fills from a JSON document: models, dataclasses, mappings, sequences, sets."""
    origin = typing.get_origin(annotation) or annotation
    if isinstance(origin, type):
        if issubclass(origin, (str, builtins.bytes)):
            return False
        if issubclass(origin, (BaseModel, dict, list, tuple, set, frozenset, Mapping)):
            return True
        if dataclasses.is_dataclass(origin) or typing.is_typeddict(origin):
            return True
    return False


def fresh_settings(settings_cls: type[S], **values: Any) -> S:
    """``settings_cls(**values)`` with every secret re-read from the backend now, past the
    store's cache (and the cache updated): the way to pick up a rotation at once."""
    token = _REFRESH.set(True)
    try:
        return settings_cls(**values)
    finally:
        _REFRESH.reset(token)


_stores: dict[str, SecretStore] = {}
_stores_lock = threading.Lock()


@forking.reset_in_child
def _new_stores_lock() -> None:
    global _stores_lock
    _stores_lock = threading.Lock()  # held by a thread of the parent opening a store at the fork


def shared_store(url: str | None = None) -> SecretStore:
    """The process's one open store for ``url``: the store ``SecretsSource(settings_cls, url=url)``
    reads through (``url=None``: ``$SECRETKIT_URL``, else the encrypted file store in the user's
    data directory, the rule of ``secretkit.open()``).

    Opened on first use and kept open for the life of the process, so every ``Settings()`` and
    the rest of the application can read through one cache and one SDK client: an async app
    wraps it (``AsyncSecretStore(shared_store())``, which leaves it open when the app stops)
    and its first read of a secret ``Settings()`` just read is a cache hit. Do not close it.
    """
    from secretkit.config import default_url
    from secretkit.registry import open as open_store

    url = url or default_url()
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = open_store(url)
        return store
