"""Names and values of ``k8s://``: pure functions from portable calls to Secret objects, no I/O.

Names: a DNS-1123 subdomain (what Kubernetes accepts as a Secret name) is used unchanged. A
portable name that is not one (uppercase, ``_``, ``/``) is stored under a readable lowercase
form plus ``-`` and 8 hex digits of the SHA-256 of the name as written, and the name as
written is recorded in the annotation ``secretkit.io/name``.

Values: fields are the Secret's data keys; text and bytes are one data key (``value`` unless
configured). Reading gives the octets of every data key, and ``Value`` derives the views; a
Secret whose only data key is the value key is a ``TextForm``, so it reads as the text (or
octets) it holds, as the same put does on every backend.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from secretkit.drivers.base import (
    DataLossError,
    InvalidArgumentError,
    Kind,
    NameRules,
    Value,
    hashed,
    listed_name as _listed_name,
    text_form,
)

BACKEND = "k8s"
#: Label on every Secret secretkit writes; ``list()`` selects on it server-side.
MANAGED_LABEL = "secretkit.io/managed"
#: Annotation holding the name as written, on Secrets whose object name is a mapped one.
NAME_ANNOTATION = "secretkit.io/name"
#: The annotation older releases wrote to tell text, bytes and fields apart; removed on write.
LEGACY_KIND_ANNOTATION = "secretkit.io/kind"
#: The type of every Secret secretkit creates; the type of a Secret never changes.
OPAQUE = "Opaque"
#: The data keys Kubernetes' typed Secrets need, as alternatives (each a group of keys that must
#: all be there): the API server refuses a Secret of the first five types without them, and the
#: controllers that own the last two read them.
TYPED_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "kubernetes.io/tls": (("tls.crt", "tls.key"),),
    "kubernetes.io/basic-auth": (("username",), ("password",)),
    "kubernetes.io/ssh-auth": (("ssh-privatekey",),),
    "kubernetes.io/dockerconfigjson": ((".dockerconfigjson",),),
    "kubernetes.io/dockercfg": ((".dockercfg",),),
    "kubernetes.io/service-account-token": (("token",),),
    "bootstrap.kubernetes.io/token": (("token-id", "token-secret"),),
}
#: Kubernetes' limit on the decoded size of all data values of one Secret.
MAX_SECRET_BYTES = 1024 * 1024
MAX_OBJECT_NAME = 253
DEFAULT_VALUE_KEY = "value"

DNS_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
DATA_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")

NAME_RULE = (
    "Kubernetes Secret names are DNS-1123 subdomains: at most 253 characters, lowercase letters, "
    "digits, '-' and '.', each '.'-separated part starting and ending with a letter or digit; a "
    "portable name outside that rule (uppercase, '_', '/') is stored as its lowercase form ('/' as "
    "'.', '_' as '-') plus '-' and 8 hex digits of its SHA-256"
)


# -- names -----------------------------------------------------------------------------


def is_native(name: str) -> bool:
    """True if Kubernetes accepts ``name`` as a Secret name (then it is used unchanged)."""
    return len(name) <= MAX_OBJECT_NAME and DNS_SUBDOMAIN.fullmatch(name) is not None


def readable(name: str) -> str:
    """The lowercase form of a portable name: ``/`` → ``.``, ``_`` → ``-``, and every
    ``.``-separated part trimmed of ``-`` so each starts and ends with a letter or digit."""
    lowered = name.lower().replace("/", ".").replace("_", "-")
    parts = [part.strip("-") for part in lowered.split(".")]
    return ".".join(part for part in parts if part) or "x"


def mapped(name: str) -> str:
    """The object name of a portable name Kubernetes cannot hold, e.g.
    ``payments/db-password`` → ``payments.db-password-<8 hex>``."""
    return hashed(readable(name), name)


#: The store checks every name against these before any I/O.
NAMES = NameRules(NAME_RULE, is_native, mapped)


def listed_name(obj_name: str, annotations: Mapping[str, str]) -> str:
    """What ``list()`` shows for an object: the recorded name as written when it really maps
    to this object (a copied or renamed object keeps a stale annotation), else the object name."""
    return _listed_name(NAMES, obj_name, annotations.get(NAME_ANNOTATION))


def companion_name(obj_name: str, stage: str, *, other_namespace: str | None = None) -> str:
    """The name of the companion Secret holding ``stage`` (``pending``/``previous``) of
    ``obj_name``: ``<object>.secretkit-<stage>``, prefixed with the Secret's namespace when the
    companion lives in another namespace (a namespace name holds no '.', so this stays
    unambiguous); shortened with a digest when longer than Kubernetes allows."""
    base = f"{other_namespace}.{obj_name}" if other_namespace else obj_name
    suffix = f".secretkit-{stage}"
    if len(base) + len(suffix) <= MAX_OBJECT_NAME:
        return base + suffix
    keep = MAX_OBJECT_NAME - len(suffix) - 9
    return hashed(base[:keep].rstrip(".-"), base) + suffix


# -- values ----------------------------------------------------------------------------


def encode_value(value: Value, value_key: str) -> dict[str, str]:
    """The Secret's ``data`` for a value: each field is a data key; text and bytes are the
    one key ``value_key``. Values base64-encoded, as the API carries them."""
    raw = value.raw
    if isinstance(raw, Mapping):
        octets = {key: value.field_bytes(key) for key in raw}
    else:
        octets = {value_key: value.bytes}
    return {key: base64.b64encode(item).decode("ascii") for key, item in octets.items()}


def decode_value(obj: Mapping[str, Any], value_key: str = DEFAULT_VALUE_KEY) -> Value:
    """The value of a Secret object as the API returns it: the octets of every data key
    (only ``value_key``: the text form, see the module docstring)."""
    data: dict[str, bytes] = {}
    for key, encoded in (obj.get("data") or {}).items():
        try:
            data[key] = base64.b64decode(encoded or "", validate=True)
        except (binascii.Error, ValueError):
            raise DataLossError(f"data key {key!r} of the Secret is not valid base64") from None
    return Value(Kind.FIELDS, text_form(data, value_key))


def check_type(secret_type: str, data: Mapping[str, str]) -> None:
    """Refuse ``data`` for a Secret of ``secret_type`` unless it has the keys that type needs
    (a text or bytes value is one key, ``value``: it would replace a TLS pair, a password...)."""
    needs = TYPED_KEYS.get(secret_type)
    if needs is None or any(all(key in data for key in keys) for keys in needs):
        return
    wanted = " or ".join(" and ".join(keys) for keys in needs)
    raise InvalidArgumentError(
        f"the Secret is of type {secret_type}, which needs the data keys {wanted}; put a mapping with "
        "them (fields). Nothing was written"
    )


# -- object metadata -------------------------------------------------------------------


def metadata_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    found = metadata_of(obj).get("annotations")
    return found if isinstance(found, dict) else {}


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    found = metadata_of(obj).get("labels")
    return found if isinstance(found, dict) else {}


def resource_version(obj: Mapping[str, Any]) -> str:
    return str(metadata_of(obj).get("resourceVersion") or "")
