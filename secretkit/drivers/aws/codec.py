"""Names, values and labels of aws-sm:// as Secrets Manager holds them: pure functions, no I/O.

* Names: every name AWS accepts (1-512 ASCII letters, digits and ``/_+=.@-``) is the secret's
  name, unchanged; nothing is mapped. AWS advises against names ending in ``-`` plus six
  characters (a partial ARN of such a name looks like a full ARN), but accepts them, and
  secretkit always passes the plain name, which AWS resolves exactly: that advice is
  documented, never a reason to rename (``prod/app-config`` is ``prod/app-config``).
* Values: text is the ``SecretString`` exactly (JSON-looking or not); fields are a
  ``SecretString`` holding a JSON object; bytes are the ``SecretBinary``. AWS holds no empty
  value (both members are 1-65536), so the one encoding is: an empty value is stored as one
  NUL (``"\\x00"`` or ``b"\\x00"``) in the member its kind uses, and reads back empty; a value
  that *is* one NUL is therefore refused before any I/O.
* Reading gives the shape AWS holds: ``SecretString`` → ``Value(TEXT)`` exactly as stored (the
  Value derives ``.fields`` from JSON-object text itself), ``SecretBinary`` → ``Value(BYTES)``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
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
    pattern_rule,
)

BACKEND = "aws-sm"

#: AWS's value limit, in bytes of SecretString (UTF-8) or SecretBinary.
AWS_MAX_VALUE = 65536
AWS_MAX_NAME = 512
NAME_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+=.@-")
NAME_RULE = f"AWS secret names are 1-{AWS_MAX_NAME} characters: ASCII letters, digits and /_+=.@-"

#: AWS secret names, unchanged (no ``mapped``: every portable name is a valid AWS name).
NAMES = NameRules(NAME_RULE, pattern_rule(r"[A-Za-z0-9/_+=.@-]+", AWS_MAX_NAME))

#: What an empty value is stored as (AWS refuses an empty SecretString or SecretBinary).
EMPTY_TEXT = "\x00"
EMPTY_BYTES = b"\x00"

NATIVE_STAGE = {Stage.CURRENT: "AWSCURRENT", Stage.PREVIOUS: "AWSPREVIOUS", Stage.PENDING: "AWSPENDING"}
PORTABLE_STAGE = {native: portable for portable, native in NATIVE_STAGE.items()}
#: Label that holds a compare-and-set or rotation write's version until a stage moves to it.
WRITE_LABEL_PREFIX = "secretkit-write-"

#: AWS version ids (= ClientRequestTokens) are 32-64 characters.
VERSION_ID_LENGTH = range(32, 65)
_TOKEN_NAMESPACE = uuid.UUID("6f1d0c9e-3b7a-5b52-9a7e-5ec2e7c1b1a0")


def could_be_name_prefix(prefix: str) -> bool:
    """False when no AWS name can start with ``prefix`` (so a listing needs no call)."""
    return len(prefix) <= AWS_MAX_NAME and all(ch in NAME_CHARACTERS for ch in prefix)


def is_version_id(version: str) -> bool:
    return len(version) in VERSION_ID_LENGTH


def rotation_version_id(token: str) -> str:
    """The AWS version id of a rotation token: the token itself when AWS accepts it as a
    ClientRequestToken (32-64 characters, as AWS's rotation Lambda events carry), else a
    stable UUID derived from it, so re-runs with the same token find the same version."""
    if is_version_id(token):
        return token
    return uuid.uuid5(_TOKEN_NAMESPACE, token).hex


# -- values --------------------------------------------------------------------------


def encode_value(value: Value) -> dict[str, Any]:
    """The ``SecretString``/``SecretBinary`` request member for ``value`` (checked by ``check_value``)."""
    raw = value.raw
    if isinstance(raw, bytes):
        return {"SecretBinary": raw or EMPTY_BYTES}
    if isinstance(raw, str):
        return {"SecretString": raw or EMPTY_TEXT}
    return {"SecretString": fields_to_json(raw)}


def stored_size(member: Mapping[str, Any]) -> int:
    """Bytes of the member AWS stores (the unit of its 65536 limit)."""
    if "SecretBinary" in member:
        return len(member["SecretBinary"])
    return len(str(member["SecretString"]).encode("utf-8"))


def check_value(value: Value) -> None:
    """``InvalidArgumentError`` stating AWS's rule for a value it cannot hold as written."""
    raw = value.raw
    if raw == EMPTY_TEXT or raw == EMPTY_BYTES:
        raise InvalidArgumentError(
            "a value of one NUL character is how aws-sm stores an empty value (AWS holds no empty "
            "SecretString or SecretBinary), so it cannot be stored as itself"
        )
    check_utf8_fields(value, "AWS fields are a JSON object of text (store octets as a bytes value, "
                             "which is a SecretBinary)")
    size = stored_size(encode_value(value))
    if size > AWS_MAX_VALUE:
        raise InvalidArgumentError(f"value is stored as {size} bytes; AWS Secrets Manager holds at most {AWS_MAX_VALUE}")


def decode_value(response: Mapping[str, Any]) -> Value:
    """The value of a GetSecretValue-shaped response, in the shape AWS holds it."""
    binary = response.get("SecretBinary")
    if binary is not None:
        data = bytes(binary)
        return Value(Kind.BYTES, b"" if data == EMPTY_BYTES else data)
    text = response.get("SecretString")
    if text is None:  # a version AWS opened for a rotation, before its createSecret step
        raise NotFoundError("secret version has no value")
    return Value(Kind.TEXT, "" if text == EMPTY_TEXT else str(text))


# -- labels and records ----------------------------------------------------------------


def stages(labels: Sequence[str] | None) -> frozenset[str]:
    """Native labels plus their portable spellings; our own transient write labels hidden."""
    return _stages(tuple(labels or ()))


@lru_cache(maxsize=256)
def _stages(labels: tuple[str, ...]) -> frozenset[str]:
    # Shared: every cached secret holds its stages, and nearly all hold {AWSCURRENT, current}.
    out: set[str] = set()
    for label in labels:
        if label.startswith(WRITE_LABEL_PREFIX):
            continue
        out.add(label)
        if label in PORTABLE_STAGE:
            out.add(PORTABLE_STAGE[label])
    return frozenset(out)


def timestamp(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return 0.0


def to_record(response: Mapping[str, Any]) -> Record:
    """A GetSecretValue-shaped response (also a BatchGetSecretValue item) as a Record."""
    return Record(
        value=decode_value(response),
        version=str(response["VersionId"]),
        created_at=as_datetime(response.get("CreatedDate")),
        stages=stages(response.get("VersionStages")),
    )


#: a full or partial Secrets Manager ARN: partition, region, account, and what follows ``secret:``
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]*):(\d*):secret:(.+)$")
_ARN_SUFFIX = re.compile(r"^(.+)-[A-Za-z0-9]{6}$")


def names_of_secret_id(secret_id: str, region: str | None) -> tuple[str, ...]:
    """The names a ``SecretId`` (a name, a full or a partial ARN) may be, for a store in ``region``;
    () for an ARN of another region. A full ARN ends in ``-`` and 6 random characters, which a
    partial one of a name ending that way cannot be told from: both readings are given."""
    arn = _SECRET_ARN.match(secret_id)
    if arn is None:
        return (secret_id,)
    if region and arn.group(1) and arn.group(1) != region:
        return ()
    rest = arn.group(3)
    suffixed = _ARN_SUFFIX.match(rest)
    return (suffixed.group(1), rest) if suffixed else (rest,)
