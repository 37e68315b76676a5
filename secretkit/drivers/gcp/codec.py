"""Names and values on Secret Manager: pure functions, no I/O.

Names. A secret id is 1-255 characters of ``[A-Za-z0-9_-]``; a name of that shape is the secret
id itself (``my_secret`` is the secret ``my_secret``). A portable name GCP cannot hold (it has
``/`` or ``.``) is stored under a readable id plus a digest of the name as written:
``/`` becomes ``__``, ``.`` becomes ``_``, then ``-`` and the first 8 hex digits of the
SHA-256 of the name (``payments/db-password`` → ``payments__db-password-<8 hex>``). The digest
keeps two names whose readable forms coincide (``a/b``, ``a__b``, ``a.b``) apart. The name as
written is recorded in the secret's annotation ``secretkit-name``, so listings show it.

Values. A payload is the value exactly as GCP's own tools hold it: text → its UTF-8 octets;
fields → a UTF-8 JSON object; bytes → the octets. GCP refuses empty payloads, so an empty
value (text or bytes) is the one exception: it is stored as ``EMPTY_PAYLOAD``. Reading, a
UTF-8 payload is text (a JSON object then reads as fields through the value's own view),
anything else is bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from secretkit.drivers.base import (
    InvalidArgumentError,
    Kind,
    NameRules,
    Value,
    fields_to_json,
    hashed,
    listed_name as _listed_name,
)
from secretkit.drivers.base import check_utf8_fields

BACKEND = "gcp-sm"

MAX_SECRET_ID = 255
MAX_PAYLOAD = 65536

#: The annotation that records the name as written on a secret whose id is a mapping of it.
#: (GCP annotation keys are 1-63 characters of letters, digits, ``-_.``, alphanumeric at both
#: ends: no ``/``, so not the Kubernetes-style ``secretkit.io/name``.)
NAME_ANNOTATION = "secretkit-name"

#: What an empty value (text ``""`` or bytes ``b""``) is stored as, because GCP refuses empty
#: payloads: the two octets C0 80. They are not UTF-8 (an overlong form of NUL), so no text is
#: ever mistaken for them and every UTF-8 decoder refuses them rather than returning a wrong
#: string; a bytes value of exactly these two octets cannot be stored (``check_value``).
EMPTY_PAYLOAD = b"\xc0\x80"

_ID = re.compile(r"[A-Za-z0-9_-]+")
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

NAME_RULE = (
    f"GCP secret ids are 1-{MAX_SECRET_ID} ASCII letters, digits, '_' and '-' (used unchanged); "
    "a portable name with '/' or '.' is stored as '<name with / as __ and . as _>-<8 hex digits of "
    f"its sha256>', which must fit in {MAX_SECRET_ID} characters"
)


# -- names --------------------------------------------------------------------------------


def is_native(name: str) -> bool:
    """True if ``name`` is a secret id GCP accepts as it is."""
    return len(name) <= MAX_SECRET_ID and _ID.fullmatch(name) is not None


def readable(name: str) -> str:
    """The readable part of a mapped id: ``/`` → ``__``, ``.`` → ``_`` (other characters kept).

    Character by character, so ``readable(prefix)`` is a prefix of ``readable(name)`` for
    every name that starts with ``prefix`` (``list`` filters on it)."""
    return name.replace("/", "__").replace(".", "_")


def mapped_id(name: str) -> str:
    """The secret id of a portable name GCP cannot hold as written (see the module docstring)."""
    return hashed(readable(name), name)


NAMES = NameRules(NAME_RULE, is_native, mapped_id)


def listed_name(secret_id: str, annotations: Mapping[str, str]) -> str:
    """The name ``list`` shows for a secret: the recorded name where the id is its mapping
    (a copied or hand-edited annotation that does not lead back to this id is ignored), else
    the secret id unchanged."""
    return _listed_name(NAMES, secret_id, annotations.get(NAME_ANNOTATION))


def list_filter(prefix: str) -> str | None:
    """A server-side ``ListSecrets`` filter that every secret listed under ``prefix`` matches
    (``name:`` is a substring match on the resource name), or None to list everything."""
    part = readable(prefix)
    if not part or not set(part) <= _ID_CHARS:
        return None
    return f'name:"{part}"'


def annotations_for(name: str, secret_id: str) -> dict[str, str]:
    """The annotations a secret created for ``name`` gets: the name as written, if it is mapped."""
    return {NAME_ANNOTATION: name} if secret_id != name else {}


#: A full secret name, as events and responses give it: project (id or number), region, id.
_RESOURCE = re.compile(r"projects/(?P<project>[^/]+)(?:/locations/(?P<location>[^/]+))?/secrets/(?P<id>[^/]+)")
_MAPPED = re.compile(r"(?P<readable>.+)-[0-9a-f]{8}")
#: Undoing ``readable`` is ambiguous at each ``_`` (``_``, ``.`` or half of ``/``); past this many
#: candidate names a mapped id is matched only as itself (ids with dozens of ``_`` only).
MAX_CANDIDATES = 4096


def secret_resource(resource: str) -> tuple[str, str | None, str] | None:
    """``(project, location or None, secret id)`` of a full secret name
    (``projects/P[/locations/L]/secrets/ID``, any ``/versions/…`` suffix dropped); None if not one."""
    m = _RESOURCE.fullmatch(resource.split("/versions/", 1)[0])
    return (m["project"], m["location"], m["id"]) if m else None


def names_of(secret_id: str) -> tuple[str, ...]:
    """Every name that reaches the secret ``secret_id``: the id itself, and the portable names
    GCP cannot hold whose mapped id it is (``payments/db`` for ``payments__db-<8 hex>``), found
    by undoing ``readable`` and keeping the candidates whose digest matches."""
    found = [secret_id]
    m = _MAPPED.fullmatch(secret_id)
    if m:
        for name in _unreadable(m["readable"]):
            if name != secret_id and mapped_id(name) == secret_id and NAMES.storage_name(name) == secret_id:
                found.append(name)
    return tuple(found)


def _unreadable(text: str) -> list[str]:
    """Every ``name`` with ``readable(name) == text`` (none when there would be too many)."""
    pieces = re.split(r"(_+)", text)
    choices = [_underscores(len(p)) if p.startswith("_") else [p] for p in pieces]
    count = 1
    for options in choices:
        count *= len(options)
        if count > MAX_CANDIDATES:
            return []
    out = [""]
    for options in choices:
        out = [head + option for head in out for option in options]
    return out


def _underscores(run: int) -> list[str]:
    """What a run of ``run`` underscores may have been: each ``_`` or ``.``, each ``__`` a ``/``."""
    ways: list[list[str]] = [[""], ["_", "."]]
    for k in range(2, run + 1):
        ways.append([c + rest for c in ("_", ".") for rest in ways[k - 1]] + ["/" + rest for rest in ways[k - 2]])
        if len(ways[k]) > MAX_CANDIDATES:
            return ways[k][: MAX_CANDIDATES + 1]  # enough for the caller to give up
    return ways[run]


# -- versions -----------------------------------------------------------------------------

_VERSION_NUMBER = re.compile(r"[1-9][0-9]{0,18}")  # ASCII, as GCP writes them (int64, from 1)
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
#: Names GCP refuses as aliases (``latest`` is its own reference; ``get()`` reads it).
RESERVED_ALIASES = frozenset({"latest", "NEW"})

VERSION_RULE = (
    "GCP versions are numbers from 1 as GCP writes them, or a version alias of the secret "
    "(1-63 ASCII letters, digits, '_' and '-', starting with a letter; not 'latest' or 'NEW')"
)


def version_ref(version: str) -> str | None:
    """What AccessSecretVersion is asked for ``version``: the version number exactly as GCP
    returns it, or one of the secret's version aliases (``stable``, ``canary``: GCP takes an
    alias in place of a number on Get and Access). None when it is neither, so no version can
    answer to it and no call is needed."""
    if _VERSION_NUMBER.fullmatch(version) and int(version) < 2**63:
        return version
    if _ALIAS.fullmatch(version) and version not in RESERVED_ALIASES:
        return version
    return None


# -- values -------------------------------------------------------------------------------


def encode_value(value: Value) -> bytes:
    """The payload of ``value``: exactly what GCP's own tools would store (see the module docstring)."""
    raw = value.raw
    if isinstance(raw, str):
        data = raw.encode("utf-8")
    elif isinstance(raw, bytes):
        data = raw
    else:
        data = fields_to_json(raw).encode("utf-8")
    return data or EMPTY_PAYLOAD


def decode_value(data: bytes) -> Value:
    """The value a payload holds: UTF-8 → text, anything else → bytes (``EMPTY_PAYLOAD`` → "")."""
    if data == EMPTY_PAYLOAD:
        return Value(Kind.TEXT, "")
    try:
        return Value(Kind.TEXT, data.decode("utf-8"))
    except UnicodeDecodeError:
        return Value(Kind.BYTES, data)


def check_value(value: Value) -> None:
    """``InvalidArgumentError`` for a value a payload cannot hold exactly (before any I/O)."""
    raw = value.raw
    if isinstance(raw, bytes):
        if raw == EMPTY_PAYLOAD:
            raise InvalidArgumentError(
                "the two octets C0 80 are how GCP payloads hold an empty value, so they cannot be stored as bytes"
            )
        return
    if isinstance(raw, str):
        return
    check_utf8_fields(value, "a GCP secret of fields is a JSON object of text (store them base64-encoded, "
                             "or as a bytes secret of their own)")
    size = len(fields_to_json(raw).encode("utf-8"))
    if size > MAX_PAYLOAD:
        raise InvalidArgumentError(f"the fields encode to a {size}-byte JSON payload; GCP holds at most {MAX_PAYLOAD}")

