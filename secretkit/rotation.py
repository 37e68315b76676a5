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
and every other field (octet fields too) is kept; a one-field secret rotates its one field. For
a secret of several fields without ``field=``, the default generator refuses rather than
replace the whole map with one password, and a custom ``generate`` must return every field the
secret has (more are allowed): readers of a field, and a Kubernetes Secret's ``type``, depend on
it being there. Anything else is refused before any write.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from secretkit import stages
from secretkit.drivers.base import RotationSettings
from secretkit.errors import ConflictError, InvalidArgumentError, NotFoundError, NotSupportedError, RotationError
from secretkit.fields import TextForm
from secretkit.generate import generate_password, generate_token
from secretkit.seam import StoreSeam
from secretkit.secret import Kind, Secret, Stage, Value

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


def new_value(current: Secret, generate: Generate | None, field: str | None, *, backend: str | None = None) -> Value:
    """The value a rotation writes, in the shape of ``current`` (see the module docstring).

    ``generate(current)`` returns the new value of ``field`` when one is given (or implied by a
    one-field secret), else the whole new value; the default generator makes a password.
    ``InvalidArgumentError`` (naming ``backend``) when the value would not keep the shape.
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
        fields = field_names(value)
        if len(fields) <= 1:
            return Value.of((generate or (lambda _: generate_password()))(current))
        if generate is None:
            raise InvalidArgumentError(
                f"the secret has {len(fields)} fields; say which one to rotate (field=...), "
                "or pass generate= returning the whole new value",
                name=current.name, backend=backend,
            )
        new = Value.of(generate(current))
        _keeps_fields(current.name, value, new, fields, backend)
        return new
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


def field_names(value: Value) -> set[str]:
    """The names of a value's fields: a map's keys (octet fields too), a JSON object's members."""
    raw = value.raw
    if isinstance(raw, Mapping):
        return set(raw)
    return set(value.fields) if value.has_fields() else set()


def _keeps_fields(name: str, shape: Value, value: Value, fields: set[str], backend: str | None) -> None:
    """Refuse a generated whole ``value`` that drops a field of ``shape`` (the current value, as
    the text it holds where the backend keeps text in a map). Where the backend holds a map of
    fields (Vault, Kubernetes), text is stored under one key, so even JSON text with every member
    would replace the map: there only a mapping keeps the fields."""
    as_map = isinstance(shape.raw, Mapping)
    kept = field_names(value) if isinstance(value.raw, Mapping) or not as_map else set()
    missing = fields - kept
    if missing:
        returned = "a mapping" if isinstance(value.raw, Mapping) else f"{value.kind.value} (not a mapping)"
        raise InvalidArgumentError(
            f"generate returned {returned} without the field(s) {', '.join(map(repr, sorted(missing)))} "
            f"of this {len(fields)}-field secret; return a mapping with every field (more are allowed), "
            "or rotate one field with field=...",
            name=name, backend=backend,
        )


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
    allow_native_rotation: bool = False,
) -> RotationResult:
    """Run the four rotation steps for ``name`` (which must exist); see ``SecretStore.rotate``."""
    steps = stages.for_store(store)
    token = token or uuid.uuid4().hex
    # bypass the cache: a stale current would only fail later at promotion's if_current check
    current = store.get(name, stage=Stage.CURRENT, refresh=True)
    # the shape check needs no I/O, so it refuses first; the backend's settings cost a call
    value = new_value(current, generate, field, backend=store.backend)
    check_settings(store, name, allow_native_rotation=allow_native_rotation)
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


def check_settings(store: StoreSeam, name: str, *, allow_native_rotation: bool) -> None:
    """Refuse, before anything is written, a rotation the backend's own settings would defeat:

    * a backend that keeps fewer than two versions (Vault ``max_versions=1``) prunes the old
      value at promotion, so ``previous`` — the credential clients still hold — would be gone
      while the result reports it (``NotSupportedError``, naming the setting);
    * a secret the backend rotates itself (an AWS rotation Lambda) would have two rotators, each
      promoting values the other's target never got (``ConflictError``, naming the other one),
      unless the caller says the two are coordinated (``allow_native_rotation=True``).
    """
    driver = store.driver
    if not isinstance(driver, RotationSettings):
        return
    found = store.call_driver("rotate.check", name, lambda: driver.rotation_settings(name))
    if found.kept_versions is not None and found.kept_versions < 2:
        raise NotSupportedError(
            f"the backend keeps {found.kept_versions} version of this secret ({found.kept_by}), so promotion "
            "would prune the previous value that clients still use; raise it to 2 or more to rotate",
            name=name, backend=store.backend,
        )
    if found.rotated_by is not None and not allow_native_rotation:
        raise ConflictError(
            f"{found.rotated_by} rotates this secret already; a second rotator beside it races it for the pending "
            "value and promotes values the other one's target never got. Rotate it there, turn that rotation off, "
            "or pass allow_native_rotation=True if the two are coordinated",
            name=name, backend=store.backend,
        )


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

