"""Names and values of ssm:// as Parameter Store holds them: pure functions, no I/O.

* Names: every name SSM accepts is the parameter's name, unchanged: a flat name
  (``db-password``, letters, digits and ``_.-``) stays flat, a hierarchical one keeps its leading
  ``/`` (``/prod/app/db-password``, at most 15 levels). SSM refuses a hierarchical name without
  the leading ``/``, so the one mapping is: a portable name with ``/`` (``prod/db``) is the
  parameter ``/prod/db``, where SSM's own tools look for that hierarchy. Names SSM reserves
  (starting with ``aws`` or ``ssm``, any case) are refused before any I/O.
* Values: SSM values are text. Text is the value exactly; fields are a JSON object in it (read
  back as fields exactly as aws-sm:// reads a ``SecretString``); bytes that are UTF-8 are that
  text; other bytes are the JSON text ``{"encoding": "base64", "value": "<base64>"}`` (the form
  Vault KV uses). SSM holds no empty value, so an empty one is stored as one NUL, as on aws-sm://.
  A value that would read back as something else (a lone NUL, text or fields in the bytes form)
  is refused before any I/O.
* Limits: the value as stored (UTF-8) is at most 4096 bytes on the Standard tier, 8192 on
  Advanced (and Intelligent-Tiering, which becomes Advanced when needed).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from secretkit.drivers.aws.common import as_datetime
from secretkit.drivers.base import (
    InvalidArgumentError,
    Kind,
    NameRules,
    NotFoundError,
    Record,
    Stage,
    Value,
    check_utf8_fields,
    fields_to_json,
)

BACKEND = "ssm"

#: Value limits by tier, in bytes of the stored (UTF-8) value.
TIER_LIMITS = {"Standard": 4096, "Advanced": 8192, "Intelligent-Tiering": 8192}
#: SSM counts a name's length with its ARN prefix (``arn:aws:ssm:us-east-2:111122223333:parameter/``:
#: 45 characters) in its 1011; what is left for the name itself in the longest region.
MAX_NAME = 1011 - 50
MAX_LEVELS = 15
_SEGMENT_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
NAME_RULE = (
    "SSM parameter names are letters, digits and _.- (a hierarchy: /-separated levels after a "
    f"leading '/', at most {MAX_LEVELS}), at most {MAX_NAME} characters, and must not begin with "
    "'aws' or 'ssm' (any case)"
)

#: What an empty value is stored as (SSM holds no empty value), as aws-sm:// stores one.
EMPTY_TEXT = "\x00"

#: The bytes form (the one Vault KV documents): ``{"encoding": "base64", "value": "<base64>"}``.
ENCODING_KEY, BYTES_KEY, BASE64 = "encoding", "value", "base64"


def is_native(name: str) -> bool:
    """True if SSM holds ``name`` as written."""
    if not name or len(name) > MAX_NAME:
        return False
    if name.startswith("/"):
        levels = name[1:].split("/")
        if len(levels) > MAX_LEVELS:
            return False
    elif "/" in name:
        return False  # SSM: a hierarchy must start with '/'
    else:
        levels = [name]
    if not all(level and set(level) <= _SEGMENT_CHARACTERS for level in levels):
        return False
    return not levels[0].lower().startswith(("aws", "ssm"))


def hierarchical(name: str) -> str:
    """A portable hierarchical name as SSM's hierarchy: ``prod/db`` → ``/prod/db``."""
    return "/" + name


#: The tag on a parameter created through its portable name (``prod/db`` for ``/prod/db``), so
#: that ``list()`` shows that name: SSM keeps no other trace of how a name was written.
NAME_TAG, PORTABLE = "secretkit:name", "portable"

#: SSM's rule; portable ``a/b`` is the parameter ``/a/b`` (SSM holds no other spelling of it).
NAMES = NameRules(NAME_RULE, is_native, hierarchical)


#: A parameter's ARN: ``parameter/`` then the name, whose leading ``/`` (if any) it drops.
_PARAMETER_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:([a-z0-9-]*):(\d*):parameter/(.+)$")


def names_of_event(parameter: str, region: str | None) -> tuple[str, ...]:
    """The store names an event's parameter (its name, or its ARN) may be read as, for a store
    in ``region``; () for another region's ARN or a name SSM cannot hold.

    ``/prod/db`` is read as itself or as the portable ``prod/db``. An ARN drops the leading
    ``/``: ``parameter/prod/db`` is ``/prod/db`` (SSM has no ``prod/db``), while ``parameter/db``
    is the flat ``db`` or the one-level ``/db``, which it cannot tell apart: both are given.
    """
    arn = _PARAMETER_ARN.match(parameter)
    if arn is None:
        natives = [parameter]
    elif region and arn.group(1) and arn.group(1) != region:
        return ()
    else:
        rest = arn.group(3)
        natives = ["/" + rest] if "/" in rest else [rest, "/" + rest]
    out: list[str] = []
    for native in natives:
        for name in (native, native[1:]) if native.startswith("/") else (native,):
            try:
                if NAMES.storage_name(name) == native and name not in out:
                    out.append(name)
            except InvalidArgumentError:  # not a name of this store (the portable spelling of /db is db's)
                continue
    return tuple(out)


def could_be_name_prefix(prefix: str) -> bool:
    """False when no parameter name can start with ``prefix`` (so a listing needs no call)."""
    return len(prefix) <= MAX_NAME + 1 and set(prefix) <= _SEGMENT_CHARACTERS | {"/"}


def native_prefixes(prefix: str) -> list[str]:
    """The native name prefixes a ``list(prefix)`` covers: ``prod/`` is SSM's ``/prod/``; a
    prefix without ``/`` may begin a flat name or a portable hierarchical one (``/pr...``)."""
    if not prefix or prefix.startswith("/"):
        return [prefix] if prefix else []
    if "/" in prefix:
        return [hierarchical(prefix)]
    return [prefix, hierarchical(prefix)]


def listed(native: str, prefix: str) -> str:
    """A listed parameter's name in the spelling of the prefix asked for: ``/prod/db`` is
    ``prod/db`` when listed under ``prod/`` (the name it was written as), else unchanged."""
    if native.startswith("/") and prefix and not prefix.startswith("/"):
        return native[1:]
    return native


# -- values ----------------------------------------------------------------------------


def _bytes_form(text: str) -> bytes | None:
    """The octets of the bytes form, or None if ``text`` is anything else."""
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return _form_octets(data)


def _form_octets(data: Any) -> bytes | None:
    if not isinstance(data, Mapping) or set(data) != {ENCODING_KEY, BYTES_KEY} or data[ENCODING_KEY] != BASE64:
        return None
    encoded = data[BYTES_KEY]
    if not isinstance(encoded, str):
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def encode_value(value: Value) -> str:
    """The SSM ``Value`` for ``value`` (checked by ``check_value``)."""
    raw = value.raw
    if isinstance(raw, bytes):
        if _is_binary(raw):
            return json.dumps({ENCODING_KEY: BASE64, BYTES_KEY: base64.b64encode(raw).decode("ascii")})
        raw = raw.decode("utf-8")
    if isinstance(raw, str):
        return raw or EMPTY_TEXT
    return fields_to_json(raw)


def check_value(value: Value, tier: str) -> None:
    """``InvalidArgumentError`` stating SSM's rule for a value it cannot hold as written."""
    raw = value.raw
    check_utf8_fields(value, "SSM fields are a JSON object of text (store octets as a bytes value)")
    stored = encode_value(value)
    if stored == EMPTY_TEXT and raw not in ("", b""):
        raise InvalidArgumentError(
            "a value of one NUL character is how ssm stores an empty value (SSM holds no empty value), "
            "so it cannot be stored as itself"
        )
    if not isinstance(raw, bytes) or not _is_binary(raw):
        if isinstance(raw, Mapping):
            octets = _form_octets(dict(raw))
        else:
            octets = _bytes_form(stored)
        if octets is not None:
            raise InvalidArgumentError(
                f'{{"{ENCODING_KEY}": "{BASE64}", "{BYTES_KEY}": <base64>}} is how ssm stores octets that are '
                "not UTF-8, so this value would read back as bytes; put the bytes themselves"
            )
    size = len(stored.encode("utf-8"))
    limit = TIER_LIMITS[tier]
    if size > limit:
        raise InvalidArgumentError(
            f"value is stored as {size} bytes; an SSM parameter of the {tier} tier holds at most {limit}"
            + (" (open the store with tier=Advanced for 8192)" if tier == "Standard" else "")
        )


def _is_binary(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def decode_value(text: str) -> Value:
    """The value of an SSM ``Value`` (String, StringList or decrypted SecureString)."""
    if text == EMPTY_TEXT:
        return Value(Kind.TEXT, "")
    octets = _bytes_form(text)
    if octets is not None:
        return Value(Kind.BYTES, octets)
    return Value(Kind.TEXT, text)


def to_record(parameter: Mapping[str, Any], stages: frozenset[str] = frozenset({Stage.CURRENT})) -> Record:
    """A GetParameter-shaped ``Parameter`` (also a GetParameters or history item) as a Record."""
    if "Value" not in parameter:
        raise NotFoundError("parameter version has no value")
    return Record(
        value=decode_value(str(parameter["Value"])),
        version=str(parameter["Version"]),
        created_at=as_datetime(parameter.get("LastModifiedDate")),
        stages=stages,
    )


def version_stages(labels: Any, *, newest: int, version: int) -> frozenset[str]:
    """A version's stages: ``current`` for the newest, ``previous`` for the one before, and
    the version's own SSM labels."""
    out = {str(label) for label in labels or ()}
    if version == newest:
        out.add(Stage.CURRENT)
    elif version == newest - 1:
        out.add(Stage.PREVIOUS)
    return frozenset(out)
