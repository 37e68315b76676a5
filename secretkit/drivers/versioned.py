"""Versioned secret semantics over a plain dict, shared by the memory and file stores.

Versions, stages, compare-and-set and idempotent put tokens behave as on the real
backends. Callers hold their own lock around each call; these functions only mutate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from secretkit.drivers.base import (
    ConflictError,
    NotFoundError,
    Record,
    Stage,
    Value,
    VersionInfo,
    already_exists,
    version_conflict,
)


@dataclass
class Version:
    id: str
    value: Value
    created_at: datetime
    token: str


@dataclass
class Entry:
    versions: list[Version] = field(default_factory=list)
    stages: dict[str, str] = field(default_factory=dict)  # stage -> version id

    def find(self, version_id: str) -> Version | None:
        return next((v for v in self.versions if v.id == version_id), None)

    def stages_of(self, version_id: str) -> frozenset[str]:
        return frozenset(stage for stage, vid in self.stages.items() if vid == version_id)

    def info(self, name: str, version: Version) -> VersionInfo:
        return VersionInfo(name, version.id, version.created_at, self.stages_of(version.id))


Entries = dict[str, Entry]


def entry(entries: Entries, name: str) -> Entry:
    found = entries.get(name)
    if found is None:
        raise NotFoundError("secret not found")
    return found


def read(entries: Entries, name: str, version: str | None, stage: str | None) -> Record:
    e = entry(entries, name)
    if version is None:
        version = e.stages.get(stage or Stage.CURRENT)
        if version is None:
            raise NotFoundError(f"secret has no {stage} version")
    found = e.find(version)
    if found is None:
        raise NotFoundError(f"version {version!r} not found")
    return Record(found.value, found.id, found.created_at, e.stages_of(found.id))


def current_version(entries: Entries, name: str) -> str:
    version = entry(entries, name).stages.get(Stage.CURRENT)
    if version is None:
        raise NotFoundError("secret has no current version")
    return version


def write(
    entries: Entries, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str
) -> VersionInfo:
    e = entries.get(name)
    if e is not None:
        done = next((v for v in e.versions if v.token == token), None)
        if done is not None:  # a retried put: the first attempt already landed
            return e.info(name, done)
    current = e.stages.get(Stage.CURRENT) if e else None
    if create_only and current is not None:
        raise already_exists(current)
    if if_version is not None and current != if_version:
        raise version_conflict(if_version, current)
    if e is None:
        e = entries[name] = Entry()
    new = Version(str(int(e.versions[-1].id) + 1 if e.versions else 1), value, datetime.now(timezone.utc), token)
    e.versions.append(new)
    if current is not None:
        e.stages[Stage.PREVIOUS] = current
    e.stages[Stage.CURRENT] = new.id
    return e.info(name, new)


def delete(entries: Entries, name: str) -> None:
    entry(entries, name)
    del entries[name]


def names(entries: Entries, prefix: str) -> list[str]:
    return [n for n in entries if n.startswith(prefix)]


def versions(entries: Entries, name: str) -> list[VersionInfo]:
    e = entry(entries, name)
    return [e.info(name, v) for v in reversed(e.versions)]


# -- rotation primitives (see secretkit/rotation.py for the protocol) ------------------------


def write_pending(entries: Entries, name: str, value: Value, *, token: str, adopt: bool) -> VersionInfo:
    """Add a version labelled pending, leaving current alone.

    The version already written with ``token`` is returned as it is (a re-run); a pending
    version of another rotation is returned when ``adopt``, else it is a ``ConflictError``.
    """
    e = entry(entries, name)
    done = next((v for v in e.versions if v.token == token), None)
    if done is not None:
        return e.info(name, done)
    pending = e.stages.get(Stage.PENDING)
    if pending is not None and pending != e.stages.get(Stage.CURRENT):
        if adopt:
            return e.info(name, e.find(pending))  # type: ignore[arg-type]
        raise ConflictError(f"another rotation is in progress (pending version {pending})")
    new = Version(str(int(e.versions[-1].id) + 1), value, datetime.now(timezone.utc), token)
    e.versions.append(new)
    e.stages[Stage.PENDING] = new.id
    return e.info(name, new)


def promote(entries: Entries, name: str, version: str, *, if_current: str) -> VersionInfo:
    """Make ``version`` current and the old current previous, atomically; a no-op if already done."""
    e = entry(entries, name)
    target = e.find(version)
    if target is None:
        raise NotFoundError(f"version {version!r} not found")
    current = e.stages.get(Stage.CURRENT)
    if current != version:
        if current != if_current:
            raise ConflictError(f"current version is {current!r}, not {if_current!r}")
        if current is not None:
            e.stages[Stage.PREVIOUS] = current
        e.stages[Stage.CURRENT] = version
    if e.stages.get(Stage.PENDING) == version:
        del e.stages[Stage.PENDING]
    return e.info(name, target)


def discard_pending(entries: Entries, name: str, version: str) -> None:
    """Drop the pending label from ``version`` (it stays in history, unlabelled)."""
    e = entry(entries, name)
    if e.stages.get(Stage.PENDING) == version:
        del e.stages[Stage.PENDING]
