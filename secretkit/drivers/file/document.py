"""The file store's document: every secret and version as JSON, encrypted as one AES-256-GCM blob."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secretkit.drivers import versioned
from secretkit.drivers.base import AuthenticationError, DataLossError, Kind, Value

MAGIC = b"SKFS1\n"
AAD = b"secretkit file store v1"
NONCE_BYTES = 12


def encrypt(aead: AESGCM, entries: versioned.Entries) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    plaintext = json.dumps(to_doc(entries), separators=(",", ":")).encode()
    return MAGIC + nonce + aead.encrypt(nonce, plaintext, AAD)


def decrypt(aead: AESGCM, blob: bytes, where: Path) -> versioned.Entries:
    """The entries of ``blob``; a wrong key or an altered file raises, never returns garbage."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + NONCE_BYTES + 16:
        raise DataLossError(f"{where} is not a secretkit file store (bad header)")
    nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
    try:
        plaintext = aead.decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], AAD)
    except InvalidTag:
        pass  # raised below, outside the handler
    else:
        return from_doc(json.loads(plaintext))
    raise AuthenticationError(f"cannot decrypt {where}: wrong key, or the file was altered; nothing was changed")


def to_doc(entries: versioned.Entries) -> dict[str, Any]:
    def value_doc(v: Value) -> Any:
        raw = v.raw
        if isinstance(raw, bytes):
            return base64.b64encode(raw).decode()
        if isinstance(raw, str):
            return raw
        # octet fields (as Kubernetes keeps them) are marked, text fields stay plain strings
        return {k: {"base64": base64.b64encode(x).decode()} if isinstance(x, bytes) else x for k, x in raw.items()}

    return {
        "format": 1,
        "secrets": {
            name: {
                "stages": e.stages,
                "versions": [
                    {"id": v.id, "kind": v.value.kind.value, "data": value_doc(v.value),
                     "created": v.created_at.isoformat(), "token": v.token}
                    for v in e.versions
                ],
            }
            for name, e in entries.items()
        },
    }


def from_doc(doc: dict[str, Any]) -> versioned.Entries:
    def value_of(kind: str, data: Any) -> Value:
        if kind == Kind.BYTES.value:
            return Value(Kind.BYTES, base64.b64decode(data))
        if kind == Kind.TEXT.value:
            return Value(Kind.TEXT, data)
        return Value(Kind.FIELDS, {
            k: base64.b64decode(x["base64"]) if isinstance(x, dict) and "base64" in x else x for k, x in data.items()
        })

    return {
        name: versioned.Entry(
            versions=[
                versioned.Version(v["id"], value_of(v["kind"], v["data"]), datetime.fromisoformat(v["created"]), v["token"])
                for v in e["versions"]
            ],
            stages=dict(e["stages"]),
        )
        for name, e in doc["secrets"].items()
    }
