"""Names and values on Vault KV, as the ``vault``/``bao`` CLI and Agent templates see them. No I/O.

Names are KV paths, used unchanged. The server (OpenBao 2.7, probed with hvac and the ``bao``
CLI) holds any path of printable characters; what it refuses or silently rewrites is refused
here, before any request (``NAME_RULE``).

Values are the KV map of one version:

* fields → the map as is (``bao kv put app/db user=x password=y`` reads back as those fields);
* text → ``{VALUE_KEY: text}`` (``value`` by default), so ``kv get -field=value`` and the Agent
  template ``{{ .Data.data.value }}`` give the text;
* bytes → ``{VALUE_KEY: "<standard base64>", "encoding": "base64"}``.

Reading gives the map as Vault returns it, except: a map of exactly those two keys with that
marker and valid base64 reads as bytes; a map of only the value key is a ``TextForm``, so it
reads as the text it holds (``.text``, references, ``secretkit get``), as the same put does
on every backend, while ``.fields`` and ``NAME#value`` still see its one field.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from secretkit.drivers.base import InvalidArgumentError, Kind, NameRules, Value, text_form, utf8_field_problem

BACKEND = "vault"
DEFAULT_VALUE_KEY = "value"
#: The one key that marks a bytes value (with the value ``BASE64``) beside the value key.
ENCODING_KEY = "encoding"
BASE64 = "base64"

# -- names -----------------------------------------------------------------------------------

NAME_RULE = (
    "a Vault KV path is printable characters only (no control characters, no Unicode spaces other "
    "than ' ', no invisible format or unassigned characters: the server answers 400) with no empty "
    "segment (no leading, trailing or doubled '/') and no '.' or '..' segment (both would be "
    "rewritten to another path on the way)"
)


def is_native(name: str) -> bool:
    """True if Vault holds ``name`` as a KV path exactly as written."""
    return name.isprintable() and all(segment not in ("", ".", "..") for segment in name.split("/"))


#: Every name Vault holds is used unchanged; no portable name needs a mapping (each is native).
NAMES = NameRules(NAME_RULE, is_native)

# -- values ----------------------------------------------------------------------------------


def encode_value(value: Value, value_key: str = DEFAULT_VALUE_KEY) -> dict[str, Any]:
    """The KV map Vault stores for ``value`` (see the module docstring)."""
    raw = value.raw
    if isinstance(raw, str):
        return {value_key: raw}
    if isinstance(raw, bytes):
        return {value_key: base64.b64encode(raw).decode("ascii"), ENCODING_KEY: BASE64}
    return {key: _field(key, item) for key, item in raw.items()}


def _field(key: str, item: Any) -> Any:
    if isinstance(item, bytes):  # a field given as octets: Vault keeps JSON text per field
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            pass  # raised outside the handler, which holds the octets
        raise InvalidArgumentError(_NOT_TEXT.format(key=key))
    return item  # str, or a JSON value another writer stored (kept on rotation)


_NOT_TEXT = ("field {key!r} holds octets that are not UTF-8: a Vault KV field holds JSON text "
             "(put the whole value as bytes, or base64-encode the field yourself)")
_FIELDS_RULE = "a Vault KV field holds JSON text (put the whole value as bytes, or base64-encode the field yourself)"


def decode_value(data: Mapping[str, Any] | None, value_key: str = DEFAULT_VALUE_KEY) -> Value:
    """The value a KV map holds: the documented bytes form as bytes, any other map as fields."""
    if data is None:
        return Value(Kind.FIELDS, {})
    octets = _bytes_form(data, value_key)
    if octets is not None:
        return Value(Kind.BYTES, octets)
    return Value(Kind.FIELDS, text_form(data, value_key))


def _bytes_form(data: Mapping[str, Any], value_key: str) -> bytes | None:
    if len(data) != 2 or data.get(ENCODING_KEY) != BASE64:
        return None
    text = data.get(value_key)
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None  # not ours after all: it reads as the fields it is


def value_problem(value: Value, value_key: str, *, empty_map_ok: bool) -> str | None:
    """Why ``value`` cannot be stored so that it reads back through the view it was put with;
    None if it can. Never names a value, only field names."""
    raw = value.raw
    if not isinstance(raw, Mapping):
        return None
    if not raw and not empty_map_ok:
        return "a KV v1 mount refuses a secret without fields ('missing data fields'); put at least one field"
    not_text = utf8_field_problem(value, _FIELDS_RULE)
    if not_text is not None:
        return not_text
    plain = {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in raw.items()}
    if _bytes_form(plain, value_key) is not None:
        return (f"fields {{{value_key!r}: <base64>, {ENCODING_KEY!r}: {BASE64!r}}} are how this store keeps "
                "bytes, so they would read back as bytes; put the bytes themselves")
    return None


def check_value(value: Value, value_key: str = DEFAULT_VALUE_KEY, *, empty_map_ok: bool = True) -> None:
    """``InvalidArgumentError`` (before any I/O) with ``value_problem``'s reason, if any."""
    problem = value_problem(value, value_key, empty_map_ok=empty_map_ok)
    if problem is not None:
        raise InvalidArgumentError(problem)


# -- version metadata ------------------------------------------------------------------------

_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def parse_time(text: str | None) -> datetime | None:
    """Vault's RFC 3339 timestamps carry nanoseconds, which ``fromisoformat`` rejects before 3.11."""
    match = _TIMESTAMP.fullmatch(text or "")
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc)
    if fraction:
        stamp += timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        stamp -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return stamp


def version_state(meta: Mapping[str, Any], now: datetime | None = None) -> str:
    """``enabled``, ``deleted`` (soft, recoverable) or ``destroyed`` for one KV v2 version's metadata."""
    if meta.get("destroyed"):
        return "destroyed"
    deleted_at = parse_time(meta.get("deletion_time"))
    if deleted_at is not None and deleted_at <= (now or datetime.now(timezone.utc)):
        return "deleted"
    return "enabled"


_VERSION_ID = re.compile(r"[1-9][0-9]*")


def version_number(version: str) -> int | None:
    """A KV v2 version id as its number, or None if it is not one.

    Only the spelling Vault returns (and the store hands out) counts: ``int()`` would also read
    ``"01"``, fullwidth ``"２"`` and Arabic-Indic ``"٣"``, so ``if_version="01"`` would match
    version 1 on the server although no store ever returned that id.
    """
    return int(version) if _VERSION_ID.fullmatch(version) else None


def digest(data: Mapping[str, Any]) -> str:
    """KV v1's version id: a digest of the stored map, so it changes exactly when the value does."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:20]
