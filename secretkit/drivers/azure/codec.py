"""Names, values and tags on Key Vault: pure functions, no I/O.

Names. A secret name is 1-127 characters of ``[0-9A-Za-z-]``; a name of that shape is used
unchanged. A portable name Key Vault cannot hold (it has ``/``, ``.`` or ``_``) is stored under
a readable name plus a digest of the name as written, the rule GCP and Kubernetes use (the
shared ``hashed``): ``/`` becomes ``--``, ``.`` and ``_`` become ``-``, then ``-`` and the first
8 hex digits of the SHA-256 of the name (``payments/db.password`` →
``payments--db-password-<8 hex>``), the readable part cut to fit 127 characters. The name as
written is recorded in the tag ``secretkit-name``, so listings show it.

Values, as Azure's own tools write them: text is the secret's value; fields are their JSON
object with content type ``application/json``; bytes are their standard base64 with content
type ``application/octet-stream`` and the tag ``file-encoding: base64`` (what ``az keyvault
secret set --encoding base64`` records, and what ``az keyvault secret download`` decodes by).
Reading, a value with either mark is base64-decoded to bytes; anything else is text (a JSON
object then reads as fields through the value's own view).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from secretkit.drivers.base import (
    InvalidArgumentError,
    Kind,
    NameRules,
    Record,
    Value,
    check_utf8_fields,
    fields_to_json,
    hashed,
    listed_name as _listed_name,
    pattern_rule,
)

BACKEND = "azure-kv"

MAX_NAME = 127
#: Key Vault holds a value of at most 25 KB (its UTF-8 text, as sent in the JSON body).
MAX_VALUE_OCTETS = 25 * 1024
#: The largest value of every kind that fits: bytes grow by 4/3 as base64.
MAX_PORTABLE_VALUE = MAX_VALUE_OCTETS // 4 * 3

#: The tag that records the name as written on a secret whose name is a mapping of it.
NAME_TAG = "secretkit-name"
#: A per-secret write counter, so versions created in the same second (Key Vault's ``created``
#: has second resolution) still sort in the order they were written.
SEQUENCE_TAG = "secretkit-seq"
#: Azure CLI's tag for how a file's content was encoded into the value (``--encoding``).
ENCODING_TAG = "file-encoding"
BASE64 = "base64"
BYTES_CONTENT_TYPE = "application/octet-stream"
FIELDS_CONTENT_TYPE = "application/json"
#: The tags and content types secretkit sets by the value's kind; every other tag, and any
#: other content type, belongs to the user and is carried to the next version.
OWN_TAGS = frozenset({NAME_TAG, SEQUENCE_TAG, ENCODING_TAG})
OWN_CONTENT_TYPES = frozenset({BYTES_CONTENT_TYPE, FIELDS_CONTENT_TYPE})

NAME_RULE = (
    f"Key Vault secret names are 1-{MAX_NAME} ASCII letters, digits and '-' (used unchanged); a portable "
    "name with '/', '.' or '_' is stored as '<name with / as -- and . _ as ->-<8 hex digits of its sha256>'"
)

_native = pattern_rule(r"[0-9A-Za-z-]+", MAX_NAME)


# -- names --------------------------------------------------------------------------------


def readable(name: str) -> str:
    """The readable part of a mapped name: ``/`` → ``--``, ``.`` and ``_`` → ``-``."""
    return name.replace("/", "--").replace(".", "-").replace("_", "-")


def mapped_name(name: str) -> str:
    """The Key Vault name of a portable name it cannot hold as written (module docstring)."""
    return hashed(readable(name)[: MAX_NAME - 9], name)


NAMES = NameRules(NAME_RULE, _native, mapped_name)


def listed_name(secret_name: str, tags: Mapping[str, str] | None) -> str:
    """The name ``list`` shows: the recorded name where the secret's name is its mapping, else
    the Key Vault name unchanged."""
    return _listed_name(NAMES, secret_name, (tags or {}).get(NAME_TAG))


# -- versions -----------------------------------------------------------------------------

_VERSION = re.compile(r"[0-9A-Za-z]{1,64}")


def valid_version(version: str) -> bool:
    """True if ``version`` could be a Key Vault version id (32 hex digits today; opaque, so any
    short run of letters and digits is asked for). Anything else names no version, and would
    change the request's path, so it is never sent."""
    return _VERSION.fullmatch(version) is not None


def sequence(tags: Mapping[str, str] | None) -> int:
    """The write counter a version carries (0 where another tool wrote it)."""
    found = (tags or {}).get(SEQUENCE_TAG, "")
    return int(found) if found.isdigit() else 0


# -- values -------------------------------------------------------------------------------


def encode_value(value: Value) -> tuple[str, str | None, dict[str, str]]:
    """``value`` as Key Vault holds it: the value text, the content type secretkit sets (None:
    keep the user's) and the tags of its kind."""
    raw = value.raw
    if isinstance(raw, str):
        return raw, None, {}
    if isinstance(raw, bytes):
        return base64.b64encode(raw).decode("ascii"), BYTES_CONTENT_TYPE, {ENCODING_TAG: BASE64}
    return fields_to_json(raw), FIELDS_CONTENT_TYPE, {}


def is_base64(content_type: str | None, tags: Mapping[str, str] | None) -> bool:
    """True if the value is marked as base64 octets (content type or Azure CLI's tag)."""
    return content_type == BYTES_CONTENT_TYPE or (tags or {}).get(ENCODING_TAG) == BASE64


def decode_value(text: str | None, content_type: str | None, tags: Mapping[str, str] | None) -> Value:
    """The value Key Vault returned: bytes where it is marked base64, else text."""
    text = text or ""
    if is_base64(content_type, tags):
        try:
            return Value(Kind.BYTES, base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            pass  # marked, but not base64 (hand-edited): the text as it is, rather than nothing
    return Value(Kind.TEXT, text)


def record_of(secret: Any, stages: frozenset[str] = frozenset()) -> Record:
    """The record of a ``KeyVaultSecret`` the SDK returned (its value decoded by its marks)."""
    props = secret.properties
    return Record(decode_value(secret.value, props.content_type, props.tags), props.version or "", props.created_on,
                  stages)


def next_properties(
    value: Value, name: str, storage_name: str, content_type: str | None, tags: Mapping[str, str] | None
) -> tuple[str, str | None, dict[str, str]]:
    """What a new version of ``value`` is written with, given the current version's content
    type and tags: the user's tags and content type carried over, secretkit's own set anew."""
    text, own_type, own_tags = encode_value(value)
    kept = {k: v for k, v in (tags or {}).items() if k not in OWN_TAGS}
    kept.update(own_tags)
    kept[SEQUENCE_TAG] = str(sequence(tags) + 1)
    if storage_name != name:
        kept[NAME_TAG] = name
    if own_type is None and content_type not in OWN_CONTENT_TYPES:
        own_type = content_type
    return text, own_type, kept


def check_value(value: Value) -> None:
    """``InvalidArgumentError`` for a value Key Vault cannot hold (before any I/O)."""
    raw = value.raw
    if isinstance(raw, Mapping):
        check_utf8_fields(value, "a Key Vault secret of fields is a JSON object of text (store them base64-encoded, "
                                 "or as a bytes secret of their own)")
    text = encode_value(value)[0]
    size = len(text.encode("utf-8"))
    if size > MAX_VALUE_OCTETS:
        what = "base64 of the bytes" if isinstance(raw, bytes) else "value"
        raise InvalidArgumentError(f"the {what} is {size} bytes; a Key Vault secret holds at most {MAX_VALUE_OCTETS}")
