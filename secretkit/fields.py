"""Leaf: a map of fields as text, and text as a map of fields (no threads, no I/O).

The helpers ``Value`` and the drivers' codecs share to move between the shapes a backend holds
(``secretkit.secret`` describes the views built on them):

* ``fields_to_json`` — the canonical JSON of a map of fields (sorted keys, no spaces): the text
  AWS and GCP hold for the same put, and what ``Value.size`` measures;
* ``parse_fields`` — the fields of text that is a JSON object, any non-string JSON value given
  as its JSON text (as Vault's own CLI shows it);
* ``TextForm``/``text_form`` — Vault and Kubernetes have no text type: they keep text as a map
  of one field (``value``). Their drivers hand such a map over as a ``TextForm``, which reads as
  the text it holds, so ``.text`` (and every reader built on it: references, settings,
  ``secretkit run``/``get``) is the same on every backend. Only a ``TextForm`` reads as its
  field; any other map of one field (``{"password": "x"}``) is a map like the rest, and reads
  as its JSON everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

#: What ``repr`` shows in place of a value.
MASK = "***"

#: A field as a backend holds it: text, octets, or (in a JSON map written by another tool) any
#: JSON value such as a number.
FieldValue = Any


def json_text(item: FieldValue) -> str:
    """``item`` as compact JSON text, non-ASCII kept (how a non-string field reads as text)."""
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


def field_text(item: FieldValue) -> str | None:
    """A field's text view, or None for octets that are not UTF-8."""
    if isinstance(item, str):
        return item
    if isinstance(item, bytes):
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return json_text(item)


def sized_field(item: FieldValue) -> FieldValue:
    """A field as ``Value.size`` measures it: octets that are not UTF-8 as base64-length text."""
    if isinstance(item, bytes) and field_text(item) is None:
        return "A" * ((len(item) + 2) // 3 * 4)
    return item


def fields_to_json(fields: Mapping[str, FieldValue]) -> str:
    """Canonical JSON for a field mapping (sorted keys, no spaces, non-ASCII kept).

    Octet fields appear as their UTF-8 text; non-string JSON values keep their JSON type.
    """
    plain = {k: (v.decode("utf-8") if isinstance(v, bytes) else v) for k, v in fields.items()}
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_fields(text: str) -> dict[str, str] | None:
    """The fields of text that is a JSON object (non-string values as JSON text), else None."""
    if not text.lstrip(" \t\r\n").startswith("{"):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    return {str(k): v if isinstance(v, str) else json_text(v) for k, v in parsed.items()}


class TextForm(Mapping[str, FieldValue]):
    """The map of one field in which a backend without a text type keeps text: Vault's
    ``{"value": text}``, a Kubernetes Secret whose only data key is ``value``.

    A map of that one field (``.fields``, ``secret["value"]`` and ``NAME#value`` keep working on
    secrets other tools wrote), whose text view is the field's text: exactly what the same put
    reads as on a backend that holds text as text. Drivers make one with ``text_form``.
    """

    __slots__ = ("item", "key")

    def __init__(self, key: str, item: str | bytes) -> None:
        self.key = key
        self.item = item

    def __getitem__(self, key: str) -> FieldValue:
        if key != self.key:
            raise KeyError(key)
        return self.item

    def __iter__(self) -> Iterator[str]:
        return iter((self.key,))

    def __len__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return f"TextForm(key={self.key!r}, item={MASK})"


def text_form(data: Mapping[str, FieldValue], key: str) -> Mapping[str, FieldValue]:
    """``data`` as a ``TextForm`` when it is how the backend keeps text (exactly one field,
    ``key``, holding text or octets), else ``data`` unchanged: for drivers' decoders."""
    if len(data) == 1 and key in data:
        item = data[key]
        if isinstance(item, (str, bytes)):
            return TextForm(key, item)
    return data
