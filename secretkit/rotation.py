"""Rotation that never loses a working credential: pending → current → previous.

The protocol generalises AWS's four rotation steps to every backend:

1. **create** — write the new value as a *pending* version; ``current`` is untouched, so
   readers keep getting the working credential.
2. **apply** — make the target system accept the pending value (``ALTER USER …``).
3. **verify** — check the pending value works; a failure stops here, current untouched.
4. **promote** — atomically: pending → current, old current → previous. ``previous`` stays
   readable (``get(name, stage="previous")``) so clients holding it keep working until the
   next rotation.

Every step is idempotent and keyed by a rotation *token*, so re-running after a crash at any
point converges to the same end state (``resume=True``, or the same ``token``). Two rotators
cannot both proceed: creating the pending version is exclusive, and promotion is a
compare-and-set on the current version, so the loser gets ``ConflictError`` and changes
nothing. Where each backend keeps the stages is ``secretkit.stages``' business.

Rotation keeps the secret's shape: with ``field="password"`` only that field gets a new value
and every other field (octet fields too) is kept; a one-field secret rotates its one field; the
default generator refuses a secret of several fields without ``field=`` rather than replace
the whole map with one password.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from secretkit import stages
from secretkit.errors import InvalidArgumentError, NotFoundError, NotSupportedError, RotationError
from secretkit.generate import generate_password, generate_token
from secretkit.seam import StoreSeam
from secretkit.secret import Kind, Secret, Stage, TextForm, Value

__all__ = [
    "Apply",
    "Generate",
    "RotationError",
    "RotationResult",
    "Verify",
    "discard_pending",
    "generate_password",
    "generate_token",
    "new_value",
    "rotate",
    "rotate_if_older",
    "run_user_step",
]

Generate = Callable[[Secret], Any]
Apply = Callable[[Secret], Any]
Verify = Callable[[Secret], Any]


@dataclass(frozen=True)
class RotationResult:
    """What a rotation did: the new current version, the one now previous, and the token."""

    name: str
    version: str
    previous: str | None
    token: str
    already_done: bool = False


def new_value(current: Secret, generate: Generate | None, field: str | None) -> Value:
    """The value a rotation writes, in the shape of ``current`` (see the module docstring).

    ``generate(current)`` returns the new value of ``field`` when one is given (or implied by a
    one-field secret), else the whole new value; the default generator makes a password.
    """
    value = current.value
    raw = value.raw
    if isinstance(raw, TextForm) and field != raw.key:
        # Text as Vault or Kubernetes keep it ({"value": text}) rotates as the text it is, the
        # way the same secret rotates on every other backend (a JSON object text by its member).
        value = Value(Kind.TEXT, raw.item) if isinstance(raw.item, str) else Value(Kind.BYTES, raw.item)
        raw = value.raw
    if field is None and value.has_fields() and len(value.fields) == 1 and (
        not isinstance(raw, Mapping) or len(raw) == 1
    ):
        field = next(iter(value.fields))  # one field, as a map or as a JSON object: rotate that field
    if field is None:
        if generate is None and value.has_fields() and len(value.fields) > 1:
            raise InvalidArgumentError(
                f"the secret has {len(value.fields)} fields; say which one to rotate (field=...), "
                "or pass generate= returning the whole new value",
                name=current.name,
            )
        return Value.of((generate or (lambda _: generate_password()))(current))
    if not value.has_fields():
        raise InvalidArgumentError(f"field={field!r} given, but the secret holds {value.kind.value} without fields",
                                   name=current.name)
    if field not in value.fields and not (isinstance(raw, Mapping) and field in raw):
        raise NotFoundError(f"the secret has no field {field!r} to rotate", name=current.name)
    replacement = (generate or (lambda _: generate_password()))(current)
    if not isinstance(replacement, (str, bytes)):
        raise InvalidArgumentError("with field=, generate returns the field's new value (str or bytes)",
                                   name=current.name)
    Value.of({field: replacement})  # the same checks a put makes
    if isinstance(raw, TextForm):
        return Value.of(replacement)  # its one field is the text: stored back the same way, read as text
    if isinstance(raw, Mapping):
        return Value(Kind.FIELDS, {**raw, field: replacement})
    if isinstance(replacement, bytes):
        raise InvalidArgumentError("a field of a JSON text secret holds text, not bytes", name=current.name)
    # JSON text (AWS, GCP; Vault and Kubernetes keep it under "value"): replace the one member;
    # the others keep their JSON types and order
    document = json.loads(value.text)
    document[field] = replacement
    text = json.dumps(document, ensure_ascii=False, separators=_separators(value.text))
    return Value(value.kind, text if value.kind is Kind.TEXT else text.encode("utf-8"))


def _separators(text: str) -> tuple[str, str]:
    """Keep the document's spacing style (``{"a": 1}`` vs ``{"a":1}``), as its writer chose."""
    return (", ", ": ") if '": ' in text or '", ' in text else (",", ":")


def rotate(
    store: StoreSeam,
    name: str,
    *,
    generate: Generate | None = None,
    apply: Apply | None = None,
    verify: Verify | None = None,
    token: str | None = None,
    resume: bool = False,
    field: str | None = None,
) -> RotationResult:
    """Run the four rotation steps for ``name`` (which must exist); see ``SecretStore.rotate``."""
    steps = stages.for_store(store)
    token = token or uuid.uuid4().hex
    # bypass the cache: a stale current would only fail later at promotion's if_current check
    current = store.get(name, stage=Stage.CURRENT, refresh=True)
    value = new_value(current, generate, field)
    value = store.prepare_value(name, value)
    try:
        pending = steps.create(name, value, token=token, adopt=resume)
    finally:
        store.invalidate(name)  # the pending stage changed
    if pending is None:
        return RotationResult(name, current.version, None, token, already_done=True)
    run_user_step("apply", apply, pending, store.backend)
    run_user_step("verify", verify, pending, store.backend)
    try:
        version = steps.promote(name, pending, current=current, token=token)
    finally:
        store.invalidate(name)
    return RotationResult(name, version, current.version, token)


def run_user_step(step: str, fn: Callable[[Secret], Any] | None, pending: Secret, backend: str) -> None:
    """Run ``apply`` or ``verify``; a failure (an exception or ``False``) is a ``RotationError``
    that names the step, never the value."""
    if fn is None:
        return
    try:
        ok = fn(pending)
    except Exception as exc:
        raise RotationError(
            f"rotation step {step} failed ({type(exc).__name__}); current value untouched, "
            f"pending version {pending.version} kept",
            step=step, name=pending.name, backend=backend,
        ) from exc
    if ok is False:
        raise RotationError(
            f"rotation step {step} returned False; current value untouched, pending version {pending.version} kept",
            step=step, name=pending.name, backend=backend,
        )


def discard_pending(store: StoreSeam, name: str) -> str | None:
    """Abandon an unfinished rotation: drop the pending value. Returns the version dropped, if any."""
    try:
        return stages.for_store(store).discard(name)
    finally:
        store.invalidate(name)


def rotate_if_older(store: StoreSeam, name: str, max_age: timedelta, **steps: Any) -> RotationResult | None:
    """Rotate only when the current version is older than ``max_age`` (for a daily cron job)."""
    current = store.get(name, refresh=True)
    created = current.created_at
    if created is None and store.capabilities.versions:  # some reads carry no timestamp (GCP access)
        created = next((v.created_at for v in store.versions(name) if v.version == current.version), None)
    if created is None:
        raise NotSupportedError("this backend does not report when a version was created", name=name,
                                backend=store.backend)
    if datetime.now(timezone.utc) - created < max_age:
        return None
    return rotate(store, name, **steps)

